"""New voices from the training voices: analysis and resynthesis through the WORLD vocoder with another pitch
and another vocal-tract length (the optional `speech` extra's `pyworld-prebuilt`, a wheel of the WORLD vocoder's
Python wrapper; upstream `pyworld` ships no wheel and imports setuptools' removed `pkg_resources`).

Why: the voices every student misses are parametric (vocoded) female voices (festival's slt HTS voice, flite's
slt), and the training split's voices of the natural-sounding engines are two men (flite's awb, festival's ked).
A conversion keeps the words and the timing and moves the two things that separate those voices from the
training ones: the fundamental frequency (scaled to a target median) and the formants (the spectral envelope
and aperiodicity warped along frequency by a factor, > 1 for a shorter vocal tract), and it passes the speech
through a vocoder as the HTS and clustergen voices do. Conversions are drawn per clip (`draw`), used for the
training split only (SynthConfig.vocoded_voices), and deterministic for a seed.
"""
from __future__ import annotations

import numpy as np

from ..errors import ToolchainMissing

INSTALL = "pip install pyworld-prebuilt   (or the `speech` extra: pip install -e '.[speech]')"
FRAME_MS = 5.0
# target median F0 (Hz) and envelope warp for each direction: "up" towards women's and children's voices,
# "down" towards deeper men's voices; up is drawn UP_PROB of the time (the training voices are mostly male)
UP = {"f0": (165.0, 290.0), "warp": (1.06, 1.25)}
DOWN = {"f0": (75.0, 120.0), "warp": (0.88, 1.0)}
UP_PROB = 0.75


def available() -> bool:
    try:
        import pyworld  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str | None:
    """The installed WORLD wrapper's version (it keys corpora made with it), or None."""
    from importlib.metadata import PackageNotFoundError, version as v
    for dist in ("pyworld-prebuilt", "pyworld"):
        try:
            return v(dist)
        except PackageNotFoundError:
            pass
    return None


def draw(rng: np.random.Generator) -> dict:
    """One conversion: a target median F0 (log-uniform in its range) and an envelope warp factor."""
    r = UP if rng.random() < UP_PROB else DOWN
    f0 = float(np.exp(rng.uniform(np.log(r["f0"][0]), np.log(r["f0"][1]))))
    return {"f0": round(f0, 1), "warp": round(float(rng.uniform(*r["warp"])), 4)}


def warp_envelope(env: np.ndarray, factor: float) -> np.ndarray:
    """Each frame's envelope (frames × bins, bins from 0 to Nyquist) stretched along frequency: out(f) = env(f /
    factor), linear between bins; factor > 1 moves formants up. Beyond the last bin the last value holds."""
    n = env.shape[1]
    src = np.arange(n) / factor
    lo = np.clip(np.floor(src).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = np.clip(src - lo, 0.0, 1.0)
    return np.ascontiguousarray(env[:, lo] * (1 - w) + env[:, hi] * w)


def convert(x: np.ndarray, sr: int, f0: float, warp: float) -> np.ndarray:
    """x resynthesised with its voiced F0 scaled so that its median is `f0` Hz, and its spectral envelope and
    aperiodicity warped by `warp`. Unvoiced speech (whisper) keeps no pitch and is only warped. Same length."""
    try:
        import pyworld
    except ImportError as e:
        raise ToolchainMissing(f"vocoded voices need the WORLD vocoder: {INSTALL}") from e
    x = np.ascontiguousarray(x, dtype=np.float64)
    if len(x) < sr // 20:
        return x
    pitch, t = pyworld.dio(x, sr, frame_period=FRAME_MS)
    pitch = pyworld.stonemask(x, pitch, t, sr)
    sp = pyworld.cheaptrick(x, pitch, t, sr)
    ap = pyworld.d4c(x, pitch, t, sr)
    voiced = pitch > 0
    if voiced.any():
        pitch = pitch * (f0 / float(np.median(pitch[voiced])))
    y = pyworld.synthesize(pitch, warp_envelope(sp, warp), np.clip(warp_envelope(ap, warp), 0.0, 1.0), sr,
                           frame_period=FRAME_MS)
    y = y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    peak = np.abs(x).max()
    return y * (peak / (np.abs(y).max() + 1e-12)) if peak > 0 else y
