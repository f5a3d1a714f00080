"""Front ends: log-mel and MFCC, in numpy (the specification, used for evaluation and export) and in
torch (the same arithmetic in float32, used for on-the-fly augmentation during training).

Arithmetic, all presets (numpy: float64):
  1. x: clip_samples of int16/32768 audio at 16 kHz (shorter is zero-padded at the end, longer is cut).
  2. frames: frame_length samples every hop_length samples, no padding:
     n_frames = 1 + (clip_samples − frame_length) // hop_length.
  3. window: periodic Hann, w[n] = 0.5 − 0.5·cos(2πn/frame_length).
  4. power spectrum: |rfft(frame·w, n_fft)|², n_fft/2+1 bins.
  5. mel: n_mels triangular filters, peak 1 (unnormalised), centres equally spaced on the HTK mel scale
     mel(f) = 2595·log10(1 + f/700) between f_min and f_max, applied to the power spectrum.
  6. log: ln(mel + log_floor).
  7. MFCC only: orthonormal DCT-II over the mel axis, first n_mfcc coefficients:
     c[k] = s_k · Σ_m logmel[m]·cos(π·k·(2m+1)/(2·n_mels)), s_0 = √(1/n_mels), s_k = √(2/n_mels).
  Output: float32 [n_frames, n_mels or n_mfcc] (time × feature).
  On the device the input is this tensor quantised to int8 per tensor: q = clamp(round_half_away(x/scale)
  + zero_point, −128, 127), with scale and zero point chosen at export from the calibration set
  (hostside/graph.py: IntGraph.quantize_input).

Presets: `logmel40` (49×40, the default), `logmel40-4k` (the same 40 bands between 20 Hz and 4 kHz: nothing an
8 kHz line removes) and `mfcc10` (49×10: MLPerf Tiny KWS geometry — 30 ms window, 20 ms hop, 40 mel bands from
20 Hz to 4 kHz, 10 MFCCs).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FrontEnd:
    kind: str = "logmel"                 # "logmel" or "mfcc"
    sample_rate: int = 16000
    clip_samples: int = 16000
    frame_length: int = 480
    hop_length: int = 320
    n_fft: int = 512
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 8000.0
    log_floor: float = 1e-6
    n_mfcc: int = 10

    @property
    def n_frames(self) -> int:
        return 1 + (self.clip_samples - self.frame_length) // self.hop_length

    @property
    def n_features(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_features)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "FrontEnd":
        return FrontEnd(**(d or {}))


PRESETS = {
    "logmel40": FrontEnd(),
    "mfcc10": FrontEnd(kind="mfcc", f_max=4000.0, n_mfcc=10),
    # logmel40's geometry on the telephone band: 40 log-mel bands from 20 Hz to 4 kHz, so a student hears a
    # full-band microphone and an 8 kHz line alike (benchmarks/quality/attempts.md §24)
    "logmel40-4k": FrontEnd(f_max=4000.0),
}


def preset(name: str) -> FrontEnd:
    if name not in PRESETS:
        from ..errors import PqlrError
        raise PqlrError(f"unknown feature preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


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
        fb[m] = np.maximum(0.0, np.minimum((freqs - lo) / (ce - lo), (hi - freqs) / (hi - ce)))
    return fb


def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """[n_mfcc, n_mels] orthonormal DCT-II."""
    m = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    d = np.cos(np.pi * k * (2 * m + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    d[0] *= np.sqrt(0.5)
    return d


def _window(fe: FrontEnd) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(fe.frame_length) / fe.frame_length)


def features(audio: np.ndarray, fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """The numpy front end (the specification): audio → float32 [n_frames, n_features]."""
    x = np.zeros(fe.clip_samples)
    a = np.asarray(audio, dtype=np.float64)[: fe.clip_samples]
    x[: len(a)] = a
    idx = np.arange(fe.n_frames)[:, None] * fe.hop_length + np.arange(fe.frame_length)[None, :]
    power = np.abs(np.fft.rfft(x[idx] * _window(fe), n=fe.n_fft, axis=1)) ** 2
    logmel = np.log(power @ mel_filterbank(fe).T + fe.log_floor)
    if fe.kind == "mfcc":
        logmel = logmel @ dct_matrix(fe.n_mels, fe.n_mfcc).T
    return logmel.astype(np.float32)


def log_mel(audio: np.ndarray, fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """Backwards-compatible name for the log-mel front end."""
    return features(audio, fe)


class TorchFrontEnd:
    """The same front end in torch (float32), batched: [N, clip_samples] → [N, n_frames, n_features]."""

    def __init__(self, fe: FrontEnd):
        import torch
        self.fe = fe
        self.window = torch.tensor(_window(fe), dtype=torch.float32)
        self.fb = torch.tensor(mel_filterbank(fe).T, dtype=torch.float32)
        self.dct = torch.tensor(dct_matrix(fe.n_mels, fe.n_mfcc).T, dtype=torch.float32) if fe.kind == "mfcc" else None

    def __call__(self, audio, warp=None):
        """warp: None, or a [N] tensor of vocal-tract length factors α (see `vtlp_warp`)."""
        import torch
        fe = self.fe
        frames = audio.unfold(1, fe.frame_length, fe.hop_length)[:, : fe.n_frames] * self.window.to(audio.device)
        power = torch.fft.rfft(frames, n=fe.n_fft, dim=-1).abs() ** 2
        if warp is not None:
            power = vtlp_warp(power, warp, fe)
        out = torch.log(power @ self.fb.to(audio.device) + fe.log_floor)
        if self.dct is not None:
            out = out @ self.dct.to(audio.device)
        return out


def vtlp_warp(power, alpha, fe: FrontEnd, boundary_hz: float = 4800.0):
    """Vocal-tract length perturbation (Jaitly & Hinton, 2013) of power spectra [N, T, bins]: each example's
    frequency axis scaled by its factor α (> 1 moves the formants up, as a shorter vocal tract does).
    Piecewise linear, so 0 Hz and the Nyquist frequency stay put: an input frequency f goes to α·f up to the
    knee k = boundary_hz·min(α, 1)/α, and the segment above it goes straight to the Nyquist frequency.
    Each output bin takes the input spectrum at its source frequency, interpolated linearly; α = 1 is the
    identity."""
    import torch
    n_bins = power.shape[-1]
    nyq = fe.sample_rate / 2
    f = torch.arange(n_bins, dtype=power.dtype, device=power.device) * nyq / (n_bins - 1)         # [bins]
    a = alpha.to(device=power.device, dtype=power.dtype)[:, None]                                 # [N, 1]
    k_in = boundary_hz * torch.clamp(a, max=1.0) / a
    k_out = a * k_in
    src = torch.where(f[None, :] <= k_out, f[None, :] / a,
                      nyq - (nyq - f[None, :]) * (nyq - k_in) / (nyq - k_out))
    src = src.clamp(0, nyq) * (n_bins - 1) / nyq                                                # [N, bins], in bins
    lo = src.floor().long().clamp(0, n_bins - 1)
    hi = (lo + 1).clamp(max=n_bins - 1)
    w = (src - lo.to(src.dtype))[:, None, :]
    t = power.shape[1]
    return torch.gather(power, 2, lo[:, None, :].expand(-1, t, -1)) * (1 - w) + \
        torch.gather(power, 2, hi[:, None, :].expand(-1, t, -1)) * w


def corpus_features(corpus, fe: FrontEnd = FrontEnd(), split: str | None = None):
    """Features and labels for a corpus (or one split), cached in the corpus folder."""
    key = hashlib.sha256(json.dumps([fe.to_dict(), [(c.file, c.offset) for c in corpus.clips]]).encode()).hexdigest()[:12]
    cache = corpus.cache_dir / f"features-{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        feats, labels = z["x"], z["y"]
    else:
        feats = np.empty((len(corpus.clips), *fe.shape), dtype=np.float32)
        for i, clip in enumerate(corpus.clips):
            feats[i] = features(corpus.audio(clip, fe.sample_rate), fe)
        labels = np.array([corpus.classes.index(c.label) for c in corpus.clips], dtype=np.int64)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=feats, y=labels)
    if split is None:
        return feats, labels
    mask = np.array([c.split == split for c in corpus.clips], dtype=bool)
    return feats[mask], labels[mask]


def load_features(corpus_dir, split: str | None = None, frontend=None):
    """(corpus, features, labels) for a corpus folder (pqlr, Speech Commands v2 or <class>/ layout);
    frontend: a FrontEnd, its dict, or None for the default."""
    from pathlib import Path

    from .corpus import load_corpus
    corpus = load_corpus(Path(corpus_dir))
    fe = frontend if isinstance(frontend, FrontEnd) else FrontEnd.from_dict(frontend)
    x, y = corpus_features(corpus, fe, split)
    return corpus, x, y
