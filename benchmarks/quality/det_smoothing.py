#!/usr/bin/env python3
"""The DET curve of each checkpoint at every smoothing the protocol can choose (1, 3, 5 windows), not only at the
one validation chose: unseen-voice FRR at the lowest threshold whose real-speech false accepts stay within 2, 5,
10 and 50 per hour. det_table.py reads each model's curve at its chosen smoothing, so two models can differ
there because validation picked a different smoothing for them; this holds the smoothing fixed. Like
det_table.py these points are read on the test data: a way to compare models, not operating points.

    .venv/bin/python benchmarks/quality/det_smoothing.py CKPT [CKPT ...] [--corpus build/bench-quality/corpus]

The posteriors are oprule.py's (computed once per checkpoint and corpus, cached beside the checkpoint).

--bootstrap N adds a 90 % interval to every point: the real speech is cut into 5-minute blocks (a trigger belongs
to the block it falls in) and N replicates resample the blocks and the unseen wake-word files with replacement,
reading the curve again in each. Points at a few false accepts an hour hang on a handful of triggers; the
interval shows how far another 3 hours of the same kind of speech, or another draw of the same voices' files,
could move them, so that two runs are compared by more than their point estimates.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from det_table import LIMITS, frr_at  # noqa: E402
from oprule import REFRACTORY_S, STRIDE_MS, posteriors  # noqa: E402


def points(pos: list, negs: list, hours: float, smooth: int) -> list[dict]:
    """DET points at every threshold of hostside.evaluate: the share of wake-word files the detector misses against
    its false accepts an hour on the negative streams."""
    det = E.Detector(1.0, smooth, STRIDE_MS, REFRACTORY_S)
    return [{"threshold": float(t), "frr": float(E._missed(det, pos, t).mean()),
             "fa_per_hour": sum(len(det.triggers(r, t)) for r in negs) / hours} for t in E.THRESHOLDS]


def curve(p: dict, smooth: int) -> list[dict]:
    """The test's DET: unseen voices against the real-speech streams."""
    return points(p["unseen"], p["real"], float(sum(p["real_hours"])), smooth)


BLOCK_S = 300.0


def bootstrap(p: dict, smooth: int, n: int, seed: int = 0, block_s: float = BLOCK_S) -> list[tuple[float, float]]:
    """(5th, 95th) percentile of the unseen FRR at each of LIMITS over n block-bootstrap replicates."""
    det = E.Detector(1.0, smooth, STRIDE_MS, REFRACTORY_S)
    per_block = int(round(block_s * 1000 / STRIDE_MS))
    counts, hours = [], []                      # counts[b][t]: triggers in block b at threshold t
    for r, h in zip(p["real"], p["real_hours"]):
        nb = max(1, int(np.ceil(len(r) / per_block)))
        c = np.zeros((nb, len(E.THRESHOLDS)))
        for j, t in enumerate(E.THRESHOLDS):
            for i in det.triggers(r, t):
                c[min(i // per_block, nb - 1), j] += 1
        counts.append(c)
        sizes = np.array([min(per_block, len(r) - b * per_block) for b in range(nb)], dtype=float)
        hours.append(float(h) * sizes / max(1, len(r)))
    counts, hours = np.concatenate(counts), np.concatenate(hours)
    missed = np.stack([E._missed(det, p["unseen"], t) for t in E.THRESHOLDS], axis=1).astype(float)
    rng = np.random.default_rng(seed)
    out = np.zeros((n, len(LIMITS)))
    for k in range(n):
        wb = rng.multinomial(len(hours), np.full(len(hours), 1 / len(hours)))
        wf = rng.multinomial(len(missed), np.full(len(missed), 1 / len(missed)))
        fa = (wb @ counts) / (wb @ hours)
        frr = (wf @ missed) / len(missed)
        for m, x in enumerate(LIMITS):
            ok = frr[fa <= x]
            out[k, m] = ok.min() if len(ok) else 1.0
    return [(float(np.percentile(out[:, m], 5)), float(np.percentile(out[:, m], 95))) for m in range(len(LIMITS))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"),
                    help="the corpus the checkpoints are evaluated on (its unseen voices and real speech)")
    ap.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="add a 90 %% interval to each point from N block-bootstrap replicates (e.g. 1000; default: off)")
    ap.add_argument("--smoothing", type=int, choices=E.SMOOTHING, default=None,
                    help="only this smoothing (windows; default: each of %s)" % ", ".join(map(str, E.SMOOTHING)))
    args = ap.parse_args()
    print("| checkpoint | smoothing (windows) | " + " | ".join(f"FRR unseen at ≤ {x} FA/h" for x in LIMITS) + " |")
    print("|---|---|" + "---|" * len(LIMITS))
    for ck in args.checkpoints:
        p = posteriors(ck, args.corpus)
        for s in ([args.smoothing] if args.smoothing else E.SMOOTHING):
            pts = curve(p, s)
            ci = bootstrap(p, s, args.bootstrap) if args.bootstrap else None
            cells = [f"{100 * frr_at(pts, x):.1f} %" + (f" ({100 * ci[m][0]:.0f}–{100 * ci[m][1]:.0f})" if ci else "")
                     for m, x in enumerate(LIMITS)]
            print(f"| {ck} | {s} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
