#!/usr/bin/env python3
"""Wake words longer than the window. Synthesis before corpus format 4 placed each wake phrase in a 1 s window and cut a
longer one to its centre second, in training clips and in the test's wake-word files alike; a phoneme score that asks
the window to hold the whole phrase cannot find a cut one, and a cut training clip's CTC target still named every
phoneme. Format 4 keeps the phrase whole in its file and records its length (Clip.spoken); for a corpus made before,
this re-derives each unseen wake word's phrase as synthesis made it (the job's own seed: the engine's audio, its
speed perturbation, trimmed of silence). Then it reads every attempt's detector on the unseen wake-word files (the
protocol's windows and smoothing) and splits its misses into phrases that fit and phrases that were cut — at its
validation threshold and at the threshold where its test DET stays within 2 real false accepts an hour.

    .venv/bin/python benchmarks/quality/cut_phrases.py --work build/kd-demo NAME [NAME ...] [--json out.json]

NAME: attempt folders under <work>/attempts (attempt.py: student.pt, and row.json with the score, threshold and DET
its evaluation chose). The re-derived length is the engine's: espeak-ng and flite are deterministic; an
engine that samples (piper's noise) can differ by a few milliseconds between runs, so a phrase within a few
milliseconds of 1 s may fall either side.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside import evaluate as E  # noqa: E402
from hostside.data import synth as S  # noqa: E402
from hostside.data.corpus import CLIP_SAMPLES, SAMPLE_RATE, load_corpus  # noqa: E402
from hostside.data.features import FrontEnd  # noqa: E402
from hostside.keyword import detector_fn  # noqa: E402
from hostside.train import load_checkpoint  # noqa: E402

WINDOW_S = CLIP_SAMPLES / SAMPLE_RATE          # the clip, and the detector's window


def phrase_seconds(corpus, clips) -> np.ndarray:
    """Each clip's phrase as synthesis said it, trimmed, in seconds: as the clips record it (Clip.spoken, corpus format
    4 on), or re-derived for a corpus made before."""
    if all(c.spoken >= 0 for c in clips):
        return np.array([c.spoken / SAMPLE_RATE for c in clips])
    fields = {f.name for f in dataclasses.fields(S.SynthConfig)}
    cfg = S.SynthConfig(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in corpus.meta["config"].items() if k in fields})
    jobs = S._plan_jobs(cfg)
    pools, _ = S._noise_and_rooms(cfg)
    out = []
    for c in clips:
        job = jobs[int(Path(c.file).stem.split("_")[0])]          # clips are named by their job's index
        if (job["text"], job["voice"], job["engine"]) != (c.text, c.voice, c.engine):
            sys.exit(f"{c.file}: its job is not this clip's ({job['text']!r}, {job['voice']}): the corpus was made by "
                     f"another version of synthesis")
        rng = np.random.default_rng(job["seed"])
        pool = pools[S._pool(job["split"])]
        rng.integers(0, len(pool))                                 # _render's first draw: the noise source
        out.append(len(S.trim_silence(S._speech(job, cfg, rng))) / SAMPLE_RATE)
    return np.array(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="attempt folders under <work>/attempts")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--census", default="", help="also count the cut wake phrases of these splits (e.g. train,val): "
                                                 "a cut training clip's CTC target names phonemes it does not hold")
    args = ap.parse_args()
    corpus = load_corpus(args.work / "corpus")
    wake = corpus.classes[0]
    clips = [c for c in corpus.clips if c.split == "unseen" and c.label == wake]
    seconds = phrase_seconds(corpus, clips)
    cut = seconds > WINDOW_S
    print(f"unseen wake words: {len(clips)}; longer than the window (cut): {cut.sum()} ({100 * cut.mean():.1f} %); "
          f"median phrase {np.median(seconds):.2f} s")
    by_engine = {e: f"{int(cut[[c.engine == e for c in clips]].sum())} of {sum(c.engine == e for c in clips)}"
                 for e in sorted({c.engine for c in clips})}
    print("cut per engine:", by_engine)
    census = {}
    for split in filter(None, args.census.split(",")):
        some = [c for c in corpus.clips if c.split == split and c.label == wake]
        sec = phrase_seconds(corpus, some)
        census[split] = {"wake_words": len(some), "cut": int((sec > WINDOW_S).sum()),
                         "by_text": {t: f"{int((sec[[c.text == t for c in some]] > WINDOW_S).sum())} of "
                                        f"{sum(c.text == t for c in some)}" for t in sorted({c.text for c in some})}}
        print(f"{split}: {census[split]['cut']} of {len(some)} wake phrases longer than the window; by text: "
              f"{census[split]['by_text']}", flush=True)
    out = {"census": census, "unseen_wake_words": len(clips), "cut": int(cut.sum()), "cut_by_engine": by_engine,
           "seconds": seconds.round(3).tolist(), "attempts": {}}
    for name in args.names:
        folder = args.work / "attempts" / name
        row = json.loads((folder / "row.json").read_text())
        student = Path(row.get("checkpoint") or folder / "student.pt")     # attempt.py --checkpoint: trained elsewhere
        if not student.is_file():
            sys.exit(f"{folder}: no {student} (an attempt.py folder holds its checkpoint or names it)")
        net, ck = load_checkpoint(student)
        fe = FrontEnd.from_dict(ck["frontend"])
        fn = detector_fn(ck, row.get("score") or "classifier", span_s=row.get("score_span_s"),
                         best_span=bool(row.get("score_best_span")))
        got, posts = E._positive_posteriors(net, corpus, fe, fn, "unseen", 100.0, 0)
        assert [g.file for g in got] == [c.file for c in clips]
        det = E.Detector(threshold=row["threshold"], smooth=row["smoothing_windows"])
        res = {}
        for label, point in (("validation", {"threshold": row["threshold"]}), ("fa2", E.point_at(row["det"], 2.0))):
            if point is None:
                continue
            miss = E._missed(det, posts, point["threshold"])
            res[label] = {"threshold": point["threshold"], "frr": float(miss.mean()),
                          "frr_fit": float(miss[~cut].mean()), "frr_cut": float(miss[cut].mean()) if cut.any() else None}
        # the protocol's own figures, which these must reproduce
        res["check"] = {"frr_unseen": row["frr_unseen"], "det_frr_at_2": E.frr_at(row["det"], 2.0)}
        out["attempts"][name] = res
        print(f"{name}: " + "; ".join(f"{k} (threshold {v['threshold']:g}): FRR {100 * v['frr']:.1f} % = fit "
                                      f"{100 * v['frr_fit']:.1f} % / cut {100 * v['frr_cut']:.1f} %"
                                      for k, v in res.items() if k != "check"), flush=True)
    groups: dict[str, list] = {}
    for name, res in out["attempts"].items():
        groups.setdefault(name.rsplit("-s", 1)[0], []).append(res)
    for g, rows in groups.items():
        for k in ("validation", "fa2"):
            have = [r[k] for r in rows if k in r and r[k]["frr_cut"] is not None]
            if have:
                print(f"{g} ({len(have)} attempts), {k}: FRR " + " / ".join(
                    f"{x} {100 * statistics.mean(r[x] for r in have):.1f} %" for x in ("frr", "frr_fit", "frr_cut")))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
