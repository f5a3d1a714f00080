#!/usr/bin/env python3
"""What the detector's smoothing does to checkpoints already trained, read off their cached posteriors (oprule.py):

1. the DET curve at longer smoothings than the protocol offers (unseen-voice FRR at the lowest threshold whose
   real-speech false accepts stay within 2, 5, 10 and 50 per hour, as det_smoothing.py reads it), per checkpoint and
   on the mean: a way to compare smoothings, read on the test data, not an operating point;
2. the operating point validation chooses (hostside/evaluate.py choose_operating_point, the protocol's "count"
   rule at 1 false accept per hour) when it chooses the smoothing too (`pqlr eval --smooth validation`, the protocol
   until 2026-12-04) and when the smoothing is fixed (`pqlr eval --smooth N`; the protocol's is 5), with the unseen FRR and the real-speech false accepts each gives on the test data.

    .venv/bin/python benchmarks/quality/fixed_smoothing.py CKPT [CKPT ...] [--corpus DIR] [--curve 5,7,9] [--fixed 5,7]
        [--ensemble] [--plot det.png]

--ensemble adds one more column: the checkpoints as one detector, the mean of their posteriors (what `pqlr train
--teacher A --teacher B ...` distils from at temperature 1; N times the compute on a device).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from det_smoothing import curve  # noqa: E402
from det_table import LIMITS, frr_at  # noqa: E402
from oprule import REFRACTORY_S, STRIDE_MS, outcome, posteriors  # noqa: E402


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def mean_posteriors(ps: list[dict]) -> dict:
    """Several checkpoints' cached posteriors (oprule.posteriors) as one detector's: their mean, window by window."""
    out = dict(ps[0])
    for k in ("val", "test", "unseen", "real"):
        out[k] = [np.mean(xs, axis=0) for xs in zip(*(p[k] for p in ps))]
    out["val_neg"] = np.mean([p["val_neg"] for p in ps], axis=0)
    return out


def plot(columns: list[tuple[str, dict]], smooth: int, path: Path) -> None:
    """Each column's DET curve on one log-x plot (zero false accepts drawn at half of one over the hours)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hours = float(sum(columns[0][1]["real_hours"]))
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, p in columns:
        pts = curve(p, smooth)
        ax.plot([max(q["fa_per_hour"], 0.5 / hours) for q in pts], [100 * q["frr"] for q in pts], marker=".", ms=3,
                label=label)
    for x in LIMITS:
        ax.axvline(x, color="grey", lw=0.6, ls=":")
    E.finish_det_plot(fig, ax, path, f"real-speech false accepts per hour ({hours:.2f} h)",
                      "unseen-voice false rejection rate, %",
                      f"DET at {smooth} windows (thresholds read on the test data)", legend_size=7)
    print(f"\nwrote {path}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"),
                    help="the corpus the checkpoints are evaluated on (its val, unseen voices and real speech)")
    ap.add_argument("--curve", type=ints, default=[5, 7, 9, 11, 15],
                    help="smoothings (windows) to read the DET curve at (default 5,7,9,11,15)")
    ap.add_argument("--fixed", type=ints, default=[5, 7],
                    help="fixed smoothings to choose the threshold at, beside the protocol's choice (default 5,7)")
    ap.add_argument("--target", type=float, default=1.0, help="validation's false accepts per hour (default 1)")
    ap.add_argument("--ensemble", action="store_true",
                    help="also read the checkpoints' mean posterior as one detector (an ensemble column)")
    ap.add_argument("--plot", type=Path, default=None, metavar="PNG",
                    help="also draw every column's DET curve (unseen FRR against real FA/h) at the first --curve "
                    "smoothing into this PNG")
    args = ap.parse_args()
    columns = [(ck.parent.name, posteriors(ck, args.corpus)) for ck in args.checkpoints]
    n = len(columns)                    # the mean and median columns are the checkpoints', not the ensemble's
    if args.ensemble:
        columns.append((f"ensemble of {n}", mean_posteriors([p for _, p in columns])))
    names = [label for label, _ in columns]

    print("## DET curve: unseen FRR at ≤ " + " / ".join(map(str, LIMITS)) + " real FA/h\n")
    print("| smoothing (windows) | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for s in args.curve:
        rows = [[100 * frr_at(curve(p, s), x) for x in LIMITS] for _, p in columns]
        cells = [" / ".join(f"{v:.1f}" for v in r) for r in rows]
        mean = " / ".join(f"{statistics.mean(v):.1f}" for v in zip(*rows[:n]))
        print(f"| {s} | " + " | ".join(cells) + f" | {mean} |", flush=True)

    if args.plot:
        plot(columns, args.curve[0], args.plot)
    print("\n## Operating point chosen on validation: threshold (smoothing), unseen FRR, real false accepts\n")
    print("| smoothing | " + " | ".join(names) + " | mean FRR | false accepts, median |")
    print("|---|" + "---|" * (len(names) + 2))
    for fixed in [None, *args.fixed]:
        out = [outcome(p, E.choose_operating_point(p["val"], p["val_neg"], p["val_hours"], STRIDE_MS, REFRACTORY_S,
                                                   args.target, fixed or "validation")) for _, p in columns]
        cells = [f"{o['threshold']:.2f} ({o['smooth']}), {100 * o['frr_unseen']:.1f} %, {o['false_accepts']}" for o in out]
        label = "chosen on validation (the protocol until 2026-12-04)" if fixed is None else \
            f"fixed at {fixed}" + (" (the protocol)" if fixed == E.DETECTOR_SMOOTHING else "")
        print(f"| {label} | " + " | ".join(cells) + f" | {100 * statistics.mean(o['frr_unseen'] for o in out[:n]):.1f} % | "
              f"{statistics.median(o['false_accepts'] for o in out[:n]):g} |", flush=True)
    print(f"\nReal speech: {out[0]['hours']:.2f} h. Curves and test figures are read on the test data; the thresholds on "
          "validation only.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
