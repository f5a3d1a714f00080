#!/usr/bin/env python3
"""One attempt recorded in attempts.md: the fp32 student trained one way, evaluated by the benchmark's own
protocol (hostside/evaluate.py: one streaming detector, threshold chosen on validation only at the protocol's smoothing,
FRR on wake-word files, false accepts on real human speech).

    .venv/bin/python benchmarks/quality/attempt.py --name vtlp --vtlp 0.9,1.1 [--features mfcc10]
        [--model dscnn-mlperf] [--set channels=96] [--epochs 25] [--seed 0] [--work build/bench-quality]
        [--phoneme-ctc 0.3 [--score phonemes]] [--int8] [--smooth 5] [--span 1.8]

Uses the corpus run.py synthesises (<work>/corpus, benchmarks/quality/corpus.json). Writes
<work>/attempts/<name>/{student.pt, eval/eval.json, row.json} and prints the figures run.py records; a
checkpoint trained before with the same corpus, recipe, epochs and seed is evaluated again, not retrained.
--int8 evaluates the integer model instead (`pqlr export` for the ESP32-C6, with `--score phonemes` when the score
is phonemes: what the board computes, run by the numpy reference it matches bit for bit; <name>/model.bin; with
--span, exported with that span, which the board's ctc op reads from the windows it kept).
--checkpoint evaluates a student trained elsewhere (another corpus: the same students read by another test) instead
of training one; the row records it, with the recipe as given.
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
from hostside.keyword import SCORES  # noqa: E402
from run import METRICS, _reuse, add_corpus_args, add_recipe_args, corpus_of, figures, recipe_of, train_args  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the attempt's folder name under <work>/attempts")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    add_recipe_args(ap)
    add_corpus_args(ap)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score", choices=SCORES, default="classifier",
                    help="the detector's wake score (as `pqlr eval --score`; phonemes*: a --phoneme-ctc student)")
    ap.add_argument("--int8", action="store_true",
                    help="evaluate the int8 model.bin the board runs (PTQ; classifier or phonemes score) instead")
    ap.add_argument("--checkpoint", type=Path, help="evaluate this student (trained elsewhere) instead of training one")
    ap.add_argument("--smooth", type=int, default=None,
                    help="the detector's moving average, in windows (default: the protocol's, "
                         "hostside.evaluate.DETECTOR_SMOOTHING); the row records it as smoothing_windows")
    ap.add_argument("--span", type=float, default=None,
                    help="the audio the phonemes score reads, in seconds (`pqlr eval --span`; default the window)")
    ap.add_argument("--span-from", choices=("centre", "first"), default="centre",
                    help="with --span: where earlier windows' frames are read (`pqlr eval --span-from`; 'first' as "
                    "before 2026-12-07)")
    ap.add_argument("--phoneme-repeats", choices=("yes", "no"), default="yes",
                    help="with a phoneme --score: whether a phoneme may be several spikes (`pqlr eval "
                    "--phoneme-repeats`; 'no' as before 2026-12-07)")
    ap.add_argument("--best-span", action="store_true",
                    help="with --span: each window's best score over the spans from the window up to --span")
    ap.add_argument("--fuse", type=float, default=0.0,
                    help="with a phoneme --score: the wake score is classifier^FUSE x phoneme score^(1 - FUSE)")
    args = ap.parse_args()
    if args.int8 and args.fuse:
        sys.exit("--int8: the board computes the classifier or the phonemes score, not a fusion")
    if args.int8 and args.best_span:
        sys.exit("--int8: the board reads one span (--span), not the best of several")
    if args.int8 and args.score == "phonemes-anywhere":
        sys.exit("--int8: the board computes the classifier or the phonemes score, not phonemes-anywhere")
    corpus, cfg = corpus_of(args.work, args.corpus_set)
    if not (args.work / "corpus" / "manifest.json").is_file():
        sys.exit(f"{args.work / 'corpus'}: no corpus; run `python benchmarks/quality/run.py` (it synthesises it) first")
    if args.corpus_set:
        api.synth(corpus, progress=sys.stderr.isatty(), **cfg)          # reused, extended or made
    out = args.work / "attempts" / args.name
    out.mkdir(parents=True, exist_ok=True)
    recipe = recipe_of(args)
    settings = {**recipe, "epochs": args.epochs, "seed": args.seed}
    ck = args.checkpoint or out / "student.pt"
    t = time.monotonic()
    if args.checkpoint:
        import torch
        if not ck.is_file():
            sys.exit(f"--checkpoint {ck}: no such file (a student.pt from `pqlr train` or attempt.py)")
        params = torch.load(ck, map_location="cpu", weights_only=False)["params"]
    else:
        tr = _reuse(ck, corpus, args.epochs, args.seed, recipe) or \
            api.train(corpus, ck, epochs=args.epochs, seed=args.seed, progress=sys.stderr.isatty(), **train_args(recipe))
        params = tr["params"]
    train_s = time.monotonic() - t
    int8 = None
    if args.int8:
        art = api.export(ck, corpus, "esp32c6", out / "model.bin", score=args.score, span_s=args.span,
                         repeats=args.phoneme_repeats == "yes")
        int8 = {"model_bin_bytes": art.size, "arena_bytes": art.arena_bytes, "tile_buffer_bytes": art.tile_buffer_bytes,
                "layers": [L.op for L in art.graph.layers],
                "state_bytes": art.scratch_bytes[-1] if art.graph.streaming else 0}
        ev = api.evaluate(out / "model.bin", corpus, out / "eval", score=args.score, smooth=args.smooth)
    else:
        ev = api.evaluate(ck, corpus, out / "eval", score=args.score, smooth=args.smooth, span_s=args.span,
                          best_span=args.best_span, fuse=args.fuse, span_from=args.span_from,
                          repeats=args.phoneme_repeats == "yes")
    row = {"name": args.name, **settings, "corpus_overrides": args.corpus_set, "params": params, "train_s": round(train_s),
           "int8": int8, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
           "command": "python benchmarks/quality/attempt.py " + " ".join(sys.argv[1:]), **figures(ev)}
    (out / "row.json").write_text(json.dumps(row, indent=1, default=str))
    print(json.dumps({k: row[k] for k in ("name", "params", "train_s") + METRICS if k in row}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
