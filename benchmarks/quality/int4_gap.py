#!/usr/bin/env python3
"""How well is the INT4 student's accuracy gap to its fp32 student known? Each pair read clip by clip on a corpus's
held-out splits, the gap with its 95 % interval for paired proportions (hostside.evaluate.paired_difference:
Newcombe's method 10), and how many clips the interval would need to be ±0.5 points — the issue's goal for the gap.

    .venv/bin/python benchmarks/quality/int4_gap.py [--work build/bench-quality] [--seeds 0,1,2]
        [--corpus DIR | --unseen-per-class N] [--splits unseen,test] [--out benchmarks/quality/int4_gap]
    .venv/bin/python benchmarks/quality/int4_gap.py --pair FIRST SECOND [--pair ...] --corpus DIR

--pair reads any two models of one task (each a checkpoint or a model.bin), the second's accuracy minus the first's:
a student and its INT4 model.bin, or two INT4 recipes of one student.

    .venv/bin/python benchmarks/quality/int4_gap.py --detector FIRST/eval.json SECOND/eval.json [--detector ...]
        --corpus DIR [--splits unseen] --out OUT

--detector compares two detectors instead, each as `pqlr eval` read it on DIR (its eval.json, at its own operating
point): the second's false rejection rate minus the first's on the same wake-word files, with the same interval.

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


def _quality_run():
    """benchmarks/quality/run.py as a module of its own name: other benchmarks have a run.py too, and a plain
    `import run` would stand in for theirs in sys.modules."""
    import importlib.util
    if "quality_run" not in sys.modules:
        spec = importlib.util.spec_from_file_location("quality_run", HERE / "run.py")
        sys.modules["quality_run"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["quality_run"])
    return sys.modules["quality_run"]


_run = _quality_run()
INT4_GOAL_POINTS, demo_corpus, interval_verdict = _run.INT4_GOAL_POINTS, _run.demo_corpus, _run.interval_verdict
more_unseen_corpus = _run.more_unseen_corpus


def model_of(path: Path):
    """(front end, predict: features → class indices) for a pqlr checkpoint (.pt: the fp32 model) or a model.bin
    (the integer model, run by the numpy reference the board matches bit for bit)."""
    from hostside.artifact import read_model_bin
    from hostside.data.features import FrontEnd
    from hostside.keyword import GraphPredictor
    from hostside.train import load_checkpoint, predict
    if path.suffix == ".bin":
        graph = read_model_bin(path).graph
        manifest = path.with_suffix(".json")            # pqlr export writes the front end beside the model.bin
        frontend = json.loads(manifest.read_text()).get("frontend") if manifest.is_file() else None
        if not frontend:
            raise SystemExit(f"{path}: its front end is read from {manifest}, written beside it by `pqlr export`")
        return FrontEnd.from_dict(frontend), lambda x: GraphPredictor(graph, wake_score=False)(None, x).argmax(1)
    model, ck = load_checkpoint(path)
    return FrontEnd.from_dict(ck["frontend"]), lambda x: predict(model, x).argmax(1)


def read_pair(first: Path, second: Path, corpus_dir: Path, splits: list[str]) -> dict:
    """{split: paired_difference(first right, second right)} — the second's accuracy minus the first's — on the
    corpus's clips of those splits. Each: a checkpoint (.pt) or a model.bin."""
    from hostside.data.corpus import load_corpus
    from hostside.data.features import corpus_features
    fe, pred_a = model_of(first)
    fe_b, pred_b = model_of(second)
    if fe_b.to_dict() != fe.to_dict():
        raise SystemExit(f"{second} hears another front end than {first}: not two models of one task")
    corpus = load_corpus(corpus_dir)
    x, y = corpus_features(corpus, fe)
    where = np.array([c.split for c in corpus.clips])
    out = {}
    for split in splits:
        keep = where == split
        if not keep.any():
            raise SystemExit(f"{corpus_dir}: no {split!r} clips (splits there: {sorted(set(where))})")
        out[split] = paired_difference(pred_a(x[keep]) == y[keep], pred_b(x[keep]) == y[keep])
    return out


