"""Execute an IntGraph exactly (int8 tensors, int32/int64 accumulators, the graph module's requant rule)."""
from __future__ import annotations

import math

import numpy as np

from ..graph import ADD_OPS, EXP_BITS, INV_BITS, LN_BITS, PROB_BITS, IntGraph, Layer, double_round, requantize
from .ibert import i_exp


def _padded(x: np.ndarray, layer: Layer) -> np.ndarray:
    """x − in_zp as int64, zero-padded (padding therefore equals in_zp in the int8 domain)."""
    t, l, b, r = layer.pad
    xi = x.astype(np.int64) - layer.in_zp
    return np.pad(xi, ((t, b), (l, r), (0, 0)))


def conv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    xp = _padded(x, L)
    kh, kw = L.kernel
    sh, sw = L.stride
    oh, ow, oc = L.out_shape
    cols = np.empty((oh, ow, kh, kw, xp.shape[2]), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = xp[i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :]
    acc = cols.reshape(oh * ow, -1) @ L.weights.reshape(oc, -1).astype(np.int64).T + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(oh, ow, oc)


def dwconv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    xp = _padded(x, L)
    kh, kw = L.kernel
    sh, sw = L.stride
    oh, ow, oc = L.out_shape
    acc = np.zeros((oh, ow, oc), dtype=np.int64) + L.bias
    w = L.weights.astype(np.int64)           # [C, kh, kw]
    for i in range(kh):
        for j in range(kw):
            acc += xp[i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :] * w[:, i, j]
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding)


def pwconv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    oh, ow, oc = L.out_shape
    xi = x.astype(np.int64).reshape(oh * ow, -1) - L.in_zp
    acc = xi @ L.weights.astype(np.int64).T + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(oh, ow, oc)


def avgpool(x: np.ndarray, L: Layer) -> np.ndarray:
    acc = (x.astype(np.int64) - L.in_zp).sum(axis=(0, 1))
    return requantize(acc, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding).reshape(L.out_shape)


def fc(x: np.ndarray, L: Layer) -> np.ndarray:
    xi = x.astype(np.int64).reshape(-1) - L.in_zp
    acc = L.weights.astype(np.int64) @ xi + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(L.out_shape)


def reshape(x: np.ndarray, L: Layer) -> np.ndarray:
    return x.reshape(L.out_shape)


def add(x: np.ndarray, L: Layer, other: np.ndarray | None = None) -> np.ndarray:
    b = L.weights.reshape(L.out_shape) if other is None else other
    acc = (x.astype(np.int64) - L.in_zp) * L.ra + (b.astype(np.int64) - L.in2_zp) * L.rb
    return requantize(acc, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding)


def trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b rounded toward zero (C's integer division), b > 0."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def layernorm(x: np.ndarray, L: Layer) -> np.ndarray:
    h, w, c = L.in_shape
    xi = x.reshape(h * w, c).astype(np.int64)
    s1 = xi.sum(axis=1, keepdims=True)
    s2 = (xi * xi).sum(axis=1, keepdims=True)
    sd = np.array([[math.isqrt(int(v))] for v in (c * s2 - s1 * s1).ravel()], dtype=np.int64)
    n = np.where(sd > 0, trunc_div((xi * c - s1) * (1 << LN_BITS), np.maximum(sd, 1)), 0)
    acc = n * L.weights[:, 0].astype(np.int64) + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(L.out_shape)


def int_exp(r: np.ndarray) -> np.ndarray:
    """I-BERT's integer exp for r ≤ 0 in units of 2^−EXP_BITS (graph module docstring). Its polynomial is
    below 2^22, so the shift by z ≥ 22 is 0, as the C kernel's `z > 30 ? 0 : … >> z`."""
    return i_exp(np.asarray(r, dtype=np.int64), 2.0 ** -EXP_BITS)[0]


def attention(x: np.ndarray, L: Layer) -> np.ndarray:
    t = L.in_shape[0] * L.in_shape[1]
    d = L.out_shape[2]
    hd = d // L.heads
    xi = x.reshape(t, 3 * d).astype(np.int64) - L.in_zp
    ctx = np.empty((t, d), dtype=np.int64)
    for h in range(L.heads):
        sl = slice(h * hd, (h + 1) * hd)
        q, k, v = xi[:, sl], xi[:, d:][:, sl], xi[:, 2 * d:][:, sl]
        logits = q @ k.T
        r = ((logits - logits.max(axis=1, keepdims=True)) * L.m2 + (1 << (L.s2 - 1))) >> L.s2
        e = int_exp(r)
        inv = (1 << INV_BITS) // e.sum(axis=1, keepdims=True)
        prob = (e * inv) >> (INV_BITS - PROB_BITS)
        ctx[:, sl] = prob @ v
    return requantize(ctx, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding).reshape(L.out_shape)


def gelu(x: np.ndarray, L: Layer) -> np.ndarray:
    return L.weights[0][x.astype(np.int64) + 128].astype(np.int8)


lut = gelu          # the same lookup; the table says which function


def meanpool(x: np.ndarray, L: Layer) -> np.ndarray:
    from .tflite_ops import mean_pool
    return mean_pool(x, L.act_min, L.act_max).reshape(L.out_shape)


def maxpool(x: np.ndarray, L: Layer) -> np.ndarray:
    t, l, b, r = L.pad
    xp = np.pad(x.astype(np.int64), ((t, b), (l, r), (0, 0)), constant_values=-(1 << 40))   # padding never wins
    kh, kw = L.kernel
    sh, sw = L.stride
    oh, ow, oc = L.out_shape
    y = np.full((oh, ow, oc), -(1 << 40), np.int64)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, xp[i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :])
    return np.clip(y, L.act_min, L.act_max).astype(np.int8)


