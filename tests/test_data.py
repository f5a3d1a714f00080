import numpy as np

from hostside.data.features import FrontEnd, log_mel, mel_filterbank
from hostside.data.synth import SynthConfig, synth_corpus, voice_split


def test_frontend_shape_and_determinism():
    fe = FrontEnd()
    x = np.random.default_rng(0).normal(0, 0.1, 16000)
    a, b = log_mel(x, fe), log_mel(x, fe)
    assert a.shape == (49, 40) and a.dtype == np.float32
    assert np.array_equal(a, b)


def test_tone_lands_in_expected_band():
    fe = FrontEnd()
    fb = mel_filterbank(fe)
    freqs = np.arange(fe.n_fft // 2 + 1) * fe.sample_rate / fe.n_fft
    for f0 in (312.5, 1000.0, 3000.0, 6000.0):          # FFT bin centres: 10, 32, 96, 192
        t = np.arange(16000) / 16000
        m = log_mel(0.5 * np.sin(2 * np.pi * f0 * t), fe).mean(axis=0)
        bin_ = int(np.argmin(np.abs(freqs - f0)))
        assert int(np.argmax(m)) == int(np.argmax(fb[:, bin_])), f0


def test_voice_split_is_a_function_of_voice():
    splits = {voice_split(v, 0, (0.7, 0.15, 0.15)) for v in ["en-us+m1"] * 5}
    assert len(splits) == 1


def test_tiny_corpus_splits_by_voice(tmp_path):
    cfg = SynthConfig(voices=12, positives_per_voice=1, unknown_per_voice=1, silence_clips=6, seed=1, workers=2)
    c = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert len(c.clips) == 12 * 2 + 6
    by_voice = {}
    for clip in c.clips:
        by_voice.setdefault(clip.voice, set()).add(clip.split)
    assert all(len(s) == 1 for s in by_voice.values())
    assert {cl.label for cl in c.clips} == {"hey_kimi", "unknown", "silence"}
    # cached: a second call with the same config reuses the files
    mtime = (tmp_path / "c" / "manifest.json").stat().st_mtime_ns
    synth_corpus(tmp_path / "c", cfg, progress=False)
    assert (tmp_path / "c" / "manifest.json").stat().st_mtime_ns == mtime
    # deterministic for a seed
    c2 = synth_corpus(tmp_path / "c2", cfg, progress=False)
    a = (tmp_path / "c" / c.clips[0].file).read_bytes()
    assert a == (tmp_path / "c2" / c2.clips[0].file).read_bytes()
