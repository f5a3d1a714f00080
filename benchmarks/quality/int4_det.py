#!/usr/bin/env python3
"""The PQLR INT4 student of attempts (attempt.py's checkpoints), compressed by run.py's INT4 recipe and evaluated by
the protocol, with each stage's DET curve: how far quantisation moves the detector at equal false accepts.

    .venv/bin/python benchmarks/quality/int4_det.py NAME [NAME ...] [--work build/bench-quality]
        [--sparsity 0] [--teacher self] [--score phonemes [--span 1.8]]

For each NAME, <work>/attempts/NAME/student.pt on <work>/corpus (the corpus attempt.py used) → <work>/int4-NAME.bin
with its report (.report.json / .report.md, which compare fp32 and INT4 at ≤ 2 / 5 / 10 / 50 real FA/h). The seed
is the attempt's (row.json). Prints one line per attempt: unseen accuracy, the FRR at each limit, the false accepts
at the validation threshold, fp32 → INT4. (int4_attempt.py is the quicker clip-accuracy-only reading.)
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
from hostside.compress.recipe import from_dict  # noqa: E402
from run import int4_recipe, sparsity_arg  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="attempt folders under <work>/attempts")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--sparsity", type=sparsity_arg, default=0.0,
                    help="share of channels pruned before QAT (default 0: W4A8 QAT of the whole student)")
    ap.add_argument("--teacher", default="self", help="none, self (default: its own fp32 student) or a checkpoint")
    ap.add_argument("--score", choices=("classifier", "phonemes"), default="classifier",
                    help="the wake score: the classifier (default), or the phoneme score of a student trained with "
                         "--phoneme-ctc, compressed with its head and computed by model.bin (the fp32 row reads the "
                         "float phoneme score, the INT4 row the integer model's); writes <work>/int4-NAME-phonemes.bin")
    ap.add_argument("--span", type=float, default=None,
                    help="with --score phonemes: the span the score reads in every stage and on the board (the "
                         "recipe's span; default the window); writes <work>/int4-NAME-phonemes-spanS.bin")
    ap.add_argument("--summary", action="store_true",
                    help="run nothing: read the NAMEs' reports (<work>/int4-NAME[-phonemes].report.json) and print "
                         "fp32 against INT4 per seed and their means")
    args = ap.parse_args()
    if args.summary:
        return summary(args)
    todo = []
    for name in args.names:                           # every attempt checked before any work
        folder = args.work / "attempts" / name
        if not (folder / "student.pt").is_file() or not (folder / "row.json").is_file():
            sys.exit(f"{folder}: no attempt there; run `python benchmarks/quality/attempt.py --work {args.work} "
                     f"--name {name} …` first")
        todo.append((name, folder, json.loads((folder / "row.json").read_text())["seed"]))
    for name, folder, seed in todo:
        t = time.monotonic()
        tag = _tag(args)
        spec = int4_recipe(folder / "student.pt", args.work / "corpus", args.work / f"int4-{name}{tag}.bin", seed, False,
                           args.teacher, args.sparsity, args.score, args.span)
        rep = api.compress(from_dict(spec), progress=sys.stderr.isatty(), log=lambda *a: None)
        fp, q = next(s for s in rep["stages"] if s["name"] == "student"), rep["stages"][-1]

        def cells(s):
            det = s.get("frr_at_fa_per_hour") or {}
            return (f"unseen {100 * s['unseen_engine_accuracy']:.2f} %, FRR " +
                    " / ".join(f"{100 * v:.1f}" for v in det.values()) + f" % at ≤ {' / '.join(det)} FA/h, "
                    f"{s['false_accepts']} false accepts at {s['threshold']}")
        print(f"{name} (seed {seed}, {time.monotonic() - t:.0f} s): fp32 {cells(fp)} → INT4 {cells(q)}; "
              f"{(rep['files'] or {}).get('md')}", flush=True)
    return 0


def _tag(args) -> str:
    """The files' tag: -phonemes for the phoneme score, -spanS when it reads a span."""
    if args.span is not None and args.score != "phonemes":
        sys.exit("--span: the span is the phonemes score's (add --score phonemes)")
    return ("-phonemes" if args.score == "phonemes" else "") + (f"-span{args.span:g}" if args.span else "")


def summary(args) -> int:
    """fp32 against INT4, per seed and on average: unseen FRR at each limit (equal real false accepts), unseen clip
    accuracy, and the validation point (unseen FRR, real false accepts in the hours of real speech)."""
    import statistics
    tag = _tag(args)
    pairs = []
    for name in args.names:
        path = args.work / f"int4-{name}{tag}.report.json"
        if not path.is_file():
            sys.exit(f"{path}: no report; run this script without --summary first")
        rep = json.loads(path.read_text())
        pairs.append((name, next(s for s in rep["stages"] if s["name"] == "student"), rep["stages"][-1]))
    limits = list(pairs[0][1]["frr_at_fa_per_hour"])

    def line(label, rows):
        m = lambda f: statistics.mean(f(r) for r in rows)            # noqa: E731
        return (f"{label}: unseen FRR " + " / ".join(f"{100 * m(lambda r: r['frr_at_fa_per_hour'][x]):.1f}"
                                                       for x in limits) + f" % at ≤ {' / '.join(limits)} FA/h; "
                f"unseen accuracy {100 * m(lambda r: r['unseen_engine_accuracy']):.2f} %; validation point: unseen FRR "
                f"{100 * m(lambda r: r['false_rejection_rate']):.1f} %, real false accepts "
                f"{sorted(r['false_accepts'] for r in rows)} in {rows[0]['real_speech_hours']:.2f} h")
    for name, fp, q in pairs:
        print(f"{name}: fp32 " + " / ".join(f"{100 * fp['frr_at_fa_per_hour'][x]:.1f}" for x in limits) + " → INT4 " +
              " / ".join(f"{100 * q['frr_at_fa_per_hour'][x]:.1f}" for x in limits) +
              f" %; accuracy {100 * fp['unseen_engine_accuracy']:.2f} → {100 * q['unseen_engine_accuracy']:.2f} % "
              f"({100 * (q['unseen_engine_accuracy'] - fp['unseen_engine_accuracy']):+.2f} points); false accepts "
              f"{fp['false_accepts']} → {q['false_accepts']} (thresholds {fp['threshold']} → {q['threshold']}); "
              f"INT4 scored by {q.get('score', 'classifier')}")
    print(line(f"fp32 ({len(pairs)} seeds)", [p[1] for p in pairs]))
    print(line(f"INT4 ({len(pairs)} seeds)", [p[2] for p in pairs]))
    diff = [q["frr_at_fa_per_hour"][x] - fp["frr_at_fa_per_hour"][x] for _, fp, q in pairs for x in limits]
    print(f"INT4 − fp32 at equal false accepts: lower on {sum(d < 0 for d in diff)}, higher on {sum(d > 0 for d in diff)},"
          f" equal on {sum(d == 0 for d in diff)} of {len(diff)} seed-limits; accuracy within 0.5 points on "
          f"{sum(abs(q['unseen_engine_accuracy'] - fp['unseen_engine_accuracy']) <= 0.005 for _, fp, q in pairs)} of "
          f"{len(pairs)} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
