"""Rhymes of the wake phrase's other spellings as training negatives (SynthConfig.rhyme_negatives): the texts, the
split by onset (an onset held out from training stays held out in every spelling) and the training-only
extension of a corpus."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from hostside.data.synth import SynthConfig, negative_texts, rhyme_texts, synth_corpus
from hostside.data.texts import ONSETS, spelling_rhymes

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")


def test_the_other_spellings_rhyme_with_every_onset_but_their_own():
    r = spelling_rhymes("hey kimi", ("hey kimmy", "hey keemee"))
    assert r["t"] == ("hey timmy", "hey teemee") and r["sk"] == ("hey skimmy", "hey skeemee")
    assert set(r) == set(ONSETS)                               # k is no onset of ONSETS: nothing dropped
    assert not any(t in ("hey kimi", "hey kimmy", "hey keemee") for ts in r.values() for t in ts)
    assert spelling_rhymes("hey kimi", ()) == {}               # no other spelling: nothing to add
    assert spelling_rhymes("hey kimi", ("hey kimi!",)) == {}   # the same rhyme as the phrase's own


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_each_onset_keeps_the_split_of_the_phrase_rhyme(seed):
    cfg = SynthConfig(seed=seed, fa_stream_seconds=0)
    neg, rt = negative_texts(cfg), rhyme_texts(cfg)
    for split in ("train", "val", "test"):
        for t in rt[split]:
            onset = next(o for o in sorted(ONSETS, key=len, reverse=True) if t.split()[-1].startswith(o))
            assert f"hey {onset}imi" in neg[split]["words"]
    assert not set(rt["train"]) & (set(rt["val"]) | set(rt["test"]))
    assert sum(len(v) for v in rt.values()) == 2 * len(ONSETS)


TINY = dict(voices=6, positives_per_voice=1, unknown_per_voice=2, few_voice_repeats=1, silence_clips=4,
            unseen_positives=1, unseen_unknown=1, fa_stream_seconds=0, tts_stream_seconds=0, seed=5, workers=2,
            engines=("espeak-ng",))


@needs_espeak
def test_rhyme_negatives_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, rhyme_negatives=1)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.meta["config_key"] == cfg.key() != base_cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    assert sorted(c.text for c in new) == sorted(rhyme_texts(cfg)["train"])
    train_voices = {c.voice for c in base.clips if c.split == "train"}
    assert all(c.split == "train" and c.label == "unknown" and c.voice in train_voices for c in new)
    assert synth_corpus(tmp_path / "w", cfg, progress=False).clips == ext.clips          # made whole: the same
