"""Integer-only transformer primitives in the style of I-BERT (Kim et al., 2021): exp, softmax, GELU
(through erf) and the square root for layer norm, computed with integers only.

Used by the integer graph: `i_exp` is the attention softmax's exp (reference/interpreter.py calls it at the
fixed scale 2^-EXP_BITS; hostside/graph.py derives the C constants from the same formulas) and `i_gelu`
fills the GELU table at export. `i_softmax` and `i_layernorm` are the paper's versions; the graph refines
both (one reciprocal per row instead of a division per element; the standard deviation to 1/C of a unit
instead of ⌊√var⌋ of an int8 input), and tests/test_transformer.py measures the second refinement against
them.

Each function takes int32/int64 tensors `q` with a real scale `s` (real = q·s) and returns integers with
the scale it states. Constants are computed once from the scale in float (at export time, on the host);
the per-element arithmetic is integer only: adds, multiplies, shifts, floor divisions.
"""
from __future__ import annotations

import math

import numpy as np

# second-order polynomials of I-BERT
EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344            # exp(p) ≈ a(p + b)² + c on (−ln2, 0]
ERF_A, ERF_B = -0.2888, -1.769                         # erf(x) ≈ sign(x)·[a(min(|x|, −b) + b)² + 1]


def i_poly(q: np.ndarray, s: float, a: float, b: float, c: float) -> tuple[np.ndarray, float]:
    """a(x + b)² + c for x = q·s: returns (q_out, s_out) with s_out = a·s²."""
    q_b = math.floor(b / s)
    q_c = math.floor(c / (a * s * s))
    q = np.asarray(q, dtype=np.int64)
    return (q + q_b) ** 2 + q_c, a * s * s


def i_exp(q: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    """exp(x) for x = q·s ≤ 0: x = −z·ln2 + p, p in (−ln2, 0], exp(x) = exp(p) >> z."""
    q = np.asarray(q, dtype=np.int64)
    if s > 1 / 64:
        raise ValueError(f"scale {s} is too coarse for the integer exp: requantise to a scale ≤ 1/64 first "
                         f"(attention logits come from int32 products, so they are fine-grained anyway)")
    q_ln2 = math.floor(math.log(2) / s)
    z = np.floor_divide(-q, q_ln2)
    p = q + z * q_ln2
    q_l, s_l = i_poly(p, s, EXP_A, EXP_B, EXP_C)
    return q_l >> np.minimum(z, 62), s_l


def i_softmax(q: np.ndarray, s: float, out_bits: int = 8, axis: int = -1) -> tuple[np.ndarray, float]:
    """softmax along `axis`: subtract the maximum, integer exp, and an integer division; the probabilities
    come back as unsigned integers in units of 1/(2^out_bits − 1). The input scale must be ≤ 1/64."""
    q = np.asarray(q, dtype=np.int64)
    q = q - q.max(axis=axis, keepdims=True)
    e, _ = i_exp(q, s)
    total = e.sum(axis=axis, keepdims=True)
    scale_out = (1 << out_bits) - 1
    return np.floor_divide(e * scale_out, np.maximum(total, 1)), 1.0 / scale_out


def i_erf(q: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    q = np.asarray(q, dtype=np.int64)
    q_b = math.floor(ERF_B / s)
    clipped = np.minimum(np.abs(q), -q_b)
    q_l, s_l = i_poly(clipped, s, ERF_A, ERF_B, 1.0)
    return np.sign(q) * q_l, s_l


def i_gelu(q: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    """x·½(1 + erf(x/√2)) with the integer erf; returns (q_out, s_out)."""
    q = np.asarray(q, dtype=np.int64)
    q_erf, s_erf = i_erf(q, s / math.sqrt(2))
    q_one = math.floor(1 / s_erf)
    return q * (q_erf + q_one), s * s_erf / 2


def i_sqrt(n: np.ndarray) -> np.ndarray:
    """floor(√n) for integers n ≥ 0, by Newton's iteration (integer only)."""
    n = np.asarray(n, dtype=np.int64)
    if (n < 0).any():
        raise ValueError("i_sqrt of a negative number")
    x = np.where(n > 0, np.int64(1) << ((np.floor(np.log2(np.maximum(n, 1))).astype(np.int64) // 2) + 1), 0)
    for _ in range(40):
        y = np.where(x > 0, (x + np.floor_divide(n, np.maximum(x, 1))) >> 1, 0)
        done = y >= x
        x = np.where(done, x, y)
        if done.all():
            break
    return x


def i_layernorm(q: np.ndarray, axis: int = -1, out_bits: int = 8) -> tuple[np.ndarray, float]:
    """(x − mean)/std along `axis` with an integer mean, variance and square root. One standard deviation
    comes back as 2^(out_bits−3) units (scale 2^−(out_bits−3)); the affine γ, β part is the following
    per-channel requantisation."""
    q = np.asarray(q, dtype=np.int64)
    n = q.shape[axis]
    mean = np.floor_divide(q.sum(axis=axis, keepdims=True), n)
    d = q - mean
    var = np.floor_divide((d * d).sum(axis=axis, keepdims=True), n)
    std = np.maximum(i_sqrt(var), 1)
    unit = 1 << (out_bits - 3)
    return np.floor_divide(d * unit, std), 1.0 / unit
