#!/usr/bin/env python3
"""An attempt recorded in attempts.md: how good could a teacher trained on this corpus be, without a bigger
network than this machine can train? The three fp32 students (seeds 0, 1, 2 of run.py) averaged as one model
(mean of their softmax posteriors), evaluated by the same protocol (hostside/evaluate.py: one streaming
detector, threshold chosen on validation only). An ensemble is a candidate distillation teacher,
not something to deploy (3× the compute).

    .venv/bin/python benchmarks/quality/attempt_ensemble.py [--work build/bench-quality]
Writes <work>/eval-ensemble/eval.json and prints the figures run.py records.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from hostside.data.corpus import load_corpus  # noqa: E402
from hostside.data.features import FrontEnd  # noqa: E402
from hostside.evaluate import evaluate  # noqa: E402
from hostside.train import load_checkpoint, predict  # noqa: E402
from run import figures  # noqa: E402


class MeanOfSoftmax(nn.Module):
    """log of the mean posterior: predict()'s softmax then gives back the mean of the members' posteriors."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        p = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
        return torch.log(p.clamp_min(1e-12))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    nets, cks = zip(*(load_checkpoint(args.work / f"student-s{s}.pt") for s in args.seeds.split(",")))
    assert all(ck["frontend"] == cks[0]["frontend"] for ck in cks)
    corpus = load_corpus(args.work / "corpus")
    ev = evaluate(MeanOfSoftmax([n.eval() for n in nets]).eval(), corpus, FrontEnd.from_dict(cks[0]["frontend"]),
                  predict, out=args.work / "eval-ensemble", name="ensemble of fp32 students")
    row = figures(ev)
    print(json.dumps({k: row[k] for k in ("unseen_accuracy", "held_out_voice_accuracy", "threshold", "smoothing_windows",
                                          "val_frr", "frr_test", "frr_unseen", "real_false_accepts", "real_fa_per_hour",
                                          "real_fa_per_hour_upper95", "tts_fa_per_hour")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
