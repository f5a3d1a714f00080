"""English words beyond the negatives' few dozen, with their sounds named (SynthConfig.english_words, `pqlr data synth
--english-words`): the training voices saying words of Debian's American English word list that no text of the
corpus says (benchmarks/quality/attempts.md §47)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from hostside.data.corpus import CLIP_SAMPLES
from hostside.data.phonetic import clip_targets, reading_accent, tokens
from hostside.data.synth import SynthConfig, english_word_texts, negative_texts, split_voices, synth_corpus, task_classes
from hostside.data.texts import ENGLISH_WORDLIST, WORDLIST_ROOT, english_words, words
from hostside.errors import PqlrError, ToolchainMissing
from test_rhyme_negatives import TINY

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")
needs_list = pytest.mark.skipif(not (WORDLIST_ROOT / ENGLISH_WORDLIST[0]).is_file(),
                                reason=f"needs Debian's {ENGLISH_WORDLIST[1]}: `sudo apt-get install "
                                f"{ENGLISH_WORDLIST[1]}` (or `make deps`)")


def test_the_word_list_keeps_lowercase_words_of_letters_only(tmp_path):
    (tmp_path / "dict").mkdir()
    (tmp_path / "dict" / "american-english").write_text(
        "Aachen\nabacus\nabacus's\nx\nNATO\nzigzagging\nself-made\ncafé\nnoon\n", encoding="utf-8")
    english_words.cache_clear()
    assert english_words(root=tmp_path) == ("abacus", "noon")
    assert english_words(max_letters=10, root=tmp_path) == ("abacus", "zigzagging", "noon")
    english_words.cache_clear()
    with pytest.raises(ToolchainMissing, match="apt-get install wamerican"):
        english_words(root=tmp_path / "none")
    english_words.cache_clear()


@needs_list
def test_no_word_of_a_held_out_text_or_of_the_wake_phrase_is_trained_on():
    cfg = SynthConfig(**TINY, english_words=10)
    vocab = set(english_word_texts(cfg))
    _, keywords, unknown = task_classes(cfg)
    neg = negative_texts(cfg)
    held_out = {w for s in ("val", "test", "unseen") for ts in neg[s].values() for t in ts for w in words(t)}
    wake = {w for ts in keywords.values() for t in ts for w in words(t)}
    assert held_out and wake and not (held_out | wake | {w for t in unknown for w in words(t)}) & vocab
    # the list holds such words (so the test can fail): "hey", everyday words the held-out negatives say
    assert {"hey", "weather", "kitchen"} <= set(english_words()) and {"hey", "weather", "kitchen"}.isdisjoint(vocab)
    assert len(vocab) > 40_000                  # what is left is the list, not a handful


@needs_espeak
@needs_list
def test_english_words_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, english_words=12)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.meta["config_key"] == cfg.key() != base_cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    assert len(new) == 12 == ext.meta["english_words"]["clips"]
    train = {(v.engine, v.name) for v, sp in split_voices(cfg).items() if sp == "train"}
    vocab = set(english_word_texts(cfg))
    for c in new:
        assert c.split == "train" and c.label == "unknown" and (c.engine, c.voice) in train
        assert 1 <= len(c.text.split()) <= 2 and set(c.text.split()) <= vocab
        assert reading_accent(c) == "en-us"
    targets, vocab_ids, _ = clip_targets(new)             # most fit the window: a target, read in American English
    assert sum(1 for t in targets if t) >= len(new) // 2
    for t, c in zip(targets, new):
        if t:
            assert c.spoken <= CLIP_SAMPLES and [vocab_ids[i - 1] for i in t] == tokens(c.text, "en-us")
    assert synth_corpus(tmp_path / "w", cfg, progress=False).clips == ext.clips          # made whole: the same
    with pytest.raises(PqlrError, match="english_words"):
        replace(cfg, english_words=-1).validate()
