"""TFLite's integer softmax and average pool, bit for bit (imported models; hostside/importer).

Softmax follows TFLite's reference int8 kernel, built on gemmlowp's fixed-point arithmetic: the input difference
to the row's maximum, scaled by a multiplier with a left shift into Q5.26, exp() of it in Q0.31 (gemmlowp's
exp_on_negative_values: a Taylor polynomial around −1/8 and a barrel shifter of exp(−2^k) constants), the sum in
Q12.19, its reciprocal by Newton–Raphson (one_over_one_plus_x_for_x_in_0_1), and the output rounded into
units of 1/256 with zero point −128. Every step is an int32 operation whose rounding is gemmlowp's; numpy int64
holds the intermediate products. The firmware's C (kernels_tf.c) is a line-by-line transcription of this file.
"""
from __future__ import annotations

import math

import numpy as np

from ..graph import rdbpot, srdhm

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _wrap(x):
    return ((np.asarray(x, np.int64) + 2**31) % 2**32) - 2**31


def sat_shift_left(x, e: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    x = np.asarray(x, np.int64)
    thr = (1 << (31 - e)) - 1
    return np.where(x > thr, I32_MAX, np.where(x < -thr, I32_MIN, _wrap(x << e)))


def _exp_quarter(a):
    """exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 in and out."""
    const_term, third = 1895147668, 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(srdhm(x4_over_4 + x3, third) + x2, 1)
    return const_term + srdhm(const_term, x + poly)


EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
              (4, 242))


def exp_on_negative_values(a, integer_bits: int = 5):
    """gemmlowp exp_on_negative_values for a ≤ 0 in Q(integer_bits).(31 − integer_bits) → Q0.31."""
    if not 0 < integer_bits <= 5:
        raise ValueError("exp_on_negative_values is transcribed for 1..5 integer bits (softmax uses 5)")
    a = np.asarray(a, np.int64)
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_quarter(sat_shift_left(a_mod, integer_bits))
    remainder = a_mod - a
    for exponent, mult in EXP_BARREL:
        if integer_bits > exponent:
            bit = frac + exponent
            result = np.where((remainder >> bit) & 1, srdhm(result, mult), result)
    return np.where(a == 0, I32_MAX, result)


def one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out (Newton–Raphson in Q2.29)."""
    a = np.asarray(a, np.int64)
    s = a + I32_MAX
    half_den = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))       # RoundingHalfSum, C's `/` toward zero
    x = 1515870810 + srdhm(half_den, -1010580540)
    for _ in range(3):
        hdx = srdhm(half_den, x)
        one_minus = (1 << 29) - hdx
        x = x + sat_shift_left(srdhm(x, one_minus), 2)
    return sat_shift_left(x, 1)


def get_reciprocal(x: int, integer_digits: int) -> tuple[int, int]:
    """TFLite's GetReciprocal: (Q0.31 reciprocal of the shifted sum, num_bits_over_unit)."""
    x = int(x)
    headroom_plus_one = 32 - int(x).bit_length() if x > 0 else 32
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted_minus_one = _wrap(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return int(one_over_one_plus_x(shifted_minus_one)), num_bits_over_unit


def round_half_away(x):
    """TfLiteRound / std::round: halves away from zero (Python's round() rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (M, shift) with real ≈ M·2^(shift − 31), M in [2^30, 2^31) (0 for real = 0)."""
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    M = int(round_half_away(q * (1 << 31)))
    if M == 1 << 31:
        M //= 2
        e += 1
    return M, e


def softmax_params(input_scale: float, beta: float = 1.0, integer_bits: int = 5) -> tuple[int, int, int]:
    """TFLite's SoftmaxPrepare for int8: (input_multiplier, input_left_shift, diff_min)."""
    M, e = quantize_multiplier(min(beta * float(input_scale) * (1 << (31 - integer_bits)), float((1 << 31) - 1)))
    if e < 0:
        raise ValueError(f"softmax input scale {input_scale} too small")
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << e))
    return M, e, -radius


def softmax(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """int8 softmax over the last axis (TFLite reference), output int8 with scale 1/256 and zero point −128."""
    x = np.asarray(x).astype(np.int64)
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        diff = row - row.max()
        use = diff >= diff_min
        scaled = srdhm(diff * (1 << left_shift), multiplier)
        e = exp_on_negative_values(scaled)
        total = int(np.sum(np.where(use, rdbpot(e, 12), 0)))
        recip, bits = get_reciprocal(total, 12)
        y = rdbpot(srdhm(recip, e), bits + 31 - 8) - 128
        out[r] = np.where(use, np.clip(y, -128, 127), -128)
    return out.reshape(x.shape).astype(np.int8)


def mean_pool(x: np.ndarray, act_min: int, act_max: int) -> np.ndarray:
    """TFLite's int8 AVERAGE_POOL_2D over the whole H×W map (input and output share quantisation): the sum of the
    raw values divided by the count, rounded half away from zero with C's truncating division, clamped."""
    acc = x.astype(np.int64).reshape(-1, x.shape[-1]).sum(axis=0)
    n = x.shape[0] * x.shape[1]
    q = np.where(acc > 0, (acc + n // 2) // n, -((-(acc - n // 2)) // n))
    return np.clip(q, act_min, act_max).astype(np.int8).reshape(1, 1, -1)
