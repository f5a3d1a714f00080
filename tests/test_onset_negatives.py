"""Training sentences cut at their start after a pause (SynthConfig.onset_negatives): what a detector hears when
a person starts talking (benchmarks/quality/attempts.md §37–38) — the window, the phoneme targets it may carry, and
the training-only extension of a corpus."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hostside.data.corpus import CLIP_SAMPLES, SAMPLE_RATE, read_wav
from hostside.data.phonetic import clip_targets
from hostside.data.synth import ONSET_LEAD_S, SynthConfig, negative_texts, onset_window, synth_corpus, trim_silence
from hostside.errors import PqlrError
from test_rhyme_negatives import TINY

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")


def test_an_onset_window_is_a_pause_then_the_start_of_the_utterance():
    rng = np.random.default_rng(0)
    long = np.linspace(0.1, 1.0, 3 * CLIP_SAMPLES)          # a sentence of 3 s: its first words fill the window
    lo, hi = (int(x * SAMPLE_RATE) for x in ONSET_LEAD_S)
    leads = []
    for _ in range(50):
        w, spoken = onset_window(long, rng)
        lead = int(np.argmax(w != 0))
        leads.append(lead)
        assert len(w) == CLIP_SAMPLES and lo <= lead <= hi and not w[:lead].any()
        assert np.array_equal(w[lead:], long[: CLIP_SAMPLES - lead])        # its start, not a random cut
        assert spoken == lead + len(long) > CLIP_SAMPLES                     # cut: no phoneme target
    assert max(leads) - min(leads) > (hi - lo) // 2                        # the pause varies
    short = np.full(SAMPLE_RATE // 4, 0.5)                   # a short utterance ends inside the window
    w, spoken = onset_window(short, rng)
    lead = int(np.argmax(w != 0))
    assert spoken == lead + len(short) <= CLIP_SAMPLES and w[lead: spoken].all() and not w[spoken:].any()
    fits = np.full(int(0.9 * SAMPLE_RATE), 0.5)              # fits only after a short pause: it gets one
    for _ in range(50):
        w, spoken = onset_window(fits, rng)
        assert lo <= int(np.argmax(w != 0)) and spoken <= CLIP_SAMPLES and w[spoken - len(fits): spoken].all()


@needs_espeak
def test_onset_negatives_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, onset_negatives=2)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.meta["config_key"] == cfg.key() != base_cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    train_voices = {c.voice for c in base.clips if c.split == "train" and c.engine != "none"}
    assert len(new) == 2 * len(train_voices) == ext.meta["onset_negatives"]["clips"]
    assert all(c.split == "train" and c.label == "unknown" and c.voice in train_voices for c in new)
    assert {c.text for c in new} <= set(negative_texts(cfg)["train"]["sentences"])
    lo = int(ONSET_LEAD_S[0] * SAMPLE_RATE)
    for c in new:                                            # a quiet pause, then speech from the window's start on
        x, _ = read_wav(ext.root / c.file)
        assert len(x) == CLIP_SAMPLES and np.sqrt(np.mean(x[: lo] ** 2)) < np.sqrt(np.mean(x[lo:] ** 2))
    targets, _, _ = clip_targets(new)                        # a sentence cut by the window has no phoneme target
    assert all(t is None for t, c in zip(targets, new) if c.spoken > CLIP_SAMPLES)
    assert sum(c.spoken > CLIP_SAMPLES for c in new) >= len(new) // 2
    assert synth_corpus(tmp_path / "w", cfg, progress=False).clips == ext.clips          # made whole: the same
    with pytest.raises(PqlrError, match="onset_negatives"):
        synth_corpus(tmp_path / "n", replace(cfg, onset_negatives=-1), progress=False)


@needs_espeak
def test_onset_words_are_a_sentences_first_words_said_alone_with_their_sounds_as_target(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cut = replace(base_cfg, onset_negatives=2)
    cfg = replace(cut, onset_words=3)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.meta["config_key"] == cfg.key() != cut.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    assert len(new) == ext.meta["onset_negatives"]["clips"] > 0 and ext.meta["onset_negatives"]["words"] == 3
    sentences = negative_texts(cfg)["train"]["sentences"]
    for c in new:                                            # the first 2-3 words of a training sentence
        words = c.text.split()
        assert 2 <= len(words) <= 3 and any(s.split()[: len(words)] == words for s in sentences)
        assert c.split == "train" and c.label == "unknown"
    assert {len(c.text.split()) for c in new} == {2, 3}
    targets, _, _ = clip_targets(new)                        # said alone, most fit the window: a phoneme target
    fit = [t for t, c in zip(targets, new) if c.spoken <= CLIP_SAMPLES]
    assert sum(1 for t in fit if t) >= len(new) // 2                 # (a text of > 14 sounds has none)
    assert all(c.spoken <= CLIP_SAMPLES for t, c in zip(targets, new) if t)
    assert synth_corpus(tmp_path / "w", cfg, progress=False).clips == ext.clips          # made whole: the same
    # a corpus whose onsets are cut sentences is not relabelled as one of first words: it is made again
    synth_corpus(tmp_path / "r", cut, progress=False)
    again = synth_corpus(tmp_path / "r", cfg, progress=False)
    assert again.meta["config_key"] == cfg.key() and again.clips == ext.clips
    for bad in (replace(cut, onset_words=1), replace(base_cfg, onset_words=3)):
        with pytest.raises(PqlrError, match="onset_words"):
            bad.validate()