def detector_pair(first: Path, second: Path, corpus_dir: Path, splits: list[str]) -> dict:
    """{split: the second detector's FRR minus the first's, in points, with its 95 % interval for paired proportions}
    on the same wake-word files, each detector as `pqlr eval` read it on this corpus (its eval.json)."""
    from hostside.data.corpus import load_corpus
    evals = [json.loads(Path(f).read_text())["wakeword"] for f in (first, second)]
    if evals[0]["positive_class"] != evals[1]["positive_class"]:
        raise SystemExit(f"{first} and {second} detect different classes: not two detectors of one task")
    corpus = load_corpus(corpus_dir)
    out = {}
    for split in splits:
        files = [c.file for c in corpus.clips if c.split == split and c.label == evals[0]["positive_class"]]
        hits = []
        for f, ww in zip((first, second), evals):
            if ww.get(f"positives_{split}") != len(files) or f"missed_files_{split}" not in ww:
                raise SystemExit(f"{f}: not read on {corpus_dir}'s {len(files)} {split} wake-word files "
                                 f"(`pqlr eval --corpus {corpus_dir}` writes it)")
            missed = set(ww[f"missed_files_{split}"])
            hits.append(np.array([x not in missed for x in files]))
        d = paired_difference(hits[0], hits[1])           # detection rate, second − first
        lo, hi = d["ci_points"]
        out[split] = {"n": d["n"], "frr_first": 1 - d["a_right"] / d["n"], "frr_second": 1 - d["b_right"] / d["n"],
                      "threshold_first": evals[0]["threshold"], "threshold_second": evals[1]["threshold"],
                      "missed_by_first_only": d["b_only"], "missed_by_second_only": d["a_only"],   # a_only: first hit
                      "frr_difference_points": 0.0 - d["difference_points"], "ci_points": [0.0 - hi, 0.0 - lo]}
    return out


def detector_markdown(r: dict) -> str:
    lines = ["# Two detectors on the same wake-word files", "", f"Command: `{r['command']}`  ",
             f"Corpus: {r['corpus']}", "",
             "Each detector at the operating point its eval.json holds; the second's false rejection rate minus the "
             "first's on the same files, with its 95 % interval for paired proportions (Newcombe 1998, method 10).", "",
             "| pair | split | files | first: FRR (threshold) | second: FRR (threshold) | missed by first only / second only | second − first, points (95 % interval) |",
             "|---|---|---|---|---|---|---|"]
    for p in r["pairs"]:
        for split, d in p["splits"].items():
            lo, hi = d["ci_points"]
            lines.append(f"| {p['name']} | {split} | {d['n']} | {100 * d['frr_first']:.2f} % ({d['threshold_first']:g}) | "
                         f"{100 * d['frr_second']:.2f} % ({d['threshold_second']:g}) | {d['missed_by_first_only']} / "
                         f"{d['missed_by_second_only']} | {d['frr_difference_points']:+.2f} ({lo:+.2f} to {hi:+.2f}) |")
    return "\n".join(lines) + "\n"


def markdown(r: dict) -> str:
    lines = ["# The INT4 student's accuracy gap, and how well it is known", "",
             f"Command: `{r['command']}`  ", f"Corpus: {r['corpus']} ({r['clips']})", "",
             "Per pair (fp32 = the first model, INT4 = the second), INT4 − fp32 clip accuracy on the same clips (classifier argmax on 1 s clips), its 95 % "
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
                     f"(≥ {INT4_GOAL_POINTS:g} points) {s['verdict']}.")
    lines += ["", f"A pair whose interval lies wholly at or above {INT4_GOAL_POINTS:g} meets the goal; wholly below, "
              "misses it; across it, these clips cannot tell. " + r["note"]]
    return "\n".join(lines) + "\n"


