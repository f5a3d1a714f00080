"""Log-mel front end, numpy only, fully specified so a fixed-point C version can match it later.

Arithmetic (float64 throughout):
  1. x: 16 000 samples of int16/32768 audio (1 s).
  2. frames: length 480 (30 ms), hop 320 (20 ms), no padding → 1 + (16000-480)//320 = 49 frames.
  3. window: periodic Hann, w[n] = 0.5 - 0.5·cos(2πn/480).
  4. power spectrum: |rfft(frame·w, n=512)|², 257 bins.
  5. mel: 40 triangular HTK-mel filters between 20 Hz and 8000 Hz (mel = 2595·log10(1 + f/700)),
     unnormalised (peak 1), applied to the power spectrum.
  6. log: ln(mel + 1e-6)  (the log floor).
  Output: float32 [49, 40] (time × mel). The device's int8 input is this tensor quantised per tensor
  with the scale and zero point chosen at export (hostside/export), round-half-away-from-zero, clamped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FrontEnd:
    sample_rate: int = 16000
    clip_samples: int = 16000
    frame_length: int = 480
    hop_length: int = 320
    n_fft: int = 512
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 8000.0
    log_floor: float = 1e-6

    @property
    def n_frames(self) -> int:
        return 1 + (self.clip_samples - self.frame_length) // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_mels)

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(fe: FrontEnd) -> np.ndarray:
    """[n_mels, n_fft//2+1] triangular filters, peak 1, on HTK mel."""
    n_bins = fe.n_fft // 2 + 1
    freqs = np.arange(n_bins) * fe.sample_rate / fe.n_fft
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fe.f_min), _hz_to_mel(fe.f_max), fe.n_mels + 2))
    fb = np.zeros((fe.n_mels, n_bins))
    for m in range(fe.n_mels):
        lo, ce, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (ce - lo)
        down = (hi - freqs) / (hi - ce)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


def log_mel(audio: np.ndarray, fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """audio: float samples (len clip_samples; shorter is zero-padded, longer is cut) → [frames, mels]."""
    x = np.zeros(fe.clip_samples)
    a = np.asarray(audio, dtype=np.float64)[: fe.clip_samples]
    x[: len(a)] = a
    n = np.arange(fe.frame_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / fe.frame_length)
    idx = np.arange(fe.n_frames)[:, None] * fe.hop_length + n[None, :]
    frames = x[idx] * window
    power = np.abs(np.fft.rfft(frames, n=fe.n_fft, axis=1)) ** 2
    mel = power @ mel_filterbank(fe).T
    return np.log(mel + fe.log_floor).astype(np.float32)


def corpus_features(corpus, fe: FrontEnd = FrontEnd(), split: str | None = None):
    """Features and labels for a corpus (or one split), cached in the corpus folder."""
    from .synth import read_wav, resample
    import hashlib
    import json
    key = hashlib.sha256(json.dumps([fe.to_dict(), [c.file for c in corpus.clips]]).encode()).hexdigest()[:12]
    cache = corpus.root / f"features-{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        feats, labels = z["x"], z["y"]
    else:
        feats = np.empty((len(corpus.clips), *fe.shape), dtype=np.float32)
        for i, clip in enumerate(corpus.clips):
            audio, sr = read_wav(corpus.root / clip.file)
            feats[i] = log_mel(resample(audio, sr, fe.sample_rate), fe)
        labels = np.array([corpus.classes.index(c.label) for c in corpus.clips], dtype=np.int64)
        np.savez(cache, x=feats, y=labels)
    if split is None:
        return feats, labels
    mask = np.array([c.split == split for c in corpus.clips])
    return feats[mask], labels[mask]
