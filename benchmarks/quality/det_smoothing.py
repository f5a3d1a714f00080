#!/usr/bin/env python3
"""The DET curve of each checkpoint at every smoothing the protocol can choose (1, 3, 5 windows), not only at the
one validation chose: unseen-voice FRR at the lowest threshold whose real-speech false accepts stay within 2, 5,
10 and 50 per hour. det_table.py reads each model's curve at its chosen smoothing, so two models can differ
there because validation picked a different smoothing for them; this holds the smoothing fixed. Like
det_table.py these points are read on the test data: a way to compare models, not operating points.

    .venv/bin/python benchmarks/quality/det_smoothing.py CKPT [CKPT ...] [--corpus build/bench-quality/corpus]

The posteriors are oprule.py's (computed once per checkpoint and corpus, cached beside the checkpoint).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from det_table import LIMITS, frr_at  # noqa: E402
from oprule import REFRACTORY_S, STRIDE_MS, posteriors  # noqa: E402


def curve(p: dict, smooth: int) -> list[dict]:
    det = E.Detector(1.0, smooth, STRIDE_MS, REFRACTORY_S)
    hours = float(sum(p["real_hours"]))
    return [{"threshold": float(t), "frr": float(E._missed(det, p["unseen"], t).mean()),
             "fa_per_hour": sum(len(det.triggers(r, t)) for r in p["real"]) / hours} for t in E.THRESHOLDS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"),
                    help="the corpus the checkpoints are evaluated on (its unseen voices and real speech)")
    args = ap.parse_args()
    print("| checkpoint | smoothing (windows) | " + " | ".join(f"FRR unseen at ≤ {x} FA/h" for x in LIMITS) + " |")
    print("|---|---|" + "---|" * len(LIMITS))
    for ck in args.checkpoints:
        p = posteriors(ck, args.corpus)
        for s in E.SMOOTHING:
            pts = curve(p, s)
            print(f"| {ck} | {s} | " + " | ".join(f"{100 * frr_at(pts, x):.1f} %" for x in LIMITS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
