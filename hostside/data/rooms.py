"""Room reverberation: impulse responses of simulated rooms from pyroomacoustics (image source method,
shoebox rooms with a reverberation time drawn per room), in two disjoint banks, one for training and one
for test. pyroomacoustics is part of the `speech` extra; without it clips stay dry and the corpus says so."""
from __future__ import annotations

import numpy as np

from .corpus import SAMPLE_RATE


def available() -> bool:
    try:
        import pyroomacoustics  # noqa: F401
        return True
    except ImportError:
        return False


def impulse_responses(n: int, seed: int, rt60: tuple[float, float] = (0.15, 0.8)) -> list[np.ndarray]:
    """n unit-energy room impulse responses, deterministic for the seed."""
    import pyroomacoustics as pra
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        dims = rng.uniform([2.5, 2.5, 2.3], [10.0, 8.0, 4.0])
        t60 = rng.uniform(*rt60)
        try:
            e_abs, order = pra.inverse_sabine(t60, dims)
        except ValueError:                    # this room cannot reach that reverberation time: draw another
            continue
        room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(e_abs), max_order=min(order, 25))
        room.add_source(rng.uniform([0.4, 0.4, 0.8], dims - 0.4))
        room.add_microphone(rng.uniform([0.4, 0.4, 0.5], dims - 0.4))
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float64)
        out.append(h / (np.sqrt(np.sum(h ** 2)) + 1e-12))
    return out


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """x convolved with h, aligned on the direct path, same length as x."""
    from numpy.fft import irfft, rfft
    start = int(np.argmax(np.abs(h)))
    h = h[start:]
    n = len(x) + len(h) - 1
    y = irfft(rfft(x, n) * rfft(h, n), n)[: len(x)]
    return y
