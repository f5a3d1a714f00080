#!/usr/bin/env python3
"""Can validation tell a good seed from a bad one? The same recipe trained with different seeds spans 62–100 %
unseen FRR at ≤ 2 real false accepts an hour (attempts.md §27–§28), and the figures validation already has
(clip accuracy, FRR at the chosen point) do not rank the seeds as the test does. This reads each student on
validation data only — its wake-word files (held-out voices) against real conversation that is not in the test
(Fish Fillets NG's dialogue, `--dialogue`) and against the corpus's own validation negatives — and compares that
ranking with the test's (unseen voices against the test's real speech, at equal false accepts).

    .venv/bin/python benchmarks/quality/seed_select.py --attempts build/kd-demo/attempts \\
        [--corpus build/kd-demo/corpus] [--dialogue cs,en,nl] [--line] [--pick 4] [--json out.json]

--line reads the same dialogue once more as an 8 kHz telephone line carries it (band_probe.py's `telephone`: 16 → 8
→ 16 kHz), the channel the test's real speech came through: whether the channel is what the rankings disagree on.

For every recipe (attempts named <recipe>-s<N>) with more seeds than --pick, every subset of --pick seeds is a
draw: the seed validation ranks first is "picked", and its test FRR is compared with the draw's mean (what an
unpicked seed gives on average) and with the draw's best (what an oracle would pick). Last, the threshold each set
of validation negatives chooses (the protocol's rule: 1 FA/h, its smoothing) and what it gives on the test. Posteriors
are cached beside each checkpoint (oprule.py), so a second run reads them back.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from det_smoothing import points  # noqa: E402
from det_table import recipe_of  # noqa: E402
from oprule import (REFRACTORY_S, STRIDE_MS, dialogue_posteriors, dialogue_streams, outcome, posteriors,  # noqa: E402
                    with_dialogue)

TEST_LIMITS = E.DET_LIMITS            # real false accepts an hour at which the test's unseen FRR is read
VAL_LIMITS = (2.0, 10.0)              # dialogue false accepts an hour at which validation's FRR is read


def curve(pos: list[np.ndarray], negs: list[np.ndarray], hours: float) -> list[dict]:
    """DET points at the protocol's smoothing: FRR of the wake-word files against false accepts an hour on the
    negative streams."""
    return points(pos, negs, hours, E.DETECTOR_SMOOTHING)


def spearman(x, y) -> float:
    """Rank correlation (average ranks for ties)."""
    def ranks(v):
        v = np.asarray(v, dtype=float)
        order = v.argsort(kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for u in np.unique(v):                    # ties share their mean rank
            r[v == u] = r[v == u].mean()
        return r
    a, b = ranks(x), ranks(y)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def line_streams(work: Path, streams: dict) -> dict:
    """The dialogue streams through an 8 kHz line, written once beside them (<dir>-line/)."""
    from band_probe import telephone
    from hostside.data.corpus import read_wav, write_wav
    out = []
    for st in streams["streams"]:
        rel = Path(st["file"])
        dst = Path(f"{rel.parent}-line") / rel.name
        if not (work / dst).is_file():
            x, sr = read_wav(work / rel)
            tmp = work / dst.with_suffix(".part.wav")
            write_wav(tmp, telephone(x, sr), sr)
            tmp.replace(work / dst)
        out.append({**st, "file": str(dst)})
    return {**streams, "streams": out}


def read(ckpt: Path, corpus: Path, streams: dict | None, work: Path, line: dict | None = None) -> dict:
    p = posteriors(ckpt, corpus)
    out = {"test": {str(x): E.frr_at(curve(p["unseen"], p["real"], float(np.sum(p["real_hours"]))), x)
                    for x in TEST_LIMITS},
           "val_clips_streams": {str(x): E.frr_at(curve(p["val"], [p["val_neg"]], p["val_hours"]), x)
                                 for x in VAL_LIMITS}}
    ops = {"val": p}
    if streams:
        posts, hours = dialogue_posteriors(ckpt, work, streams)
        out["val_dialogue"] = {str(x): E.frr_at(curve(p["val"], posts, sum(hours)), x) for x in VAL_LIMITS}
        out["dialogue_hours"] = sum(hours)
        ops["val + dialogue"] = with_dialogue(p, posts, hours)
    if line:
        posts, hours = dialogue_posteriors(ckpt, work, line)
        out["val_dialogue_line"] = {str(x): E.frr_at(curve(p["val"], posts, sum(hours)), x) for x in VAL_LIMITS}
        ops["val + dialogue through the line"] = with_dialogue(p, posts, hours)
    # the threshold each set of validation negatives chooses (the protocol's rule: 1 FA/h, its smoothing), and
    # what that threshold gives on the test
    out["operating_points"] = {}
    for name, q in ops.items():
        op = E.choose_operating_point(q["val"], q["val_neg"], q["val_hours"], STRIDE_MS, REFRACTORY_S, 1.0, None)
        o = outcome(p, op)
        out["operating_points"][name] = {k: o[k] for k in ("threshold", "false_accepts", "hours", "frr_unseen",
                                                            "false_accepts_per_hour_upper95")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attempts", type=Path, required=True, help="attempt.py folders (<name>/student.pt)")
    ap.add_argument("--corpus", type=Path, help="their corpus (default: <attempts>/../corpus)")
    ap.add_argument("--dialogue", default="cs,en,nl",
                    help="Fish Fillets NG dialogue languages for validation's real conversation ('' for none)")
    ap.add_argument("--line", action="store_true", help="also read the dialogue through an 8 kHz telephone line")
    ap.add_argument("--pick", type=int, default=4, help="seeds per draw (default 4)")
    ap.add_argument("--json", type=Path, help="write every student's readings and the draws here")
    args = ap.parse_args()
    corpus = args.corpus or args.attempts.parent / "corpus"
    if not (corpus / "manifest.json").is_file():
        raise SystemExit(f"{corpus}: no corpus there (give --corpus)")
    langs = tuple(x for x in args.dialogue.split(",") if x)
    work = corpus.parent
    streams = dialogue_streams(work, langs) if langs else None
    if args.line and not streams:
        raise SystemExit("--line reads the dialogue through a telephone line: give --dialogue languages")
    line = line_streams(work, streams) if args.line else None
    ckpts = sorted(args.attempts.glob("*/student.pt"))
    if not ckpts:
        raise SystemExit(f"{args.attempts}: no <name>/student.pt")
    students = {}
    for i, ck in enumerate(ckpts):
        print(f"[{i + 1}/{len(ckpts)}] {ck.parent.name}", file=sys.stderr, flush=True)
        students[ck.parent.name] = read(ck, corpus, streams, work, line)
    scores = [k for k in ("val_dialogue", "val_dialogue_line", "val_clips_streams") if k in next(iter(students.values()))]
    names = list(students)
    print(f"{len(names)} students; Spearman rank correlation of each validation reading with the test's unseen FRR "
          f"(positive: validation ranks the students as the test does)\n")
    print("| validation reading | " + " | ".join(f"test ≤ {x:g} FA/h" for x in TEST_LIMITS) + " |")
    print("|---|" + "---|" * len(TEST_LIMITS))
    corr = {}
    for s in scores:
        for v in VAL_LIMITS:
            key = f"{s} ≤ {v:g}/h"
            corr[key] = {str(x): spearman([students[n][s][str(v)] for n in names],
                                          [students[n]["test"][str(x)] for n in names]) for x in TEST_LIMITS}
            print(f"| {key} | " + " | ".join(f"{corr[key][str(x)]:+.2f}" for x in TEST_LIMITS) + " |")
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(recipe_of(n), []).append(n)
    draws = {}
    print(f"\nPicking 1 of {args.pick} seeds by validation, over every subset of {args.pick} seeds of a recipe: "
          f"test unseen FRR at ≤ 2 / 5 / 10 / 50 real FA/h, picked against the draw's mean and its best\n")
    print("| recipe | draws | validation reading | picked | mean of the draw | best of the draw |")
    print("|---|---|---|---|---|---|")
    for g, members in groups.items():
        if len(members) < args.pick:
            continue
        subsets = list(itertools.combinations(members, args.pick))
        for s in scores:
            for v in VAL_LIMITS:
                picked, mean, best = [], [], []
                for sub in subsets:
                    chosen = min(sub, key=lambda n: students[n][s][str(v)])
                    picked.append([students[chosen]["test"][str(x)] for x in TEST_LIMITS])
                    mean.append([statistics.fmean(students[n]["test"][str(x)] for n in sub) for x in TEST_LIMITS])
                    best.append([min(students[n]["test"][str(x)] for n in sub) for x in TEST_LIMITS])

                def fmt(rows):
                    return " / ".join(f"{100 * statistics.fmean(r[i] for r in rows):.1f}" for i in range(len(TEST_LIMITS))) + " %"
                key = f"{s} ≤ {v:g}/h"
                draws[f"{g}: {key}"] = {"draws": len(subsets), "picked": fmt(picked), "mean": fmt(mean), "best": fmt(best)}
                print(f"| {g} ({len(members)} seeds) | {len(subsets)} | {key} | {fmt(picked)} | {fmt(mean)} | {fmt(best)} |")
    print("\nThe threshold chosen on each set of validation negatives (the protocol's rule, 1 FA/h): real false "
          "accepts in the test's hours (sorted over the seeds) and the mean unseen FRR there\n")
    print("| recipe | validation negatives | thresholds | real false accepts | unseen FRR |")
    print("|---|---|---|---|---|")
    for g, members in groups.items():
        for name in students[members[0]]["operating_points"]:
            pts = [students[n]["operating_points"][name] for n in members]
            print(f"| {g} ({len(members)} seeds) | {name} | {', '.join(format(q['threshold'], 'g') for q in pts)} | "
                  f"{', '.join(str(q['false_accepts']) for q in sorted(pts, key=lambda q: q['false_accepts']))} in "
                  f"{pts[0]['hours']:.2f} h | {100 * statistics.fmean(q['frr_unseen'] for q in pts):.1f} % |")
    if args.json:
        args.json.write_text(json.dumps({"students": students, "spearman": corr, "draws": draws,
                                         "dialogue": list(langs), "line": args.line, "pick": args.pick}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
