"""Execute an IntGraph exactly (int8 tensors, int32/int64 accumulators, the graph module's requant rule)."""
from __future__ import annotations

import numpy as np

from ..graph import IntGraph, Layer, requantize


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
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max).reshape(oh, ow, oc)


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
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max)


def pwconv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    oh, ow, oc = L.out_shape
    xi = x.astype(np.int64).reshape(oh * ow, -1) - L.in_zp
    acc = xi @ L.weights.astype(np.int64).T + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max).reshape(oh, ow, oc)


def avgpool(x: np.ndarray, L: Layer) -> np.ndarray:
    acc = (x.astype(np.int64) - L.in_zp).sum(axis=(0, 1))
    return requantize(acc, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max).reshape(L.out_shape)


def fc(x: np.ndarray, L: Layer) -> np.ndarray:
    xi = x.astype(np.int64).reshape(-1) - L.in_zp
    acc = L.weights.astype(np.int64) @ xi + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max).reshape(L.out_shape)


KERNELS = {"conv2d": conv2d, "dwconv2d": dwconv2d, "pwconv2d": pwconv2d, "avgpool": avgpool, "fc": fc}


def run(graph: IntGraph, x: np.ndarray, dump: bool = False):
    """x: int8 input of graph.input_shape. Returns the int8 output vector, or (output, [t0 … tL]) with dump."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.shape != tuple(graph.input_shape):
        raise ValueError(f"input must be int8 {graph.input_shape}, got {x.dtype} {x.shape}")
    tensors = [x]
    for L in graph.layers:
        tensors.append(KERNELS[L.op](tensors[-1], L))
    out = tensors[-1].reshape(-1)
    return (out, tensors) if dump else out


def run_batch(graph: IntGraph, xs: np.ndarray) -> np.ndarray:
    return np.stack([run(graph, x) for x in xs])
