"""Kokoro-82M's voices saying English (hostside/data/kokoro.py): the phoneme notation, the voices and their mixes,
the engine, and the training-only extensions of a corpus (SynthConfig.kokoro_voices, SynthConfig.kokoro_negatives)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hostside.data import kokoro
from hostside.data.corpus import read_audio
from hostside.data.engines import ENGINES
from hostside.data.synth import PASSAGE_SENTENCES, PASSAGE_WINDOWS, SynthConfig, synth_corpus
from hostside.errors import PqlrError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")
needs_kokoro = pytest.mark.skipif(not kokoro.available(), reason=f"needs Kokoro-82M: {kokoro.INSTALL}")


@needs_espeak
def test_phonemes_are_espeak_ngs_in_the_models_notation():
    assert kokoro.phonemes("hey kimi") == "hˈA kˈɪmi"
    assert kokoro.phonemes("hey keemee") == "hˈA kˈiːmiː"
    assert kokoro.phonemes("hey, kimi?") == "hˈA, kˈɪmi?"                    # clauses and the final mark kept
    us = kokoro.phonemes("church judge, boy now go by")
    assert "ʧ" in us and "ʤ" in us and "Y" in us and "W" in us and "O" in us and "I" in us
    assert not any(x in us for x in ("tʃ", "dʒ", "oʊ", "aɪ"))
    gb = kokoro.phonemes("go there", "en-gb-x-rp")
    assert "Q" in gb and "əʊ" not in gb                                      # the British diphthong has its own symbol


@needs_kokoro
def test_every_symbol_written_is_one_the_model_reads():
    vocab = kokoro._tables()[0]
    for accent in kokoro.ACCENTS:
        for text in ("hey kimi", "she thought about changing the weather, didn't she?", "hey timmy", "a huge orange"):
            ph = kokoro.phonemes(text, accent)
            assert set(ph) <= set(vocab), (text, accent, sorted(set(ph) - set(vocab)))


@needs_kokoro
def test_voices_and_mixes():
    names = kokoro.voices()
    assert len(names) >= 2 and all(n.isidentifier() for n in names)
    a, b = names[0], names[-1]
    mix = kokoro.style_table(kokoro.mix_name(a, b, 0.4))
    assert np.allclose(mix, 0.4 * kokoro.style_table(a) + 0.6 * kokoro.style_table(b))
    for bad in ("nobody", f"{a}+nobody@0.5", f"{a}+{b}@1.5"):
        with pytest.raises(PqlrError, match="kokoro voice"):
            kokoro.style_table(bad)


@needs_kokoro
def test_the_engine_speaks_english_at_the_pace_asked():
    eng = ENGINES["kokoro"]
    assert eng.available() and eng.voices() == kokoro.voices()
    voice = kokoro.mix_name(kokoro.voices()[0], kokoro.voices()[1], 0.5)
    x, sr = eng.speak("hey kimi", voice, np.random.default_rng(0))
    assert sr == 24000 and 0.5 < len(x) / sr < 3.0 and np.sqrt(np.mean(x ** 2)) > 0.01
    y, _ = eng.speak("hey kimi", voice, np.random.default_rng(0))
    assert np.array_equal(x, y)                                              # seeded: the same clip
    fast, _ = kokoro.speak("hey kimi", voice, speed=1.4)
    slow, _ = kokoro.speak("hey kimi", voice, speed=0.7)
    assert len(fast) < 0.75 * len(slow)


def test_the_key_covers_kokoro_voices_only_when_they_are_used():
    off = SynthConfig(fa_stream_seconds=0).key_material()
    assert "kokoro_voices" not in off["config"] and "kokoro" not in off        # corpora made before keep theirs
    with pytest.raises(PqlrError, match="kokoro_voices"):
        SynthConfig(kokoro_voices=-1).validate()
    if kokoro.available():
        on = SynthConfig(fa_stream_seconds=0, kokoro_voices=2).key_material()
        assert on["config"]["kokoro_voices"] == 2 and on["kokoro"]["voices"] == kokoro.voices()
        assert on["kokoro"]["package"]                                       # another release: another corpus


TINY = dict(voices=6, positives_per_voice=1, unknown_per_voice=1, few_voice_repeats=1, silence_clips=4,
            unseen_positives=1, unseen_unknown=1, fa_stream_seconds=0, tts_stream_seconds=0, seed=5, workers=2,
            engines=("espeak-ng",))


@needs_kokoro
def test_kokoro_voices_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, kokoro_voices=1)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)                 # extended, nothing rendered again
    assert ext.meta["config_key"] == cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    bundled = kokoro.voices()
    assert len(new) == len(bundled) * (1 + 1)                               # unknown : wake word as configured
    assert all(c.engine == "kokoro" and c.split == "train" for c in new)    # never val, test or unseen
    assert sum(c.label == "hey_kimi" for c in new) == len(bundled)
    said_by = {c.voice.partition("+")[0] for c in new}                     # every bundled voice leads its share
    assert said_by == set(bundled)
    for c in new:                                                           # each a voice or a mix the engine takes
        kokoro.style_table(c.voice)
    train_texts = set(ext.meta["negative_texts"]["train"]["words"]) | set(ext.meta["negative_texts"]["train"]["sentences"])
    assert all(c.text in train_texts for c in new if c.label == "unknown")
    again = synth_corpus(tmp_path / "c", cfg, progress=False)               # cached
    assert again.clips == ext.clips


def test_the_key_covers_kokoro_negatives_only_when_they_are_used():
    off = SynthConfig(fa_stream_seconds=0).key_material()
    assert "kokoro_negatives" not in off["config"] and "kokoro_passages" not in off
    with pytest.raises(PqlrError, match="kokoro_negatives"):
        SynthConfig(kokoro_negatives=-1).validate()
    if kokoro.available():
        on = SynthConfig(fa_stream_seconds=0, kokoro_negatives=3).key_material()
        assert on["config"]["kokoro_negatives"] == 3 and on["kokoro"]["voices"] == kokoro.voices()
        assert on["kokoro_passages"] == {"sentences": PASSAGE_SENTENCES, "windows": PASSAGE_WINDOWS}


@needs_kokoro
def test_kokoro_negatives_are_windows_cut_from_passages_of_training_sentences(tmp_path):
    n = PASSAGE_WINDOWS + 1                                                 # two passages a voice: a full one, one window
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, kokoro_negatives=n)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)                 # extended, nothing rendered again
    assert ext.meta["config_key"] == cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    bundled = kokoro.voices()
    assert len(new) == n * len(bundled) and ext.meta["kokoro_negatives"]["passages"] == 2 * len(bundled)
    assert all(c.engine == "kokoro" and c.split == "train" and c.label == "unknown" for c in new)
    for v in bundled:                                                       # n windows led by each bundled voice
        assert sum(c.voice.partition("+")[0] == v for c in new) == n
    train = set(ext.meta["negative_texts"]["train"]["sentences"])
    held_out = {t for s in ("val", "test") for t in ext.meta["negative_texts"][s]["sentences"]}
    passages = {}
    for c in new:
        passages.setdefault(c.text, []).append(c)
        said = c.text.split(". ")
        assert len(said) == PASSAGE_SENTENCES                               # sentences of the training split only
        assert all(s.rstrip(".") in train and s.rstrip(".") not in held_out for s in said)
    assert sorted(len(p) for p in passages.values()) == [1] * len(bundled) + [PASSAGE_WINDOWS] * len(bundled)
    full = max(passages.values(), key=len)
    audio = [read_audio(ext.root / c.file)[0] for c in full]
    assert all(len(a) == 16000 for a in audio)                              # 1-s windows
    assert len({a.tobytes() for a in audio}) == len(audio)                  # each its own cut, noise and room
    again = synth_corpus(tmp_path / "c", cfg, progress=False)               # cached
    assert again.clips == ext.clips
