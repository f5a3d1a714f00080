"""Who and what goes into which split: voices, texts and noise sources.

The rules the evaluation relies on (tests/test_splits.py holds them):
- an espeak-ng voice is accent+variant; accents are split, variants are split, and a voice belongs to a split
  only when its accent *and* its variant both do (the other combinations are not used), so no test voice
  shares an accent or a variant with a training voice;
- other voices are grouped by the person behind them (hostside/data/engines.py SPEAKERS) and the speakers are
  split; the `unseen` speakers (by default piper's joe and the slt voices of festival and flite) are never
  trained on or selected on;
- negative texts are split by text, so test negatives are sentences and words training never saw;
- noise sources are split into a training pool and a disjoint test pool.
Every assignment is a pure function of the names and the seed.
"""
from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def _rank(name: str, seed: int, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{seed}:{name}".encode()).digest()[:8], "little")


def assign(names, seed: int, fractions: tuple[float, float, float], salt: str) -> dict[str, str]:
    """Split names by fractions, in an order drawn from the seed; with three or more names each split gets
    at least one."""
    names = sorted(set(names), key=lambda n: (_rank(n, seed, salt), n))
    n = len(names)
    if n == 0:
        return {}
    counts = [int(round(f * n)) for f in fractions]
    if n >= 3:
        counts = [max(1, c) for c in counts]
    while sum(counts) > n:
        counts[counts.index(max(counts))] -= 1
    counts[0] += n - sum(counts)
    out, i = {}, 0
    for split, c in zip(SPLITS, counts):
        for name in names[i: i + c]:
            out[name] = split
        i += c
    return out


def voice_splits(voices, seed: int, fractions: tuple[float, float, float], unseen_speakers=()) -> dict:
    """{Voice: split} for the given voices; voices whose accent and variant fall in different splits are left
    out. Unseen speakers map to "unseen"."""
    espeak = [v for v in voices if v.accent and v.speaker not in unseen_speakers]
    accents = assign({v.accent for v in espeak}, seed, fractions, "accent")
    variants = assign({v.variant for v in espeak}, seed, fractions, "variant")
    others = [v for v in voices if not v.accent and v.speaker not in unseen_speakers]
    speakers = assign({v.speaker for v in others}, seed, fractions, "speaker")
    out = {}
    for v in voices:
        if v.speaker in unseen_speakers:
            out[v] = "unseen"
        elif v.accent:
            if accents[v.accent] == variants[v.variant]:
                out[v] = accents[v.accent]
        else:
            out[v] = speakers[v.speaker]
    return out


def text_splits(texts, seed: int, fractions: tuple[float, float, float]) -> dict[str, str]:
    return assign(texts, seed, fractions, "text")


def voice_split(group: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """The split of one item drawn on its own (silence clips): a pure function of its name and the seed."""
    h = _rank(group, seed, "item") / 2**64
    if h < fractions[0]:
        return "train"
    return "val" if h < fractions[0] + fractions[1] else "test"
