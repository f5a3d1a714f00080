"""Corpus generation, loaders and the front end."""
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from hostside.data.corpus import load_corpus, read_audio, write_wav
from hostside.data.features import PRESETS, FrontEnd, TorchFrontEnd, features, mel_filterbank, vtlp_warp
from hostside.data.loaders import MLPERF12
from hostside.data.synth import SynthConfig, place, positive_file, synth_corpus, voice_split
from hostside.errors import PqlrError


def test_frontend_shape_and_determinism():
    x = np.random.default_rng(0).normal(0, 0.1, 16000)
    for name, fe in PRESETS.items():
        a, b = features(x, fe), features(x, fe)
        assert a.shape == fe.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert PRESETS["mfcc10"].shape == (49, 10)          # the MLPerf Tiny KWS geometry


def test_torch_front_end_matches_numpy():
    import torch
    x = np.random.default_rng(1).normal(0, 0.1, 16000)
    for fe in PRESETS.values():
        t = TorchFrontEnd(fe)(torch.tensor(x[None], dtype=torch.float32))[0].numpy()
        assert np.abs(t - features(x, fe)).max() < 1e-3


def test_tone_lands_in_expected_band():
    fe = FrontEnd()
    fb = mel_filterbank(fe)
    freqs = np.arange(fe.n_fft // 2 + 1) * fe.sample_rate / fe.n_fft
    for f0 in (312.5, 1000.0, 3000.0, 6000.0):          # FFT bin centres: 10, 32, 96, 192
        t = np.arange(16000) / 16000
        m = features(0.5 * np.sin(2 * np.pi * f0 * t), fe).mean(axis=0)
        bin_ = int(np.argmin(np.abs(freqs - f0)))
        assert int(np.argmax(m)) == int(np.argmax(fb[:, bin_])), f0


def test_vtlp_scales_formants_and_keeps_the_band_edges():
    """Vocal-tract length perturbation moves a tone below the knee to α·f, leaves α = 1 and the Nyquist bin
    alone, and keeps the warp monotone (no bin taken from above a higher bin's source)."""
    import torch
    fe = FrontEnd()
    t = torch.arange(16000) / 16000
    frames = (0.5 * torch.sin(2 * np.pi * 1000.0 * t))[None].unfold(1, fe.frame_length, fe.hop_length)[:, : fe.n_frames]
    power = torch.fft.rfft(frames * TorchFrontEnd(fe).window, n=fe.n_fft, dim=-1).abs() ** 2
    hz = fe.sample_rate / fe.n_fft
    for alpha in (0.85, 0.9, 1.1, 1.15):
        w = vtlp_warp(power, torch.tensor([alpha]), fe)
        assert abs(int(w[0, 10].argmax()) * hz - 1000.0 * alpha) <= hz, alpha      # the peak moved to α·f
    assert torch.equal(vtlp_warp(power, torch.ones(1), fe), power)
    ramp = torch.arange(fe.n_fft // 2 + 1, dtype=torch.float32).expand(1, 1, -1)   # power = its own bin index
    for alpha in (0.8, 1.2):
        src = vtlp_warp(ramp, torch.tensor([alpha]), fe)[0, 0]
        assert src[0] == 0 and src[-1] == fe.n_fft // 2 and bool((src[1:] >= src[:-1]).all()), alpha
    x = torch.tensor(np.random.default_rng(2).normal(0, 0.1, (2, 16000)), dtype=torch.float32)
    fr = TorchFrontEnd(PRESETS["mfcc10"])
    assert torch.equal(fr(x, warp=torch.ones(2)), fr(x))
    assert not torch.allclose(fr(x, warp=torch.tensor([0.9, 1.1])), fr(x))


def test_mfcc_is_dct_of_logmel():
    x = np.random.default_rng(2).normal(0, 0.1, 16000)
    fe = PRESETS["mfcc10"]
    lm = features(x, FrontEnd(f_max=fe.f_max)).astype(np.float64)
    c0 = lm.sum(axis=1) / np.sqrt(40)
    assert np.allclose(features(x, fe)[:, 0], c0, atol=1e-3)


def test_voice_split_is_a_function_of_voice():
    assert len({voice_split("espeak-ng:en-us+m1", 0, (0.7, 0.15, 0.15)) for _ in range(5)}) == 1


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    cfg = SynthConfig(voices=16, positives_per_voice=1, unknown_per_voice=1, few_voice_repeats=1, silence_clips=6,
                      unseen_positives=3, unseen_unknown=3, fa_stream_seconds=30, tts_stream_seconds=10, seed=1,
                      workers=2)
    root = tmp_path_factory.mktemp("corpus") / "c"
    return root, cfg, synth_corpus(root, cfg, progress=False)


def test_no_voice_in_two_splits(tiny_corpus):
    _, _, c = tiny_corpus
    by_voice = {}
    for clip in c.clips:
        by_voice.setdefault((clip.engine, clip.voice), set()).add(clip.split)
    assert all(len(s) == 1 for s in by_voice.values())
    assert {cl.label for cl in c.clips} == {"hey_kimi", "unknown", "silence"}
    assert {"train", "val", "test"} <= {cl.split for cl in c.clips}
    # the corpus's own record of its splits holds the same disjointness
    acc, var = c.meta["accents"], c.meta["variants"]
    assert not set(acc["train"]) & set(acc["test"]) and not set(var["train"]) & set(var["test"])
    tr = {cl.text for cl in c.clips if cl.split == "train" and cl.label == "unknown"}
    assert not tr & {cl.text for cl in c.clips if cl.split in ("test", "unseen") and cl.label == "unknown"}


def test_wake_word_clips_have_context(tiny_corpus):
    root, _, c = tiny_corpus
    pos = [cl for cl in c.clips if cl.label == "hey_kimi"]
    for cl in pos:
        with wave.open(str(root / cl.file)) as w:          # 1 s after the window, 1 s (or the phrase) before it
            assert cl.offset == max(16000, cl.spoken - 16000) and w.getnframes() == cl.offset + 2 * 16000
        assert len(c.audio(cl)) == 16000
    assert all(cl.spoken > 0 for cl in c.clips if cl.label != "silence")
    assert {cl.style for cl in pos} <= {"normal", "fast", "slow", "whisper"}


def test_a_phrase_longer_than_the_window_is_kept_whole_and_the_window_holds_its_end():
    rng = np.random.default_rng(0)
    for seconds in (0.6, 1.4, 2.5):
        n = int(seconds * 16000)
        speech = np.concatenate([np.zeros(800), (1.5 + np.sin(np.arange(n) * 0.3)) * np.linspace(1, 2, n), np.zeros(300)])
        placed = place(speech, np.random.default_rng(1), crop="whole")
        sig, offset = positive_file(placed)
        heard = np.nonzero(np.abs(sig) > 0.02 * np.abs(sig).max())[0]
        assert heard[-1] - heard[0] + 1 == n                        # every sample of the phrase is in the file
        assert len(sig) == offset + 2 * 16000 and offset == max(16000, n - 16000)
        if n > 16000:                                               # its window is its last second
            assert heard[-1] == offset + 16000 - 1 and np.array_equal(sig[offset: offset + 16000], speech[800: 800 + n][-16000:])
        else:                                                       # inside the window, as before
            assert offset <= heard[0] and heard[-1] < offset + 16000
        end = place(speech, rng)                                    # a 1 s clip of it keeps its end
        assert len(end) == 16000 and (n <= 16000 or np.array_equal(end, speech[800: 800 + n][-16000:]))
    with pytest.raises(ValueError, match="one of end, random, whole"):
        place(speech, rng, crop="centre")


def test_unseen_voices_never_in_training(tiny_corpus):
    _, _, c = tiny_corpus
    from hostside.data.engines import ENGINES
    if not ENGINES["piper"].available():
        pytest.skip("piper not installed (optional extra `speech`)")
    piper = [cl for cl in c.clips if cl.engine == "piper"]
    assert piper and all(cl.split == "unseen" for cl in piper)
    assert all(cl.voice in ("joe-medium", "slt", "cmu_us_slt_arctic_hts") for cl in c.clips if cl.split == "unseen")
    assert not any("slt" in cl.voice for cl in c.clips if cl.split in ("train", "val"))


def test_test_clips_use_held_out_noise(tiny_corpus):
    _, _, c = tiny_corpus
    pools = c.meta["noise_pools"]
    for cl in c.clips:
        if cl.noise:
            assert cl.noise in pools["test" if cl.split in ("test", "unseen") else "train"]


def test_cached_and_deterministic(tiny_corpus, tmp_path):
    root, cfg, c = tiny_corpus
    mtime = (root / "manifest.json").stat().st_mtime_ns
    synth_corpus(root, cfg, progress=False)
    assert (root / "manifest.json").stat().st_mtime_ns == mtime
    cfg2 = SynthConfig(**{**cfg.__dict__, "fa_stream_seconds": 0, "tts_stream_seconds": 0})
    c2 = synth_corpus(tmp_path / "again", cfg2, progress=False)
    same = [cl for cl in c.clips if cl.engine == "espeak-ng"][:5]
    for a, b in zip(same, [cl for cl in c2.clips if cl.engine == "espeak-ng"][:5]):
        assert a.voice == b.voice and a.text == b.text


def test_real_speech_and_tts_streams(tiny_corpus):
    root, _, c = tiny_corpus
    fa = c.meta["fa_stream"]
    if not fa.get("streams"):
        pytest.skip(fa.get("reason"))
    total = 0.0
    for st in fa["streams"]:
        with wave.open(str(root / st["file"])) as w:
            assert w.getframerate() == 16000
            assert abs(w.getnframes() / 16000 - st["seconds"]) < 1e-6
            total += st["seconds"]
    assert total == pytest.approx(30, abs=0.01) == fa["seconds"]
    for split in ("val", "test"):
        ts = c.meta["tts_streams"][split]
        assert ts["seconds"] == pytest.approx(10, abs=0.01)
        assert set(ts["voices"]) <= set(f"{v}" for v in c.meta["voices"][split])


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(PqlrError, match="task"):
        synth_corpus(tmp_path, SynthConfig(task="nope"))
    with pytest.raises(PqlrError, match="unknown engine"):
        synth_corpus(tmp_path, SynthConfig(engines=("espeak-ng", "nope")))
    with pytest.raises(PqlrError, match="style_weights"):
        synth_corpus(tmp_path, SynthConfig(style_weights=(1.0, 0.0)))


def _tone(f, n=16000):
    return 0.3 * np.sin(2 * np.pi * f * np.arange(n) / 16000)


def test_speech_commands_loader(tmp_path):
    """A small Speech Commands v2 fixture: lists, speakers, unknown mapping, silence from background noise."""
    root = tmp_path / "sc"
    words = ["yes", "no", "marvin", "tree"]
    for i, w in enumerate(words):
        for spk in ("aaaa1111", "bbbb2222", "cccc3333"):
            for k in range(2):
                write_wav(root / w / f"{spk}_nohash_{k}.wav", _tone(200 + 50 * i))
    write_wav(root / "_background_noise_" / "white.wav", np.random.default_rng(0).normal(0, 0.1, 16000 * 5))
    (root / "validation_list.txt").write_text("\n".join(f"{w}/bbbb2222_nohash_{k}.wav" for w in words for k in range(2)))
    (root / "testing_list.txt").write_text("\n".join(f"{w}/cccc3333_nohash_{k}.wav" for w in words for k in range(2)))
    c = load_corpus(root)
    assert c.classes == MLPERF12
    by = {(cl.file, cl.offset): cl for cl in c.clips}
    assert by[("yes/aaaa1111_nohash_0.wav", 0)].split == "train"
    assert by[("no/bbbb2222_nohash_1.wav", 0)].split == "val"
    assert by[("tree/cccc3333_nohash_0.wav", 0)].split == "test"
    assert by[("marvin/aaaa1111_nohash_0.wav", 0)].label == "unknown"
    sil = [cl for cl in c.clips if cl.label == "silence"]
    assert sil and {cl.split for cl in sil} == {"train", "val", "test"}
    assert all(len(c.audio(cl)) == 16000 for cl in sil)
    spk_splits = {}
    for cl in c.clips:
        if cl.engine == "human":
            spk_splits.setdefault(cl.voice, set()).add(cl.split)
    assert all(len(v) == 1 for v in spk_splits.values())
    from hostside.data.features import corpus_features
    x, y = corpus_features(c, PRESETS["mfcc10"])
    assert x.shape == (len(c.clips), 49, 10) and y.max() < 12


def test_folder_loader(tmp_path):
    root = tmp_path / "f"
    for cls in ("go", "stop"):
        for spk in range(6):
            write_wav(root / cls / f"spk{spk}_nohash_0.wav", _tone(300 if cls == "go" else 900, 8000), sr=8000)
    c = load_corpus(root)
    assert c.classes == ("go", "stop") and len(c.clips) == 12
    assert len(c.audio(c.clips[0])) == 16000       # resampled from 8 kHz
    spk = {}
    for cl in c.clips:
        spk.setdefault(cl.voice, set()).add(cl.split)
    assert all(len(v) == 1 for v in spk.values())


def test_not_a_corpus(tmp_path):
    with pytest.raises(PqlrError, match="pqlr data synth"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PqlrError):
        load_corpus(tmp_path / "empty")


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (`make deps`)")
def test_read_audio_is_deterministic_for_24_bit_files(tmp_path):
    """A 24-bit FLAC (sonic-pi ships two) decodes to the same samples every time: sox's default dither drew new
    noise per call, so the training noise bank and every training run differed between processes."""
    f = tmp_path / "tone24.flac"
    subprocess.run(["sox", "-n", "-r", "16000", "-b", "24", "-c", "1", str(f), "synth", "0.5", "sine", "440",
                    "gain", "-6"], check=True, capture_output=True)
    reads = [read_audio(f)[0] for _ in range(3)]
    assert all(np.array_equal(reads[0], r) for r in reads[1:])
    exact = np.frombuffer(subprocess.run(["sox", str(f), "-t", "raw", "-e", "signed", "-b", "32", "-"], check=True,
                                         capture_output=True).stdout, dtype="<i4") / 2.0 ** 31
    assert len(exact) == len(reads[0]) and np.abs(reads[0] - exact).max() <= 1 / 32768    # rounded, not noised


def test_training_noise_bank_is_the_same_in_every_process():
    """Training mixes clips with noise_bank(seed): two fresh interpreters must build the same bank, or a seeded
    run is not reproducible (it was not while sox dithered the 24-bit samples)."""
    code = ("import hashlib; from hostside.data.noise import noise_bank; "
            "print(hashlib.sha256(noise_bank(seed=1).tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
               for _ in range(2)}
    assert len(digests) == 1, "noise_bank(seed=1) differs between processes"
