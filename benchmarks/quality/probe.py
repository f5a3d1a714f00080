"""What a student answers, clip by clip: the probes behind attempts.md §11.

`say`: each voice says each text once, clean (no noise, no room), trimmed and placed in a 1 s window as the
corpus places an utterance; prints the clip classifier's p(wake word) per checkpoint.

    .venv/bin/python benchmarks/quality/probe.py say CKPT [CKPT ...] \\
        --voices festival:cmu_us_slt_arctic_hts,festival:ked_diphone,flite:slt \\
        --texts "hey keemee,hey kimmy,hey teemee,hey deemee,hey geemee,hey neemee,hey eemee"

`clips`: the clip classifier's accuracy on a corpus split, by voice (espeak-ng's voices together) and by kind
(wake word; rhymes of the other spellings, when the corpus has them; other unknown clips; silence):

    .venv/bin/python benchmarks/quality/probe.py clips CKPT [CKPT ...] \\
        --corpus "build/bench-quality/corpus-rhyme_negatives=150" --split train --kinds wake,rhyme

`separation`: how well a student ranks each voice's wake-word clips above the same voice's near misses (a rhyme, the
phrase cut short, another greeting: hostside/data/pairs.py), whatever its threshold: per voice, the share of
(wake word, near miss) pairs whose p(wake word) is in that order (ties half), averaged over the voices of a group;
a student that only moves its decision leaves it where it was, one that hears the onset raises it:

    .venv/bin/python benchmarks/quality/probe.py separation CKPT [CKPT ...] \\
        --corpus "build/bench-quality/corpus-rhyme_negatives=150" --split test

Clean single clips are not the evaluation's figures (evaluate.py: noise, rooms, streaming): they show where a
student's decision lies, not how often it is right.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hostside.data.corpus import SAMPLE_RATE, load_corpus, resample  # noqa: E402
from hostside.data.engines import ENGINES  # noqa: E402
from hostside.data.features import FrontEnd, corpus_features, features  # noqa: E402
from hostside.data.synth import place  # noqa: E402
from hostside.train import load_checkpoint, predict  # noqa: E402


def _load(paths: list[str]) -> list[tuple[str, object, FrontEnd]]:
    out = []
    for p in paths:
        net, ck = load_checkpoint(Path(p))
        out.append((Path(p).parent.name, net, FrontEnd.from_dict(ck["frontend"])))
    return out


def say(args) -> int:
    nets = _load(args.checkpoints)
    rng = np.random.default_rng(args.seed)
    print("| voice | text | " + " | ".join(n for n, _, _ in nets) + " |")
    print("|---|---|" + "---|" * len(nets))
    for v in args.voices.split(","):
        engine, _, name = v.partition(":")
        if engine not in ENGINES or not ENGINES[engine].available():
            sys.exit(f"{v}: engine {engine!r} is not installed here (`make deps`); known: {', '.join(ENGINES)}")
        for t in args.texts.split(","):
            audio, sr = ENGINES[engine].speak(t.strip(), name, rng)
            x = place(resample(audio, sr, SAMPLE_RATE), np.random.default_rng(1))
            x = 0.5 * x / (np.abs(x).max() + 1e-9)
            ps = [float(predict(net, features(x, fe)[None])[0, 0]) for _, net, fe in nets]
            print(f"| {v} | {t.strip()} | " + " | ".join(f"{p:.2f}" for p in ps) + " |")
    return 0


def _kind(c, rhymes: set[str]) -> str:
    if c.label == "silence":
        return "silence"
    if c.label != "unknown":
        return "wake"
    return "rhyme" if c.text in rhymes else "unknown"


def clips(args) -> int:
    corpus = load_corpus(Path(args.corpus))
    rhymes = {t for ts in corpus.meta.get("rhyme_negatives", {}).get("texts", {}).values() for t in ts}
    kinds = set(args.kinds.split(","))
    sub = [c for c in corpus.clips if c.split == args.split and _kind(c, rhymes) in kinds]
    if not sub:
        sys.exit(f"no {args.split} clips of kinds {sorted(kinds)} in {args.corpus}")
    part = type(corpus)(root=corpus.root, clips=sub, classes=corpus.classes, task=corpus.task, meta=corpus.meta)
    for name, net, fe in _load(args.checkpoints):
        x, y = corpus_features(part, fe)
        right = predict(net, x).argmax(1) == y
        groups = collections.defaultdict(list)
        for c, r in zip(sub, right):
            groups[("espeak-ng" if c.engine == "espeak-ng" else f"{c.engine}:{c.voice}", _kind(c, rhymes))].append(r)
        print(f"{name} ({args.split} clips right, by voice and kind)")
        for (voice, kind), r in sorted(groups.items()):
            print(f"  {voice:36s} {kind:8s} n={len(r):5d}  {np.mean(r):6.1%}")
    return 0


def _ordered(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a wake-word clip scores above a near miss), ties counted half (the Mann-Whitney statistic)."""
    above, tied = pos[:, None] > neg[None, :], pos[:, None] == neg[None, :]
    return float(above.mean() + 0.5 * tied.mean())


