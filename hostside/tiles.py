"""The bytes of a tile in model.bin and in the tile buffer — the artifact's format, shared by the writer, the
reader and the planner (which only needs sizes).

A tile for channels [c0, c0+n) is, little-endian and contiguous:
    int32 bias[n] | int32 multiplier[n] | uint8 shift[n], zero pad to 4 | weights: n rows of R bytes | pad to 4
so one flash read brings everything needed to compute those channels. The stored bias is folded with the
input zero point, b' = b − in_zp·Σ_k w_k, so that kernels accumulate raw x·w (b' + Σ x·w = b + Σ (x − in_zp)·w);
a padded tap therefore counts as the value in_zp. A row holds one output channel's
K weights: int8, R = K; or int4, R = ceil(K/2), two's-complement nibbles, weight 2j in the low nibble of
byte j and weight 2j+1 in its high nibble (a last odd weight leaves the high nibble 0). Int4 weights stay
packed in flash and in the tile buffer; kernels unpack them in registers.

"""
from __future__ import annotations

import numpy as np

from .errors import BudgetError
from .graph import WEIGHTED_OPS, Layer

PARAM_BYTES_PER_CHANNEL = 9   # int32 bias + int32 multiplier + uint8 shift


def params_bytes(n: int) -> int:
    """Bytes of n channels' parameters in a tile: int32 bias[n], int32 multiplier[n], uint8 shift[n], pad to 4."""
    return 8 * n + align4(n)


def align4(n: int) -> int:
    return (n + 3) & ~3


def row_bytes(k: int, wbits: int) -> int:
    return k if wbits == 8 else (k + 1) // 2


def pack_int4(w: np.ndarray) -> bytes:
    """[rows, K] int4 values → rows of ceil(K/2) bytes (low nibble first)."""
    rows, k = w.shape
    if k % 2:
        w = np.concatenate([w, np.zeros((rows, 1), w.dtype)], axis=1)
    u = (w.astype(np.int16) & 0xF).astype(np.uint8)
    return (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(raw: bytes, rows: int, k: int) -> np.ndarray:
    b = np.frombuffer(raw, np.uint8).reshape(rows, (k + 1) // 2)
    lo = (b & 0xF).astype(np.int16)
    hi = (b >> 4).astype(np.int16)
    w = np.stack([lo, hi], axis=2).reshape(rows, -1)[:, :k]
    return np.where(w > 7, w - 16, w).astype(np.int8)


def pack_channels(layer: Layer, c0: int, n: int) -> bytes:
    """The bytes of one tile (see module docstring). Rows are output channels, except for an add's constant
    operand (rows are pixels) and a gelu table (one row of 256); those have no bias, multiplier or shift (zeros),
    and only ops that accumulate Σ x·w (WEIGHTED_OPS) fold the input zero point into the bias."""
    w = layer.weights.reshape(layer.rows, -1)[c0: c0 + n]
    lim = 127 if layer.wbits == 8 else 7
    lo = -lim if layer.op in WEIGHTED_OPS + ("layernorm",) else -lim - 1   # constants and tables: all of int8
    if w.min(initial=0) < lo or w.max(initial=0) > lim:
        raise BudgetError(f"layer {layer.name}: weights outside [−{lim}, {lim}] for {layer.wbits}-bit storage")
    packed = w.astype(np.int8).tobytes() if layer.wbits == 8 else pack_int4(w)
    if layer.bias is None:                                   # add (constant operand), gelu (table)
        z = np.zeros(n, np.int64)
        bias, mult, shift = z, z, np.zeros(n, np.uint8).tobytes()
    else:
        bias, mult = layer.bias[c0: c0 + n].astype(np.int64), layer.multiplier[c0: c0 + n]
        shift = layer.shift[c0: c0 + n].astype(np.uint8).tobytes()
    fold_zp = layer.in_zp if layer.op in WEIGHTED_OPS else 0
    folded = bias - fold_zp * w.astype(np.int64).sum(axis=1)
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) >= 2**31:
        raise BudgetError(f"layer {layer.name}: the zero-point-folded bias overflows int32")
    body = (folded.astype("<i4").tobytes() + np.asarray(mult).astype("<i4").tobytes()
            + shift + b"\0" * (align4(n) - n) + packed)
    return body + b"\0" * (align4(len(body)) - len(body))


def tile_size(layer: Layer, n: int) -> int:
    return align4(params_bytes(n) + n * row_bytes(layer.weights_per_channel, layer.wbits))
