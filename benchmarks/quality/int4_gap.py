#!/usr/bin/env python3
"""How well is the INT4 student's accuracy gap to its fp32 student known? Each pair read clip by clip on a corpus's
held-out splits, the gap with its 95 % interval for paired proportions (hostside.evaluate.paired_difference:
Newcombe's method 10), and how many clips the interval would need to be ±0.5 points — the issue's goal for the gap.

    .venv/bin/python benchmarks/quality/int4_gap.py [--work build/bench-quality] [--seeds 0,1,2]
        [--corpus DIR] [--splits unseen,test] [--out benchmarks/quality/int4_gap]
    .venv/bin/python benchmarks/quality/int4_gap.py --pair STUDENT.pt MODEL.bin [--pair ...] --corpus DIR

Default pairs: run.py's recorded ones, <work>/student-sN.pt (the fp32 student) and <work>/int4-sN.bin (its INT4
model.bin, run by the numpy integer reference that the board matches bit for bit), on <work>/corpus-demo. Clip
accuracy is the classifier's argmax on each 1 s clip, as results.json's. --corpus reads the same models on another
corpus — one with more unseen clips (a corpus.json's unseen_positives / unseen_unknown raised, the same seed so that
its texts and voices split as the students' training did) measures the gap closer. Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside.evaluate import paired_difference  # noqa: E402

GOAL_POINTS = -0.5          # results.json's goal: INT4 − fp32 unseen accuracy ≥ −0.5 points


def read_pair(student: Path, model_bin: Path, corpus_dir: Path, splits: list[str]) -> dict:
    """{split: paired_difference(fp32 right, INT4 right)} for one pair on the corpus's clips of those splits."""
    from hostside.artifact import read_model_bin
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd, corpus_features
    from hostside.keyword import GraphPredictor
    from hostside.train import load_checkpoint, predict
    model, ck = load_checkpoint(student)
    graph = read_model_bin(model_bin).graph
    fe = FrontEnd.from_dict(ck["frontend"])
    if graph.frontend and FrontEnd.from_dict(graph.frontend).to_dict() != fe.to_dict():
        raise SystemExit(f"{model_bin}: its front end is not {student}'s: not the INT4 model of that student")
    if ck.get("classes") and graph.class_outputs != len(ck["classes"]):
        raise SystemExit(f"{model_bin}: {graph.class_outputs} class outputs, {student}: {len(ck['classes'])} classes")
    corpus = load_corpus(corpus_dir)
    x, y = corpus_features(corpus, fe)
    where = np.array([c.split for c in corpus.clips])
    out = {}
    for split in splits:
        keep = where == split
        if not keep.any():
            raise SystemExit(f"{corpus_dir}: no {split!r} clips (splits there: {sorted(set(where))})")
        fp32 = predict(model, x[keep]).argmax(1) == y[keep]
        int4 = GraphPredictor(graph, wake_score=False)(None, x[keep]).argmax(1) == y[keep]
        out[split] = paired_difference(fp32, int4)
    return out