def verdict(intervals: list[list[float]]) -> str:
    met, missed, open_ = interval_verdict(intervals)
    return (f"met on {met}, missed on {missed}, not told apart on {open_} of {len(intervals)} pairs by their 95 % "
            f"intervals")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"),
                    help="run.py's work folder: student-sN.pt, int4-sN.bin, corpus-demo (default %(default)s)")
    ap.add_argument("--seeds", default="0,1,2", help="the recorded pairs to read (default %(default)s)")
    ap.add_argument("--pair", nargs=2, action="append", type=Path, metavar=("FIRST", "SECOND"),
                    help="read these two models instead of the recorded pairs, the second's accuracy minus the "
                         "first's (repeatable); each a checkpoint (.pt) or a model.bin — e.g. an fp32 student and its "
                         "INT4 model.bin, or two INT4 model.bins of one student")
    ap.add_argument("--detector", nargs=2, action="append", type=Path, metavar=("FIRST", "SECOND"),
                    help="compare two detectors' false rejection rates instead, each an eval.json that `pqlr eval` "
                         "wrote on --corpus (repeatable)")
    ap.add_argument("--corpus", type=Path, default=None, help="the corpus to read them on (default <work>/corpus-demo)")
    ap.add_argument("--unseen-per-class", type=int, default=None, metavar="N",
                    help="read them on the demo's corpus made again with N unseen clips per class and unseen voice "
                         "(the recorded run's: 80; its seed, texts and voices as before) in "
                         "<work>/corpus-demo-unseenN, synthesised once (~9 min on 2 cores for N = 640)")
    ap.add_argument("--splits", default="unseen,test", help="held-out splits, comma-separated (default %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE / "int4_gap",
                    help="writes OUT.json and OUT.md (default benchmarks/quality/int4_gap)")
    args = ap.parse_args()
    if args.unseen_per_class is not None:
        if args.corpus or args.unseen_per_class < 1:
            ap.error("--unseen-per-class N (N ≥ 1) makes its own corpus: leave --corpus out")
        corpus = more_unseen_corpus(args.work / "corpus-demo", demo_corpus(), args.unseen_per_class)
    else:
        corpus = args.corpus or args.work / "corpus-demo"
    if not (corpus / "manifest.json").is_file():
        sys.exit(f"{corpus}: no corpus there: `python benchmarks/quality/run.py --demo --work {args.work}` makes it")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if args.detector:
        if args.pair:
            ap.error("--detector and --pair: one kind of comparison at a time")
        rows = [{"name": f"{a.parent.name} → {b.parent.name}", "first": str(a), "second": str(b),
                 "splits": detector_pair(a, b, corpus, splits)} for a, b in args.detector]
        result = {"command": "python benchmarks/quality/int4_gap.py " + " ".join(sys.argv[1:]), "corpus": str(corpus),
                  "pairs": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        args.out.with_suffix(".md").write_text(detector_markdown(result))
        print(detector_markdown(result))
        return 0
    if args.pair:
        label = lambda p: f"{p.parent.name}/{p.name}" if p.name == "model.bin" else p.name   # noqa: E731
        pairs = [(f"{label(s)} → {label(b)}", s, b) for s, b in args.pair]
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        pairs = [(f"seed {k}", args.work / f"student-s{k}.pt", args.work / f"int4-s{k}.bin") for k in seeds]
    if not pairs:
        ap.error("no pairs to read: give --seeds or --pair")
    for _, s, b in pairs:
        for f in (s, b):
            if not f.is_file():
                sys.exit(f"{f}: missing; `python benchmarks/quality/run.py --demo --work {args.work}` records the pairs")
    t = time.monotonic()
    rows = []
    for name, s, b in pairs:
        rows.append({"name": name, "student": str(s), "model_bin": str(b), "splits": read_pair(s, b, corpus, splits)})
        print(name, json.dumps({k: [round(v["difference_points"], 2), [round(x, 2) for x in v["ci_points"]]]
                                for k, v in rows[-1]["splits"].items()}), flush=True)
    result = {"command": "python benchmarks/quality/int4_gap.py " + " ".join(sys.argv[1:]),
              "corpus": str(corpus), "clips": {k: rows[0]["splits"][k]["n"] for k in splits},
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