def separation(args) -> int:
    from hostside.data.pairs import corpus_phrase, near_miss_texts
    from hostside.data.texts import words
    corpus = load_corpus(Path(args.corpus))
    wake, phrase, spellings = corpus_phrase(corpus)
    near = near_miss_texts(phrase, spellings)
    sub = [c for c in corpus.clips if c.split == args.split and
           (c.label == wake or (c.label == "unknown" and " ".join(words(c.text)) in near))]
    voices = {c.voice for c in sub if c.label == wake} & {c.voice for c in sub if c.label != wake}
    sub = [c for c in sub if c.voice in voices]
    if not sub:
        sys.exit(f"no {args.split} voice of {args.corpus} says both the wake word and a near miss")
    part = type(corpus)(root=corpus.root, clips=sub, classes=corpus.classes, task=corpus.task, meta=corpus.meta)
    print(f"| checkpoint | group | voices | wake-word clips | near misses | ranked in order (mean over voices) |")
    print("|---|---|---|---|---|---|")
    for name, net, fe in _load(args.checkpoints):
        x, _ = corpus_features(part, fe)
        p = predict(net, x)[:, corpus.classes.index(wake)]
        per_voice = collections.defaultdict(lambda: ([], []))
        for c, pv in zip(sub, p):
            per_voice[c.voice][0 if c.label == wake else 1].append(pv)
        groups = collections.defaultdict(list)
        counts = collections.Counter()
        engine = {c.voice: c.engine for c in sub}
        for v, (pos, neg) in per_voice.items():
            g = "espeak-ng" if engine[v] == "espeak-ng" else f"{engine[v]}:{v}"
            for key in (g, "all"):
                groups[key].append(_ordered(np.array(pos), np.array(neg)))
                counts[key, "pos"] += len(pos)
                counts[key, "neg"] += len(neg)
        for g in sorted(groups, key=lambda k: (k == "all", k)):
            print(f"| {name} | {g} | {len(groups[g])} | {counts[g, 'pos']} | {counts[g, 'neg']} | "
                  f"{np.mean(groups[g]):.3f} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("say", help="p(wake word) for voices saying texts, clean")
    s.add_argument("checkpoints", nargs="+")
    s.add_argument("--voices", required=True, help="engine:voice,... (e.g. festival:ked_diphone,espeak-ng:en-us+f2)")
    s.add_argument("--texts", required=True, help="comma-separated texts")
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("clips", help="clip accuracy on a corpus split by voice and kind")
    c.add_argument("checkpoints", nargs="+")
    c.add_argument("--corpus", required=True)
    c.add_argument("--split", default="train", choices=("train", "val", "test", "unseen"))
    c.add_argument("--kinds", default="wake,rhyme,unknown", help="of wake, rhyme, unknown, silence (default wake,rhyme,unknown)")
    sp = sub.add_parser("separation", help="within-voice ranking of wake-word clips above near misses")
    sp.add_argument("checkpoints", nargs="+")
    sp.add_argument("--corpus", required=True)
    sp.add_argument("--split", default="test", choices=("train", "val", "test", "unseen"))
    args = ap.parse_args(argv)
    return {"say": say, "clips": clips, "separation": separation}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
