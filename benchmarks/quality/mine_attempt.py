#!/usr/bin/env python3
"""A trained fp32 student fine-tuned on the real speech that fires it (`pqlr mine`, hostside/mine.py), then
evaluated by the benchmark's own protocol, as attempt.py evaluates a student.

    .venv/bin/python benchmarks/quality/mine_attempt.py --student build/bench-quality/attempts/<name>/student.pt
        --name <name>-mined [--corpus build/bench-quality/corpus] [--negatives 1000] [--floor 0.5] [--epochs 5]
        [--lr 3e-4] [--repeat 1] [--work build/bench-quality]

--negatives 0 fine-tunes the same way without mined windows: the control.

Writes <work>/attempts/<name>/{student.pt, eval/eval.json, row.json}; det_smoothing.py reads the curves of the
student before and after from their cached posteriors.
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

from hostside import api  # noqa: E402
from run import METRICS, figures  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, required=True, help="the trained fp32 student (student.pt)")
    ap.add_argument("--name", required=True, help="the attempt's folder name under <work>/attempts")
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"), help="the student's corpus")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--negatives", type=int, default=1000)
    ap.add_argument("--floor", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    out = args.work / "attempts" / args.name
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "student.pt"
    t = time.monotonic()
    r = api.mine(args.student, args.corpus, ck, negatives=args.negatives, floor=args.floor, epochs=args.epochs,
                 lr=args.lr, repeat=args.repeat, progress=sys.stderr.isatty())
    mine_s = time.monotonic() - t
    ev = api.evaluate(ck, args.corpus, out / "eval")
    row = {"name": args.name, "student": str(args.student), "mined": r["mined"], "mine_s": round(mine_s),
           "command": "python benchmarks/quality/mine_attempt.py " + " ".join(sys.argv[1:]), **figures(ev)}
    (out / "row.json").write_text(json.dumps(row, indent=1, default=str))
    print(json.dumps({k: row[k] for k in ("name", "mine_s", "mined") + METRICS if k in row}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
