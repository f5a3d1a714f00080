"""Training voices resynthesised through the WORLD vocoder with another pitch and vocal-tract length: the
envelope warp, the conversion itself (measured on its output), the draws, the cache key and the training-only
extension of a corpus (SynthConfig.vocoded_voices)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hostside.data import vocoder
from hostside.data.synth import SynthConfig, synth_corpus

needs_world = pytest.mark.skipif(not vocoder.available(), reason=f"needs the WORLD vocoder: {vocoder.INSTALL}")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")
SR = 16000


def test_the_warp_moves_a_formant_by_its_factor_and_keeps_the_rest():
    env = np.full((3, 513), 1e-3)
    env[:, 100] = 1.0
    assert np.array_equal(vocoder.warp_envelope(env, 1.0), env)
    up, down = vocoder.warp_envelope(env, 1.2), vocoder.warp_envelope(env, 0.9)
    assert int(np.argmax(up[0])) == 120 and int(np.argmax(down[0])) == 90
    assert up.flags["C_CONTIGUOUS"] and up.shape == env.shape


def test_draws_are_seeded_and_in_their_ranges():
    a = [vocoder.draw(np.random.default_rng([3, i])) for i in range(200)]
    assert a == [vocoder.draw(np.random.default_rng([3, i])) for i in range(200)]
    for c in a:
        r = vocoder.UP if c["f0"] >= vocoder.UP["f0"][0] and c["warp"] >= vocoder.UP["warp"][0] else vocoder.DOWN
        assert r["f0"][0] <= c["f0"] <= r["f0"][1] and r["warp"][0] <= c["warp"] <= r["warp"][1]
    ups = sum(c["f0"] >= vocoder.UP["f0"][0] for c in a) / len(a)
    assert abs(ups - vocoder.UP_PROB) < 0.1


def _voice(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A vowel-like test signal: a glottal pulse train at f0 through two resonances (700 and 1,200 Hz)."""
    n = int(seconds * SR)
    x = np.zeros(n)
    x[(np.arange(0, seconds, 1 / f0) * SR).astype(int)] = 1.0
    for fc, bw in ((700.0, 90.0), (1200.0, 110.0)):
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * fc / SR
        y = np.zeros(n)
        for i in range(n):
            y[i] = x[i] + 2 * r * np.cos(th) * (y[i - 1] if i else 0) - r * r * (y[i - 2] if i > 1 else 0)
        x = y
    return 0.5 * x / np.abs(x).max()


def _median_f0(x: np.ndarray) -> float:
    import pyworld
    p, t = pyworld.dio(np.ascontiguousarray(x, dtype=np.float64), SR)
    p = pyworld.stonemask(np.ascontiguousarray(x, dtype=np.float64), p, t, SR)
    return float(np.median(p[p > 0]))


def _centroid(x: np.ndarray) -> float:
    s = np.abs(np.fft.rfft(x))
    return float((s * np.fft.rfftfreq(len(x), 1 / SR)).sum() / s.sum())


@needs_world
def test_conversion_sets_the_median_pitch_and_moves_the_formants():
    x = _voice(110.0)
    assert abs(_median_f0(x) - 110) < 5
    y = vocoder.convert(x, SR, f0=220.0, warp=1.2)
    assert len(y) == len(x) and np.abs(y).max() == pytest.approx(np.abs(x).max())
    assert abs(_median_f0(y) - 220) < 11                                  # within 5 % of the target
    same = vocoder.convert(x, SR, f0=110.0, warp=1.0)
    assert _centroid(y) > 1.1 * _centroid(same)                           # the resonances moved up
    low = vocoder.convert(x, SR, f0=80.0, warp=0.9)
    assert abs(_median_f0(low) - 80) < 4 and _centroid(low) < _centroid(same)


def test_the_key_covers_vocoded_voices_only_when_they_are_used():
    off = SynthConfig(fa_stream_seconds=0).key_material()
    assert "vocoded_voices" not in off["config"] and "vocoder" not in off     # corpora made before keep theirs
    on = SynthConfig(fa_stream_seconds=0, vocoded_voices=3).key_material()
    assert on["config"]["vocoded_voices"] == 3 and on["vocoder"]["up"] == vocoder.UP
    with pytest.raises(Exception, match="0 or more"):
        SynthConfig(vocoded_voices=-1).validate()


TINY = dict(voices=6, positives_per_voice=1, unknown_per_voice=2, few_voice_repeats=1, silence_clips=4,
            unseen_positives=1, unseen_unknown=1, fa_stream_seconds=0, tts_stream_seconds=0, seed=5, workers=2,
            engines=("espeak-ng",))


@needs_world
@needs_espeak
def test_vocoded_voices_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, vocoded_voices=2)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)                 # extended, nothing rendered again
    assert ext.meta["config_key"] == cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    assert len(new) == 2 * (1 + 2)                  # one source group (espeak-ng's voices): 2 wake words, 4 unknown
    train_voices = {c.voice for c in base.clips if c.split == "train" and c.engine == "espeak-ng"}
    assert all(c.split == "train" and c.voice in train_voices for c in new)   # never val, test or unseen voices
    assert all("+world:" in c.style for c in new) and not any("+world" in c.style for c in base.clips)
    assert sum(c.label == "hey_kimi" for c in new) == 2
    whole = synth_corpus(tmp_path / "w", cfg, progress=False)               # made in one go: the same clips
    assert whole.clips == ext.clips
    assert (tmp_path / "c" / new[0].file).read_bytes() == (tmp_path / "w" / new[0].file).read_bytes()
