#!/usr/bin/env python3
"""A wake word said in one breath with other speech. The test's wake-word files hold the phrase in their middle second
(a phrase longer than a second ending there) with only noise around it; people also say "hey kimi, turn the light
on". This reads the unseen voices' wake-word files three ways — as they are, with one second of a test voice's
sentence right after the phrase's second, and right before it (the sentence scaled to the loudness of the phrase's
second, its own noise kept), each stream preceded by the room as the protocol reads it (evaluate.room_lead, for a
score over a span) — and a fourth, "nothing before": the file alone in a stream that begins with it, as the protocol
read it before 2026-12-05 (a span reaching before the file then reads silence) — through each attempt's own detector
(its wake score, smoothing and validation-chosen threshold, from its eval.json), and at the thresholds where that
attempt's test DET stays within 2 and 10 real false accepts an hour. A score that asks the whole window to be the phrase (`pqlr eval --score phonemes`) should lose wake
words here; one that frees the speech around the phrase (`phonemes-anywhere`) or pools it (the classifier) should
not. Test data throughout, chosen on nothing: a probe of what each score does with connected speech, not a figure to
select on.

    .venv/bin/python benchmarks/quality/connected.py --attempts build/kd-demo/attempts NAME [NAME ...]
        [--corpus build/kd-demo/corpus] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside import evaluate as E  # noqa: E402

LIMITS = (2.0, 10.0)
WAYS = ("alone", "speech after", "speech before", "nothing before")


def sentence_windows(corpus, n: int, seed: int = 0) -> list[np.ndarray]:
    """n one-second windows of the test voices' sentences (test-split unknown clips of five or more words), drawn
    with a fixed seed, one per wake-word file."""
    pool = [c for c in corpus.clips if c.split == "test" and c.label == "unknown" and c.engine not in ("human", "none")
            and len(c.text.split()) >= 5]
    if not pool:
        raise SystemExit("the corpus has no test-split sentence clips to put beside the wake words")
    rng = np.random.default_rng(seed)
    return [corpus.audio(pool[i]) for i in rng.integers(0, len(pool), n)]


def variants(corpus, clip, sentence: np.ndarray) -> dict[str, np.ndarray]:
    """The wake-word file alone, with the sentence over the second after the phrase's, and over the one before it
    (before the phrase's start when it is longer than its window, Clip.spoken; the file padded with silence where
    its context before the phrase is shorter than a second — the sentence keeps its own noise)."""
    audio = E._stream_audio(corpus, clip.file, 16000)
    a, b = clip.offset, clip.offset + 16000
    level = np.sqrt(np.mean(audio[a:b] ** 2)) / (np.sqrt(np.mean(sentence ** 2)) + 1e-9)
    first = b - max(16000, clip.spoken)                 # where the phrase's second (or the phrase) begins
    pad = max(0, 16000 - first)

    def over(x: np.ndarray, start: int) -> np.ndarray:
        lo, hi = max(0, start), min(len(x), start + 16000)
        x[lo:hi] += level * sentence[lo - start: hi - start]
        return x
    return {"alone": audio, "speech after": over(audio.copy(), b),
            "speech before": over(np.concatenate([np.zeros(pad), audio]), first + pad - 16000),
            "nothing before": audio}


def read(work: Path, name: str, corpus, sentences) -> dict:
    from hostside.data.features import FrontEnd
    from hostside.keyword import detector_fn
    from hostside.train import load_checkpoint, nhwc
    folder = work / "attempts" / name
    ww = json.loads((folder / "eval" / "eval.json").read_text())["wakeword"]
    score = ww.get("score", "classifier")
    row = json.loads((folder / "row.json").read_text())
    net, ck = load_checkpoint(row.get("checkpoint") or folder / "student.pt")    # attempt.py --checkpoint: elsewhere
    fe = FrontEnd.from_dict(ck["frontend"])
    span = ww.get("score_span_s")                       # the phonemes score over a longer span
    fn = detector_fn(ck, score, span_s=span, stride_ms=ww["stride_ms"], best_span=ww.get("score_best_span", False))
    if getattr(fn, "streaming", False):
        score = f"{score} over {'up to ' if fn.best_span else ''}{span:g} s"
    det = E.Detector(1.0, ww["smoothing_windows"], ww["stride_ms"], ww["refractory_s"])
    clips = [c for c in corpus.clips if c.split == "unseen" and c.label == corpus.classes[0]]
    peaks = {w: [] for w in WAYS}
    lead = E.lead_windows(getattr(fn, "history_s", 0.0), ww["stride_ms"])      # 0 for a score of each window alone
    room = int(round(lead * ww["stride_ms"] * 16))
    with nhwc(net):
        for clip, sentence in zip(clips, sentences):
            ways = variants(corpus, clip, sentence)
            before = E.room_lead(clip, ways["alone"], room, 16000)
            for way, audio in ways.items():
                k = 0 if way == "nothing before" else lead
                if k:
                    audio = np.concatenate([before, audio])
                p = E.stream_posteriors(net, fn, audio, fe, ww["stride_ms"])[k:]     # each file its own stream
                peaks[way].append(det.smoothed(p).max())
    peaks = {w: np.array(v) for w, v in peaks.items()}
    points = ww["det"]["points"]
    at = {"validation": ww["threshold"]}
    for limit in LIMITS:
        p = E.point_at(points, limit)
        at[f"<= {limit:g} FA/h"] = p["threshold"] if p else None
    return {"name": name, "score": score, "files": len(clips),
            "frr": {where: ({w: float((peaks[w] < t).mean()) for w in WAYS} | {"threshold": t}) if t is not None
                    else None for where, t in at.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="attempt folders under <work>/attempts (evaluated by attempt.py)")
    ap.add_argument("--attempts", type=Path, default=Path("build/kd-demo/attempts"))
    ap.add_argument("--corpus", type=Path, default=None, help="default: <attempts>/../corpus")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from hostside.data.corpus import load_corpus
    work = args.attempts.parent
    corpus = load_corpus(args.corpus or work / "corpus")
    n = sum(1 for c in corpus.clips if c.split == "unseen" and c.label == corpus.classes[0])
    sentences = sentence_windows(corpus, n)
    rows = [read(work, name, corpus, sentences) for name in args.names]
    print("| attempt | score | threshold at | unseen FRR: " + " / ".join(WAYS) + " |\n|---|---|---|---|")
    for r in rows:
        for where, f in r["frr"].items():
            if f:
                print(f"| {r['name']} | {r['score']} | {where} ({f['threshold']:g}) | "
                      + " / ".join(f"{100 * f[w]:.1f} %" for w in WAYS) + " |")
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["score"], []).append(r)
    print("\nmean over attempts, per score:")
    for score, rs in groups.items():
        for where in rs[0]["frr"]:
            vals = [r["frr"][where] for r in rs if r["frr"][where]]
            if vals:
                print(f"  {score:18s} {where:14s} " + " / ".join(
                    f"{100 * statistics.fmean(v[w] for v in vals):.1f} %" for w in WAYS) + f"  ({len(vals)} attempts)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
