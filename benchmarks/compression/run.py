#!/usr/bin/env python3
"""Compression benchmark: the PQLR pipeline on the wake-word task, stage by stage, measured.

    .venv/bin/python benchmarks/compression/run.py

Uses the corpus and the fp32 DS-CNN student (seed 0) of benchmarks/quality/run.py (it runs that first if they
are missing) and the wide DS-CNN teacher (trained here on that corpus if missing: dscnn-wide, MFCC 10, 25
epochs — over an hour on 2 cores), then runs the recipe beside this file (prune 70 % of
channels → low-rank rank 16 → LSQ+ QAT W4A8, distilling from the teacher in every fine-tune) and exports
model.bin. Writes results.json (a list `stages`) and results.md beside this file.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from hostside import api  # noqa: E402
from hostside.compress.recipe import from_dict  # noqa: E402

WORK = Path("build/bench-quality")


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, default=HERE / "recipe.toml", help="recipe (default recipe.toml here)")
    ap.add_argument("--tag", default="", help="write results-<tag>.json/.md instead of results.json/.md")
    args = ap.parse_args()
    if not (WORK / "student-s0.pt").is_file():
        subprocess.run([sys.executable, str(ROOT / "benchmarks/quality/run.py")], check=True)
    if not (WORK / "dscnn_wide_teacher.pt").is_file():
        api.train(WORK / "corpus", WORK / "dscnn_wide_teacher.pt", model="dscnn-wide", features="mfcc10", epochs=25,
                  progress=sys.stderr.isatty())
    raw = tomllib.loads(args.recipe.read_text())
    t0 = time.monotonic()
    r = api.compress(from_dict(raw), progress=sys.stderr.isatty())
    stages = r["stages"]
    by = {s["name"]: s for s in stages}
    student, teacher, final = by["student"], by.get("teacher"), stages[-1]
    out = {
        "command": "python benchmarks/compression/run.py" + (f" --recipe {args.recipe.name} --tag {args.tag}"
                                                              if args.tag else ""), "recipe": raw,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "stages": [{k: s.get(k) for k in ("name", "bits", "weight_bytes", "activation_bytes", "code_bytes", "total_bytes",
                                          "params", "held_out_voice_accuracy", "unseen_engine_accuracy",
                                          "false_rejection_rate", "false_accepts_per_hour")} for s in stages],
        "export": r["export"],
        "goals": {"int4_vs_fp32_student_unseen_accuracy_points": ">= -0.5", "teacher_over_int4_weight_bytes": ">= 80"},
        "int4_vs_fp32_student_unseen_accuracy_points":
            100 * (final["unseen_engine_accuracy"] - student["unseen_engine_accuracy"]),
        "teacher_over_int4_weight_bytes": (teacher["weight_bytes"] / final["weight_bytes"]) if teacher else None,
        "wall_s": time.monotonic() - t0,
    }
    stem = f"results-{args.tag}" if args.tag else "results"
    (HERE / f"{stem}.json").write_text(json.dumps(out, indent=1, default=str))
    md = Path(r["files"]["md"]).read_text()
    ratio = out["teacher_over_int4_weight_bytes"]
    md += (f"\nCommand: `{out['command']}`.\nINT4 student vs fp32 student on the unseen engine: "
           f"{out['int4_vs_fp32_student_unseen_accuracy_points']:+.2f} points (goal ≥ −0.5). Teacher weights / INT4 "
           f"student weights: {f'{ratio:.0f}×' if ratio else 'n/a (no teacher in this recipe)'} (goal ≥ 80×).\n")
    (HERE / f"{stem}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
