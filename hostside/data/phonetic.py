"""Phoneme targets for training's auxiliary CTC loss (`pqlr train --phoneme-ctc`).

A keyword-spotting clip's label says only which class it is; its text says which sounds are in it. Each training
clip whose whole utterance lies in its 1 s window gets the phonemes espeak-ng reads its text as (American English,
IPA; diphthongs and affricates one symbol each, as hostside/data/kokoro.py writes them; stress, length and
punctuation dropped): the wake word, its spellings, the near misses that differ from it in one sound, short words
and phrases. Silence clips get the empty sequence (nothing but blank). Clips with no target, left out of the loss:
people's recordings (their files carry no transcript), and windows cut from a longer utterance — a text of more
than `max_tokens` phonemes is taken to be one (1 s holds about 10–14 phonemes of ordinary speech), since which of
its sounds a random cut kept is not known; and any clip whose speech synthesis recorded as longer than the window
(`Clip.spoken`: a phrase said slowly, whose window holds only its last second; 14.7 % of the demo corpus's training
wake words before synthesis kept it whole, benchmarks/quality/cut_phrases.py). A clip that does not record its length
(`spoken` -1: corpora made before, recordings) is taken by its text alone. A clip said by espeak-ng's voice of another
language (SynthConfig.native_negatives: words of that language) is read in that language (`reading_accent`); its
sounds join the vocabulary beside English's (one inventory, IPA).
"""
from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .corpus import CLIP_SAMPLES, Clip

MAX_TOKENS = 14
_DROP = set("ˈˌːˑ.,?!;:-'\" ")          # stress, length, punctuation and word breaks: not sounds
NO_TRANSCRIPT = ("human", "none")        # engines whose clips carry no text to read
_SWITCH = re.compile(r"\([^()\s]+\)")     # espeak-ng's language switch marks, "(en)" … "(fr)" (written "(fɹ)"
                                         # once r is ɹ): not sounds


def tokens(text: str, accent: str = "en-us") -> list[str]:
    """The phoneme symbols espeak-ng reads `text` as, one per sound (hostside/data/kokoro.py's notation)."""
    from .kokoro import phonemes
    return _symbols(phonemes(text, accent))


def _symbols(written: str) -> list[str]:
    return [ch for ch in _SWITCH.sub("", written) if ch not in _DROP and not ch.isspace()]


BATCH = 250         # texts one espeak-ng process reads (read_all)


def read_all(wanted: list[tuple[str, str]], workers: int = 8) -> dict[tuple[str, str], list[str]]:
    """tokens(text, accent) of every (text, accent): the texts without a clause mark a language's BATCH at a time in
    one espeak-ng process (kokoro.phonemes_batch: the same reading, ten times faster than a process a text), the rest —
    and any batch whose lines do not come out one a text — a process each."""
    from .kokoro import batchable, phonemes_batch
    by: dict[str, list[str]] = {}
    alone = [(text, accent) for text, accent in wanted if not batchable(text)]
    for text, accent in wanted:
        if batchable(text):
            by.setdefault(accent, []).append(text)
    chunks = [(accent, texts[i: i + BATCH]) for accent, texts in by.items() for i in range(0, len(texts), BATCH)]
    read = {}
    with ThreadPoolExecutor(workers) as pool:
        for (accent, texts), written in zip(chunks, pool.map(lambda c: phonemes_batch(c[1], c[0]), chunks)):
            if written is None:
                alone += [(t, accent) for t in texts]
            else:
                read.update({(t, accent): _symbols(w) for t, w in zip(texts, written)})
        read.update(zip(alone, pool.map(lambda ta: tokens(*ta), alone)))
    return read


def reading_accent(clip: Clip) -> str:
    """The espeak-ng language a clip's text is read in: American English (the targets of every English voice alike),
    or, for espeak-ng's voice of another language ("de+m3": language, then variant), that language."""
    accent, plus, _ = clip.voice.partition("+")
    if clip.engine == "espeak-ng" and plus and accent and not accent.startswith("en"):
        return accent
    return "en-us"


def keyword_classes(classes) -> list[str]:
    """The classes whose clips say a keyword (clip_targets' `keywords`): all but unknown and silence."""
    return [c for c in classes if c not in ("unknown", "silence")]


def clip_targets(clips: list[Clip], keywords: list[str] = (), silence: str = "silence",
                 max_tokens: int = MAX_TOKENS, workers: int = 8) -> tuple[list[list[int] | None], tuple[str, ...], dict]:
    """For each clip its phoneme target as indices into the returned vocabulary, counting from 1 (0 is CTC's
    blank), [] for silence, None where it has none (see the module's docstring); the vocabulary (every symbol of
    the targets, sorted); and counts of what was given, with (under "keywords") each of the `keywords` labels' phoneme
    sequences as its clips were given them (hostside/keyword.py scores those). espeak-ng reads each distinct text
    once (read_all)."""
    wanted = sorted({(c.text, reading_accent(c)) for c in clips if c.label != silence and c.engine not in NO_TRANSCRIPT
                     and c.text and len(c.text) <= 4 * max_tokens})    # far longer texts cannot fit (≥ 1 letter a sound)
    read = read_all(wanted, workers)
    fits = {t: p for t, p in read.items() if 0 < len(p) <= max_tokens}
    vocab = tuple(sorted({s for p in fits.values() for s in p}))
    index = {s: i + 1 for i, s in enumerate(vocab)}
    out: list[list[int] | None] = []
    for c in clips:
        if c.label == silence:
            out.append([])
        elif (c.text, reading_accent(c)) in fits and c.engine not in NO_TRANSCRIPT and c.spoken <= CLIP_SAMPLES:
            out.append([index[s] for s in fits[c.text, reading_accent(c)]])
        else:
            out.append(None)
    stats = {"vocabulary": "".join(vocab), "clips": len(clips),
             "with_phonemes": sum(1 for t in out if t), "silence": sum(1 for t in out if t == []),
             "without_target": sum(1 for t in out if t is None), "max_tokens": max_tokens,
             "longer_than_window": sum(1 for c in clips if c.spoken > CLIP_SAMPLES),
             "texts_read": len(wanted), "texts_that_fit": len(fits),
             "other_languages": dict(sorted(Counter(reading_accent(c) for c, t in zip(clips, out)
                                                    if t and reading_accent(c) != "en-us").items())),
             "keywords": {k: sorted({"".join(fits[c.text, reading_accent(c)]) for c, t in zip(clips, out)
                                     if c.label == k and t})
                          for k in keywords}}
    return out, vocab, stats
