"""Near-miss pairs for a margin loss (`pqlr train --pair-loss`): each wake-word training clip beside the clips in
which the same voice says something near the phrase that is not it (texts.hard_negatives: a rhyme, the phrase cut
short, another greeting, its words alone; and the rhymes of its other spellings). Among them, those whose last word
rhymes with the clip's own spelling ("hey keemee" → "hey teemee", "hey kimi" → "hey timi") come first: a pair then
differs in one onset, said by one voice, which is the distinction the students fail to learn (attempts.md §11)."""
from __future__ import annotations

import numpy as np

from ..errors import PqlrError
from .texts import _onset_split, hard_negatives, spelling_rhymes, words


def near_miss_texts(phrase: str, spellings=()) -> set[str]:
    """The texts (words, lower case, no punctuation) that are near the phrase and not it."""
    rhymes = [t for group in spelling_rhymes(phrase, spellings).values() for t in group]
    return {" ".join(words(t)) for t in (*hard_negatives(phrase, spellings), *rhymes)}


def _rime(text: str) -> str:
    w = words(text)
    return _onset_split(w[-1])[1] if w else ""


def partners(clips, wake_label: str, unknown_label: str, phrase: str, spellings=()) -> list[np.ndarray]:
    """For each clip (in the order given), the indices of its partners: for a clip labelled `wake_label`, the clips
    of the same voice labelled `unknown_label` whose text is a near miss of the phrase, only those that rhyme with
    its own spelling when the voice has any; empty for every other clip and for voices without near misses."""
    near = near_miss_texts(phrase, spellings)
    if not near:
        raise PqlrError(f"the phrase {phrase!r} has no near misses to pair with (texts.hard_negatives is empty)")
    by_voice: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        if c.label == unknown_label and " ".join(words(c.text)) in near:
            by_voice.setdefault(c.voice, []).append(i)
    out = []
    empty = np.zeros(0, dtype=np.int64)
    for c in clips:
        pool = by_voice.get(c.voice) if c.label == wake_label else None
        if not pool:
            out.append(empty)
            continue
        rime = _rime(c.text)
        same = [j for j in pool if _rime(clips[j].text) == rime]
        out.append(np.asarray(same or pool, dtype=np.int64))
    return out


def corpus_phrase(corpus) -> tuple[str, str, tuple[str, ...]]:
    """(wake class, phrase, spellings) a wake-word corpus was synthesised with. Raises PqlrError for a corpus that is
    not a wake-word corpus made by `pqlr data synth`."""
    config = (corpus.meta or {}).get("config") or {}
    phrase = config.get("phrase")
    if corpus.task != "wakeword" or not phrase or "unknown" not in corpus.classes:
        raise PqlrError(f"{corpus.root}: pairing wake-word clips with near misses said by the same voice needs a "
                        "wake-word corpus made by `pqlr data synth` (its manifest names the phrase)")
    from .synth import KNOWN_SPELLINGS, label_of
    spellings = tuple(config["spellings"]) if config.get("spellings") is not None else KNOWN_SPELLINGS.get(phrase, ())
    wake = label_of(phrase)
    if wake not in corpus.classes:
        raise PqlrError(f"{corpus.root}: no class {wake!r} for the phrase {phrase!r} (classes {list(corpus.classes)})")
    return wake, phrase, spellings


def corpus_partners(corpus, split: str = "train") -> tuple[list[np.ndarray], int]:
    """partners() over a wake-word corpus's split (corpus_phrase), and the wake class's index."""
    wake, phrase, spellings = corpus_phrase(corpus)
    return partners(corpus.split(split), wake, "unknown", phrase, spellings), list(corpus.classes).index(wake)