def qadd(x: np.ndarray, L: Layer, other: np.ndarray | None = None) -> np.ndarray:
    b = L.weights.reshape(L.out_shape) if other is None else other
    a1 = double_round((x.astype(np.int64) - L.in_zp) << 20, L.ra, L.m2)
    a2 = double_round((b.astype(np.int64) - L.in2_zp) << 20, L.rb, L.s2)
    y = double_round(a1 + a2, int(L.multiplier[0]), int(L.shift[0])) + L.out_zp
    return np.clip(y, L.act_min, L.act_max).astype(np.int8)


def softmax(x: np.ndarray, L: Layer) -> np.ndarray:
    from .tflite_ops import softmax as tfl_softmax
    return tfl_softmax(x, int(L.multiplier[0]), int(L.shift[0]), L.m2).reshape(L.out_shape)


def stream(x: np.ndarray, L: Layer, state: np.ndarray | None = None) -> np.ndarray:
    """state ‖ x along H; `state` None: the layer's initial state (its constant rows)."""
    s_rows = L.out_shape[0] - L.in_shape[0]
    if state is None:
        state = initial_state(L)
    return np.concatenate([state.reshape(s_rows, *L.in_shape[1:]), x], axis=0)


def initial_state(L: Layer) -> np.ndarray:
    s_rows = L.out_shape[0] - L.in_shape[0]
    return L.weights.reshape(s_rows, L.in_shape[1], L.in_shape[2]).astype(np.int8)


KERNELS = {"conv2d": conv2d, "dwconv2d": dwconv2d, "pwconv2d": pwconv2d, "avgpool": avgpool, "fc": fc,
           "add": add, "layernorm": layernorm, "attention": attention, "gelu": gelu, "reshape": reshape, "lut": lut, "stream": stream,
           "meanpool": meanpool, "softmax": softmax, "maxpool": maxpool, "qadd": qadd}


def run(graph: IntGraph, x: np.ndarray, dump: bool = False, state: dict | None = None):
    """x: int8 input of graph.input_shape. Returns the int8 output vector, or (output, [t0 … tL]) with dump.
    A streaming graph reads its stream layers' state from `state` (layer index → int8 rows; missing: the
    initial state) and writes the new state back into it; without `state` every call starts fresh."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.shape != tuple(graph.input_shape):
        raise ValueError(f"input must be int8 {graph.input_shape}, got {x.dtype} {x.shape}")
    tensors = [x]
    for i, L in enumerate(graph.layers):
        if L.op in ADD_OPS:
            tensors.append(KERNELS[L.op](tensors[-1], L, tensors[L.skip] if L.skip >= 0 else None))
        elif L.op == "stream":
            y = stream(tensors[-1], L, None if state is None else state.get(i))
            if state is not None:
                state[i] = y[y.shape[0] - (L.out_shape[0] - L.in_shape[0]):].copy()
            tensors.append(y)
        else:
            tensors.append(KERNELS[L.op](tensors[-1], L))
    out = tensors[-1].reshape(-1)
    return (out, tensors) if dump else out


def run_batch(graph: IntGraph, xs: np.ndarray) -> np.ndarray:
    return np.stack([run(graph, x) for x in xs])


class Streamer:
    """A streaming graph stepped one input at a time, its state carried between steps (as the board does)."""

    def __init__(self, graph: IntGraph):
        self.graph = graph
        self.state: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self.state.clear()

    def step(self, x: np.ndarray, dump: bool = False):
        return run(self.graph, x, dump=dump, state=self.state)
