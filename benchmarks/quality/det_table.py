#!/usr/bin/env python3
"""Compare recorded students at the same false-accept rates: for each model and seed, the FRR on the unseen
voices read off its DET curve (the chosen smoothing, every threshold) at the lowest threshold whose real-speech
false accepts stay within 2, 5, 10 and 50 per hour. These points are picked on the test data, so they are a
way to compare models independently of where validation put each one's threshold, not operating points.

    .venv/bin/python benchmarks/quality/det_table.py [results.json ...] [--attempts build/bench-quality/attempts]
        [--group] [--no-results]

--group makes one row of the attempts whose names differ only by a trailing -s<N> (base-s0 … base-s3: seeds of one
recipe), with the seeds' mean (min–max); --no-results reads only the attempts.
"""
from __future__ import annotations

import argparse
import json
import re
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
    ap.add_argument("--group", action="store_true", help="one row per recipe: attempts named <recipe>-s<N> together")
    ap.add_argument("--no-results", action="store_true", help="leave out the recorded results*.json files")
    args = ap.parse_args()
    rows = []
    for f in [] if args.no_results else args.results or sorted(HERE.glob("results*.json")):
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
    groups: dict[str, list] = {}
    for f in sorted(args.attempts.glob("*/row.json")) if args.attempts.is_dir() else []:
        r = json.loads(f.read_text())
        if r.get("det"):
            vals = [frr_at(r["det"], x) for x in LIMITS]
            if args.group:
                groups.setdefault(recipe_of(r["name"]), []).append((r["seed"], vals))
            else:
                rows.append((f"attempt {r['name']} (seed {r['seed']})", [vals]))
    for name, members in groups.items():
        seeds = ",".join(str(s) for s, _ in sorted(members))
        rows.append((f"attempts {name} (seeds {seeds})", [v for _, v in sorted(members)]))
    print("| model | seeds | " + " | ".join(f"FRR unseen at ≤ {x} FA/h" for x in LIMITS) + " |")
    print("|---|---|" + "---|" * len(LIMITS))
    for label, vals in rows:
        print(f"| {label} | {len(vals)} | " + " | ".join(cells(vals)) + " |")
    return 0


def recipe_of(name: str) -> str:
    """An attempt's recipe: its name without a trailing -s<N> (base-s3 → base)."""
    return re.sub(r"-s\d+$", "", name)


def cells(vals: list[list[float]]) -> list[str]:
    """Per limit, the seeds' unseen FRR (each seed's list: one FRR per LIMITS) as "mean % (min–max)"."""
    out = []
    for i in range(len(LIMITS)):
        v = [100 * s[i] for s in vals]
        out.append(f"{statistics.fmean(v):.1f} %" + (f" ({min(v):.1f}–{max(v):.1f})" if len(v) > 1 else ""))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