def markdown(r: dict) -> str:
    lines = ["# The INT4 student's accuracy gap, and how well it is known", "",
             f"Command: `{r['command']}`  ", f"Corpus: {r['corpus']} ({r['clips']})", "",
             "Per pair, INT4 − fp32 clip accuracy on the same clips (classifier argmax on 1 s clips), its 95 % "
             "interval for paired proportions (Newcombe 1998, method 10), the clips each model alone gets right, and "
             "how many clips the interval would need, at these rates, to be ±0.5 points.", "",
             "| pair | split | clips | fp32 acc | INT4 acc | agree | fp32 only / INT4 only | INT4 − fp32, points (95 % interval) | clips for ±0.5 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in r["pairs"]:
        for split, d in p["splits"].items():
            lo, hi = d["ci_points"]
            lines.append(f"| {p['name']} | {split} | {d['n']} | {100 * d['a_right'] / d['n']:.2f} % | "
                         f"{100 * d['b_right'] / d['n']:.2f} % | {100 * d['agreement']:.2f} % | {d['a_only']} / "
                         f"{d['b_only']} | {d['difference_points']:+.2f} ({lo:+.2f} to {hi:+.2f}) | "
                         f"{d['items_for_half_width_0.5_points'] or 'n/a'} |")
    lines.append("")
    for split, s in r["by_split"].items():
        lines.append(f"- {split}: mean gap {s['mean_points']:+.2f} points over {s['pairs']} pairs; the goal "
                     f"(≥ {GOAL_POINTS} points) {s['verdict']}.")
    lines += ["", "A pair whose interval lies wholly above −0.5 meets the goal; wholly below, misses it; across it, "
              "these clips cannot tell. " + r["note"]]
    return "\n".join(lines) + "\n"


def verdict(intervals: list[list[float]]) -> str:
    met = sum(lo >= GOAL_POINTS for lo, _ in intervals)
    missed = sum(hi < GOAL_POINTS for _, hi in intervals)
    return (f"met on {met}, missed on {missed}, not told apart on {len(intervals) - met - missed} of "
            f"{len(intervals)} pairs by their 95 % intervals")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"),
                    help="run.py's work folder: student-sN.pt, int4-sN.bin, corpus-demo (default %(default)s)")
    ap.add_argument("--seeds", default="0,1,2", help="the recorded pairs to read (default %(default)s)")
    ap.add_argument("--pair", nargs=2, action="append", type=Path, metavar=("STUDENT_PT", "MODEL_BIN"),
                    help="read this fp32 checkpoint and its INT4 model.bin instead of the recorded pairs (repeatable)")
    ap.add_argument("--corpus", type=Path, default=None, help="the corpus to read them on (default <work>/corpus-demo)")
    ap.add_argument("--splits", default="unseen,test", help="held-out splits, comma-separated (default %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE / "int4_gap",
                    help="writes OUT.json and OUT.md (default benchmarks/quality/int4_gap)")
    args = ap.parse_args()
    corpus = args.corpus or args.work / "corpus-demo"
    if not (corpus / "manifest.json").is_file():
        sys.exit(f"{corpus}: no corpus there: `python benchmarks/quality/run.py --demo --work {args.work}` makes it")
    if args.pair:
        pairs = [(f"{s.name} / {b.name}", s, b) for s, b in args.pair]
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        pairs = [(f"seed {k}", args.work / f"student-s{k}.pt", args.work / f"int4-s{k}.bin") for k in seeds]
    for _, s, b in pairs:
        for f in (s, b):
            if not f.is_file():
                sys.exit(f"{f}: missing; `python benchmarks/quality/run.py --demo --work {args.work}` records the pairs")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    t = time.monotonic()
    rows = []
    for name, s, b in pairs:
        rows.append({"name": name, "student": str(s), "model_bin": str(b), "splits": read_pair(s, b, corpus, splits)})
        print(name, json.dumps({k: [round(v["difference_points"], 2), [round(x, 2) for x in v["ci_points"]]]
                                for k, v in rows[-1]["splits"].items()}), flush=True)
    manifest = json.loads((corpus / "manifest.json").read_text())
    counts = {}
    for c in manifest["clips"]:
        counts[c["split"]] = counts.get(c["split"], 0) + 1
    result = {"command": "python benchmarks/quality/int4_gap.py " + " ".join(sys.argv[1:]),
              "corpus": str(corpus), "clips": {k: counts.get(k, 0) for k in splits},
              "pairs": rows, "seconds": round(time.monotonic() - t, 1),
              "by_split": {k: {"pairs": len(rows),
                               "mean_points": statistics.fmean(p["splits"][k]["difference_points"] for p in rows),
                               "verdict": verdict([p["splits"][k]["ci_points"] for p in rows])} for k in splits},
              "note": "The interval is for one pair's models on clips drawn like these; it does not cover the "
                      "wander between trainings (thread count, seed: attempts.md §51), which the seeds show."}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
