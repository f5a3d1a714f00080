"""Background noise: generated colours and recordings from Debian packages (asterisk's music on hold,
sonic-pi's samples: ambience, loops, instruments, vinyl crackle), split into a training pool and a disjoint
held-out pool, so test clips are mixed with noise sources that training never heard."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .corpus import CLIP_SAMPLES, SAMPLE_RATE, read_audio, resample

NOISE_DIRS = ("/usr/share/asterisk/moh", "/usr/share/sonic-pi/samples")
NOISE_SUFFIXES = (".wav", ".flac")
GENERATED = ("white", "pink", "brown", "hum")


@dataclass(frozen=True)
class NoiseSource:
    id: str                  # gen:pink, file:/usr/share/asterisk/moh/x.wav
    pool: str                # train | test


def generated(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS generated noise: white, pink (1/f), brown (1/f²) or mains hum with harmonics in pink noise."""
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h for h in range(1, 6))
        x = x + 0.3 * generated("pink", n, rng)
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / (np.sqrt(f) if kind == "pink" else f), n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def noise_sources() -> list[NoiseSource]:
    """Every third source (sorted, per kind) is held out for test; the rest train (and validate)."""
    srcs = [NoiseSource(f"gen:{k}", "test" if k == "brown" else "train") for k in GENERATED]
    files = sorted(str(p) for d in NOISE_DIRS if Path(d).is_dir() for p in Path(d).rglob("*")
                   if p.suffix in NOISE_SUFFIXES)
    srcs += [NoiseSource(f"file:{f}", "test" if i % 3 == 2 else "train") for i, f in enumerate(files)]
    return srcs


@lru_cache(maxsize=512)
def _file_audio(path: str) -> np.ndarray:
    x, sr = read_audio(Path(path))
    return resample(x, sr, SAMPLE_RATE)


def noise_clip(src: NoiseSource, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    if src.id.startswith("gen:"):
        return generated(src.id[4:], n, rng)
    x = _file_audio(src.id[5:])
    if len(x) < n:
        x = np.tile(x, n // max(1, len(x)) + 1)
    start = int(rng.integers(0, len(x) - n + 1))
    seg = x[start: start + n]
    rms = np.sqrt(np.mean(seg ** 2))
    return seg / rms if rms > 1e-6 else generated("pink", n, rng)


def mix(signal: np.ndarray, noise: np.ndarray, snr_db: float, signal_rms: float | None = None,
        clip: bool = True) -> np.ndarray:
    """signal + noise at snr_db relative to signal_rms (default: the signal's own RMS); with clip, scaled
    down to a 0.9 peak if it would clip."""
    rms = (np.sqrt(np.mean(signal ** 2)) if signal_rms is None else signal_rms) + 1e-12
    out = signal + noise * rms / (10 ** (snr_db / 20))
    peak = np.abs(out).max()
    return out * (0.9 / peak) if clip and peak > 0.99 else out


def noise_bank(n: int = 256, seed: int = 0) -> np.ndarray:
    """n one-second clips from the training noise pool (never the test pool), for training-time mixing."""
    rng = np.random.default_rng(seed)
    pool = [s for s in noise_sources() if s.pool == "train"]
    return np.stack([noise_clip(pool[int(rng.integers(0, len(pool)))], rng) for _ in range(n)]).astype(np.float32)
