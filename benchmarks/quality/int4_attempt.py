#!/usr/bin/env python3
"""One INT4 attempt recorded in attempts.md: the benchmark's PQLR INT4 recipe (run.py `int4_recipe`: 30 %
channel pruning, W4A8 LSQ+ QAT, first/last layer 8 bit) applied to one fp32 checkpoint, with or without
knowledge distillation, judged on what the INT4 goal is about: clip accuracy per split (argmax over the
three classes on 1 s clips), of the fp32 student and of the INT4 student, on the same clips.

    .venv/bin/python benchmarks/quality/int4_attempt.py --student build/bench-quality/attempts/X/student.pt \
        --corpus build/bench-quality/corpus --teacher self --name X-kd [--seed 0] [--alpha 0.7 --temperature 6] \
        [--sparsity 0.3]

--teacher none: the recorded recipe (cross-entropy only). self: the fp32 checkpoint distils into its own
pruned and quantised copy (α·T²·KL + (1 − α)·CE in every fine-tuning epoch). A path: another checkpoint with the
same front end and classes. The streaming figures (FRR, FA/h) are not computed here, only clip accuracy
(that is what the 0.5-point goal compares); the model is exported to model.bin and its integer reference is
checked against the fake-quant model on every held-out clip, as `pqlr compress` does.
Writes <work>/int4-attempts/<name>/{model.bin, row.json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside.boards import as_board  # noqa: E402
from hostside.compress.pipeline import Pipeline, _params  # noqa: E402
from hostside.compress.recipe import from_dict  # noqa: E402
from run import int4_recipe, sparsity_arg  # noqa: E402


class ClipPipeline(Pipeline):
    """The compression pipeline with clip accuracy per split as each stage's evaluation (no streams)."""

    def evaluate(self, name, model, weight_bytes, activation_bytes, bits, extra=None):
        import numpy as np
        from hostside.data.features import corpus_features
        from hostside.train import predict
        if not hasattr(self, "_clips"):
            x, y = corpus_features(self.corpus, self.fe)
            self._clips = (x, y, np.array([c.split for c in self.corpus.clips]))
        x, y, splits = self._clips
        pred = predict(model, x).argmax(1)
        row = {"name": name, "bits": bits, "params": _params(model),
               "weight_bytes": int(weight_bytes), "activation_bytes": int(activation_bytes)} | \
            {f"{s}_accuracy": float((pred[splits == s] == y[splits == s]).mean()) for s in ("val", "test", "unseen")} | \
            (extra or {})
        self.rows.append(row)
        self.log(f"  {name}: val {row['val_accuracy']:.4f}, held-out {row['test_accuracy']:.4f}, "
                 f"unseen {row['unseen_accuracy']:.4f}")
        return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, required=True, help="the fp32 checkpoint (pqlr train / attempt.py)")
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus it was trained on")
    ap.add_argument("--teacher", default="none", help="none, self, or a checkpoint's path (default none)")
    ap.add_argument("--name", required=True, help="the attempt's folder name under <work>/int4-attempts")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=None, help="distillation weight α (default: the recipe's, 0.7)")
    ap.add_argument("--temperature", type=float, default=None, help="distillation temperature (default: the recipe's, 6)")
    ap.add_argument("--sparsity", type=sparsity_arg, default=None,
                    help="the prune stage's share of channels removed (default: the recipe's, 0.3); 0 drops the "
                         "prune stage: W4A8 QAT of the whole student")
    args = ap.parse_args()
    out = args.work / "int4-attempts" / args.name
    out.mkdir(parents=True, exist_ok=True)
    spec = int4_recipe(args.student, args.corpus, out / "model.bin", args.seed, quick=False, teacher=args.teacher,
                       **({} if args.sparsity is None else {"sparsity": args.sparsity}))
    distill = {k: v for k, v in (("alpha", args.alpha), ("temperature", args.temperature)) if v is not None}
    if distill:
        spec["distill"] = distill
    rec = from_dict(spec)
    t = time.monotonic()
    pipe = ClipPipeline(rec, progress=sys.stderr.isatty())
    pipe.run()
    exp = pipe.export(as_board(rec.board), Path(rec.output))
    seconds = round(time.monotonic() - t)
    fp32 = next(r for r in pipe.rows if r["name"] == "student")
    int4 = pipe.rows[-1]
    row = {"name": args.name, "command": "python benchmarks/quality/int4_attempt.py " + " ".join(sys.argv[1:]),
           "recipe": spec | {"distill": rec.distill if rec.teacher else None}, "seconds": seconds,
           "stages": pipe.rows, "agreement": exp["agreement"],
           "int4_minus_fp32_points": {s: round(100 * (int4[f"{s}_accuracy"] - fp32[f"{s}_accuracy"]), 2)
                                      for s in ("val", "test", "unseen")}}
    (out / "row.json").write_text(json.dumps(row, indent=1, default=str))
    print(json.dumps({k: row[k] for k in ("name", "seconds", "agreement", "int4_minus_fp32_points")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
