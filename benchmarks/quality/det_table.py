#!/usr/bin/env python3
"""Compare recorded students at the same false-accept rates: for each model and seed, the FRR on the unseen
voices read off its DET curve (the chosen smoothing, every threshold) at the lowest threshold whose real-speech
false accepts stay within 2, 5, 10 and 50 per hour. These points are picked on the test data, so they are a
way to compare models independently of where validation put each one's threshold, not operating points.

    .venv/bin/python benchmarks/quality/det_table.py [results.json ...] [--attempts build/bench-quality/attempts]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside.evaluate import DET_LIMITS as LIMITS, frr_at  # noqa: E402,F401  (fixed_smoothing, det_smoothing)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="*", type=Path, help="results*.json files (default: every one beside this script)")
    ap.add_argument("--attempts", type=Path, default=Path("build/bench-quality/attempts"),
                    help="attempt.py folders (<name>/row.json), if present")
    args = ap.parse_args()
    rows = []
    for f in args.results or sorted(HERE.glob("results*.json")):
        r = json.loads(f.read_text())
        m = r["models"].get("fp32_student") or {}
        label = f"{f.name}: {m.get('architecture')} {m.get('features')} vtlp {m.get('vtlp') or 'off'} {m.get('model_options') or ''}"
        per = [s["det"] for s in m.get("per_seed", []) if s.get("det")]
        if per:
            rows.append((label, [[frr_at(d, x) for x in LIMITS] for d in per]))
        q = r["models"].get("int4_student") or {}
        per = [s["det"] for s in q.get("per_seed", []) if s.get("det")]       # recorded since 2026-12-04
        if per:
            rows.append((f"{f.name}: its INT4 student ({q.get('pipeline')})", [[frr_at(d, x) for x in LIMITS] for d in per]))
    for f in sorted(args.attempts.glob("*/row.json")) if args.attempts.is_dir() else []:
        r = json.loads(f.read_text())
        if r.get("det"):
            rows.append((f"attempt {r['name']} (seed {r['seed']})", [[frr_at(r["det"], x) for x in LIMITS]]))
    print("| model | seeds | " + " | ".join(f"FRR unseen at ≤ {x} FA/h" for x in LIMITS) + " |")
    print("|---|---|" + "---|" * len(LIMITS))
    for label, vals in rows:
        print(f"| {label} | {len(vals)} | " + " | ".join(cells(vals)) + " |")
    return 0


def cells(vals: list[list[float]]) -> list[str]:
    """Per limit, the seeds' unseen FRR (each seed's list: one FRR per LIMITS) as "mean % (min–max)"."""
    out = []
    for i in range(len(LIMITS)):
        v = [100 * s[i] for s in vals]
        out.append(f"{statistics.fmean(v):.1f} %" + (f" ({min(v):.1f}–{max(v):.1f})" if len(v) > 1 else ""))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
