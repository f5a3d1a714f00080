"""The fixed-point front end: the integer specification that the firmware's C front end
(firmware_templates/core/frontend.c) matches bit for bit, so a benchmark can start from raw 16-bit audio.

It approximates the float front end (hostside/data/features.py) and is measured against it
(tests/test_frontend.py). Arithmetic, for each 30 ms frame of int16 samples:
  1. window: xw[n] = (x[n]·hann_q31[n] + 2^15) >> 16 (int32, up to 2^30: the windowed sample with 15
     fraction bits, so the FFT's per-stage rounding stays far below quiet signals; a Q15 window would
     leak a loud tone ~96 dB down into every band), zero-padded to 512;
  2. FFT: 512-point radix-2 decimation-in-time on int32 (re, im), bit-reversed input; every butterfly
     t = (b·w + 2^30) >> 31 with Q31 twiddles (int64 products; Q15 twiddles would leak the strongest
     component ~90 dB down into every bin), a' = (a + t) >> 1, b' = (a − t) >> 1, so the result is
     FFT/512 (no overflow);
  3. power: p[k] = (re² + im²) >> 14 for k = 0 … 256 (int64);
  4. mel: m[b] = (Σ_k p[k]·fb_q15[b][k] >> 15) + floor, floor = round(log_floor·G), G = 2^28 the
     integer pipeline's gain (so the log floor is the float front end's);
  5. log: ln(m) in Q16 from log2: e = index of the top bit, the next 5 bits pick an entry of a 33-entry
     Q16 log2 table, the 16 bits below them interpolate linearly; ln = (log2·LN2_Q16 + 2^15) >> 16,
     plus the constant that undoes steps 1-4's scaling;
  6. MFCC presets: c[k] = Σ_b dct_q15[k][b]·ln[b], (+ 2^14) >> 15;
  7. int8: q = clamp(((f·M + 2^(s−1)) >> s) + zp, −128, 127) with (M, s) from 1/(65536·input_scale),
     the same requantisation rule as every layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..graph import quantize_multiplier
from .features import FrontEnd, dct_matrix, mel_filterbank

N_FFT = 512
POWER_SHIFT = 14            # Parseval: Σ_k |X_k|² ≤ 2^60, so Σ_k p_k·fb_k < 2^61 fits int64
GAIN = (32768 * 32768 / 512) ** 2 / 2 ** POWER_SHIFT        # mel_int ≈ mel_true · GAIN = 2^28
LN2_Q16 = int(round(math.log(2) * 65536))
LOG2_LUT = [int(round(math.log2(1 + i / 32) * 65536)) for i in range(33)]   # Q16


@dataclass
class FixedTables:
    window: np.ndarray          # int32 [frame_length], Q31 Hann
    cos: np.ndarray             # int32 [256], Q31 cos(2πk/512)
    sin: np.ndarray             # int32 [256], Q31 sin(2πk/512)
    fb: np.ndarray              # int32 [n_mels, 257], Q15
    dct: np.ndarray             # int32 [n_mfcc, n_mels], Q15 (empty for log-mel)
    ln_offset_q16: int          # −ln(GAIN) in Q16, undone in step 5
    floor: int                  # the log floor in integer mel units
    in_mult: int
    in_shift: int
    in_zp: int


def tables(fe: FrontEnd, input_scale: float, input_zp: int) -> FixedTables:
    if fe.n_fft != N_FFT or fe.frame_length > N_FFT:
        from ..errors import PqlrError
        raise PqlrError(f"the fixed-point front end supports n_fft {N_FFT} (got {fe.n_fft})")
    n = np.arange(fe.frame_length)
    window = np.round((0.5 - 0.5 * np.cos(2 * np.pi * n / fe.frame_length)) * (2**31 - 1)).astype(np.int64)
    k = np.arange(N_FFT // 2)
    cos = np.round(np.cos(2 * np.pi * k / N_FFT) * (2**31 - 1)).astype(np.int64)
    sin = np.round(np.sin(2 * np.pi * k / N_FFT) * (2**31 - 1)).astype(np.int64)
    fb = np.round(mel_filterbank(fe) * 32767).astype(np.int32)
    dct = (np.round(dct_matrix(fe.n_mels, fe.n_mfcc) * 32767).astype(np.int32) if fe.kind == "mfcc"
           else np.zeros((0, fe.n_mels), np.int32))
    # audio in [-1, 1) arrives as int16 (·32768); window Q31 >> 16 (·32768); FFT/512; power >> POWER_SHIFT;
    # fb Q15 → 1: mel_int ≈ mel_true · GAIN
    ln_offset = int(round(-math.log(GAIN) * 65536))
    M, s = quantize_multiplier(1.0 / (65536 * input_scale))
    return FixedTables(window, cos, sin, fb, dct, ln_offset, max(1, int(round(fe.log_floor * GAIN))), M, s,
                       int(input_zp))


def _bitrev(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n)])


def fft_q(xr: np.ndarray, t: FixedTables) -> tuple[np.ndarray, np.ndarray]:
    """[frames, 512] int64 real input → (re, im) int64, = FFT/512, by the integer butterflies."""
    rev = _bitrev(N_FFT)
    re = xr[:, rev].astype(np.int64)
    im = np.zeros_like(re)
    size = 2
    while size <= N_FFT:
        half = size // 2
        step = N_FFT // size
        for j in range(half):
            wr = int(t.cos[j * step])
            wi = -int(t.sin[j * step])                       # e^{-2πi jk/N}
            a = np.arange(j, N_FFT, size)
            b = a + half
            br, bi = re[:, b], im[:, b]
            tr = (br * wr - bi * wi + (1 << 30)) >> 31
            ti = (br * wi + bi * wr + (1 << 30)) >> 31
            ar, ai = re[:, a], im[:, a]
            re[:, a], im[:, a] = (ar + tr) >> 1, (ai + ti) >> 1
            re[:, b], im[:, b] = (ar - tr) >> 1, (ai - ti) >> 1
        size *= 2
    return re, im


def ln_q16(m: np.ndarray, offset: int) -> np.ndarray:
    """ln(m) in Q16 for int64 m ≥ 1, by the top bit, a 33-entry log2 table and linear interpolation."""
    m = np.asarray(m, dtype=np.int64)
    e = np.floor(np.log2(m.astype(np.float64))).astype(np.int64)       # exact for the magnitudes here
    # correct any float rounding at powers of two
    e = np.where((np.int64(1) << (e + 1)) <= m, e + 1, e)
    e = np.where((np.int64(1) << e) > m, e - 1, e)
    # 21 fraction bits below the top bit: 5 index the table, 16 interpolate
    frac = np.where(e >= 21, (m >> np.maximum(e - 21, 0)), m << np.maximum(21 - e, 0)) & ((1 << 21) - 1)
    idx, rem = frac >> 16, frac & 0xFFFF
    lut = np.array(LOG2_LUT, dtype=np.int64)
    log2 = (e << 16) + lut[idx] + (((lut[idx + 1] - lut[idx]) * rem) >> 16)
    return ((log2 * LN2_Q16 + (1 << 15)) >> 16) + offset


def features_q(audio_i16: np.ndarray, fe: FrontEnd, t: FixedTables) -> np.ndarray:
    """int16 audio → the model's int8 input [n_frames, n_features] (the firmware's exact arithmetic)."""
    x = np.zeros(fe.clip_samples, dtype=np.int64)
    a = np.asarray(audio_i16, dtype=np.int64)[: fe.clip_samples]
    x[: len(a)] = a
    idx = np.arange(fe.n_frames)[:, None] * fe.hop_length + np.arange(fe.frame_length)[None, :]
    xw = (x[idx] * t.window + (1 << 15)) >> 16
    buf = np.zeros((fe.n_frames, N_FFT), dtype=np.int64)
    buf[:, : fe.frame_length] = xw
    re, im = fft_q(buf, t)
    p = (re[:, : N_FFT // 2 + 1] ** 2 + im[:, : N_FFT // 2 + 1] ** 2) >> POWER_SHIFT
    mel = ((p @ t.fb.T.astype(np.int64)) >> 15) + t.floor
    f = ln_q16(mel, t.ln_offset_q16)
    if len(t.dct):
        f = (f @ t.dct.T.astype(np.int64) + (1 << 14)) >> 15
    y = (f * t.in_mult + (np.int64(1) << (t.in_shift - 1))) >> t.in_shift
    return np.clip(y + t.in_zp, -128, 127).astype(np.int8)
