"""Execute an IntGraph exactly (int8 tensors, int32/int64 accumulators, the graph module's requant rule)."""
from __future__ import annotations

import functools
import math

import numpy as np
from threadpoolctl import ThreadpoolController

from ..graph import (CTC_NEG, CTC_TABLE, EXP_BITS, INV_BITS, LN_BITS, PROB_BITS, SKIP_OPS, IntGraph, Layer, ctc_offset,
                     ctc_repeats, ctc_sequences, ctc_span, ctc_states, ctc_state_bytes, double_round, requantize)
from .ibert import i_exp


def _padded(x: np.ndarray, layer: Layer) -> np.ndarray:
    """x [N, H, W, C] − in_zp (int32: within ±255), zero-padded (padding therefore equals in_zp in the int8 domain)."""
    t, l, b, r = layer.pad
    xi = x.astype(np.int32) - np.int32(layer.in_zp)
    return np.pad(xi, ((0, 0), (t, b), (l, r), (0, 0)))


def _imatmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of integer matrices, exactly: in float32 (BLAS) when every partial sum stays below 2^24 (int8 operands
    less a zero point, |a| ≤ 255 and |b| ≤ 127, for any K up to 518: a pointwise convolution, an fc), in float64
    below 2^53 (any K below 2^37), otherwise in int64. Every partial sum is then an integer the float holds exactly,
    whatever order BLAS adds in."""
    def top(m):                                  # max |m| in Python's integers (np.abs of int8 −128 is −128)
        return max(int(m.max(initial=0)), -int(m.min(initial=0)))
    bound = a.shape[1] * (top(a) * top(b) + 1)
    for kind, limit in ((np.float32, 2**24), (np.float64, 2**53)):
        if bound < limit:
            return (a.astype(kind) @ b.astype(kind)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread(fn):
    """fn with numpy's BLAS held to one thread while it runs. The reference's products are small (a layer of a
    chunk of inputs), and BLAS threads that spin waiting for work when another process holds the cores made it
    several times slower: 22.3 against 3.5 ms an input beside the quality benchmark's process (attempts.md §50)."""
    @functools.wraps(fn)
    def one_thread(*args, **kwargs):
        with _blas().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return one_thread


def _batched(kernel):
    """A kernel written for a batch [N, H, W, C] that also takes one input [H, W, C] (run_batch's fast path)."""
    def one_or_many(x: np.ndarray, L: Layer) -> np.ndarray:
        many = x.ndim == 4
        y = kernel(x if many else x[None], L)
        return y if many else y[0]
    one_or_many.__name__ = one_or_many.__qualname__ = kernel.__name__
    one_or_many.__doc__ = kernel.__doc__
    return one_or_many


@_batched
def conv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    xp = _padded(x, L)
    kh, kw = L.kernel
    sh, sw = L.stride
    oh, ow, oc = L.out_shape
    n = len(x)
    cols = np.empty((n, oh, ow, kh, kw, xp.shape[3]), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :]
    acc = _imatmul(cols.reshape(n * oh * ow, -1), L.weights.reshape(oc, -1).T) + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(n, oh, ow, oc)


@_batched
def dwconv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    xp = _padded(x, L)
    kh, kw = L.kernel
    sh, sw = L.stride
    oh, ow, oc = L.out_shape
    # int32 where no sum can leave it (|x − zp| ≤ 255, |w| ≤ 127), int64 otherwise: the same integers either way
    wide = kh * kw * 255 * 127 + int(np.abs(L.bias).max(initial=0)) >= 2**31
    kind = np.int64 if wide else np.int32
    acc = np.empty((len(x), oh, ow, oc), dtype=kind)
    acc[...] = L.bias.astype(kind)
    tap = np.empty_like(acc)                 # one tap's products, reused: no new array per tap
    w = L.weights.astype(kind)               # [C, kh, kw]
    for i in range(kh):
        for j in range(kw):
            np.multiply(xp[:, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :], w[:, i, j], out=tap)
            acc += tap
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding)


@_batched
def pwconv2d(x: np.ndarray, L: Layer) -> np.ndarray:
    oh, ow, oc = L.out_shape
    xi = x.reshape(len(x) * oh * ow, -1).astype(np.int32) - np.int32(L.in_zp)
    acc = _imatmul(xi, L.weights.T) + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(len(x), oh, ow, oc)


@_batched
def avgpool(x: np.ndarray, L: Layer) -> np.ndarray:
    """Each window of (H/oh) × (W/ow) pixels summed (the global pool when the output is 1 × 1)."""
    (h, w, c), (oh, ow, _) = L.in_shape, L.out_shape
    acc = (x.astype(np.int64) - L.in_zp).reshape(len(x), oh, h // oh, ow, w // ow, c).sum(axis=(2, 4))
    return requantize(acc, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding)


@_batched
def fc(x: np.ndarray, L: Layer) -> np.ndarray:
    xi = x.reshape(len(x), -1).astype(np.int32) - np.int32(L.in_zp)
    acc = _imatmul(xi, L.weights.T) + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max, L.rounding).reshape(len(x), *L.out_shape)


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


def _logadd(a: np.ndarray, b: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.maximum(a, b) + table[np.minimum(np.abs(a - b), CTC_TABLE - 1)]


def ctc_log_scores(z: np.ndarray, L: Layer) -> np.ndarray:
    """z [N, T, V + 1] int8 logits → [N] the best keyword sequence's trunc(log P / length), in units of 2^−CTC_BITS
    nats (the ctc op of hostside/graph.py, vectorised over N and the states)."""
    table = np.asarray(L.weights).reshape(-1)[:CTC_TABLE].astype(np.int64)      # the row's table (ctc_table())
    z = np.asarray(z, np.int64)
    r = ((z - z.max(axis=2, keepdims=True)) * np.int64(L.m2) + (np.int64(1) << (L.s2 - 1))) >> L.s2
    lse = r[:, :, 0]
    for v in range(1, r.shape[2]):
        lse = _logadd(lse, r[:, :, v], table)
    lp = r - lse[:, :, None]                                     # [N, T, V + 1]
    repeats = ctc_repeats(L)
    n, t = lp.shape[:2]
    best = np.full(n, np.iinfo(np.int64).min)
    for seq in ctc_sequences(L):
        ext, skip, back = (np.array(a) for a in ctc_states(seq))    # back: from the blank after it (pad_r)
        states = len(ext)
        emit = lp[:, :, ext]                                     # [N, T, S]
        alpha = np.full((n, states), CTC_NEG, np.int64)
        alpha[:, :2] = emit[:, 0, :2]
        for f in range(1, t):
            new = alpha.copy()
            new[:, 1:] = _logadd(new[:, 1:], alpha[:, :-1], table)
            two = _logadd(new[:, 2:], alpha[:, :-2], table)
            new[:, 2:] = np.where(skip[2:], two, new[:, 2:])
            if repeats:
                up = _logadd(new[:, :-1], alpha[:, 1:], table)
                new[:, :-1] = np.where(back[:-1], up, new[:, :-1])
            alpha = new + emit[:, f]
        log_p = _logadd(alpha[:, -1], alpha[:, -2], table)
        score = np.where(log_p < 0, -((-log_p) // len(seq)), log_p // len(seq))      # C's `/`: toward zero
        best = np.maximum(best, score)
    return best


def ctc(x: np.ndarray, L: Layer, other: np.ndarray | None = None) -> np.ndarray:
    """One input [T, 1, V + 1] (other: [1, 1, C2]) or a batch [N, T, 1, V + 1] (other [N, 1, 1, C2])."""
    h, w, v = L.in_shape
    n = x.size // (h * w * v)
    score = ctc_log_scores(x.reshape(n, h * w, v), L)
    wake = requantize(score, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding)
    y = np.concatenate([other.reshape(n, -1), wake[:, None]], axis=1)
    return y.reshape(L.out_shape) if x.ndim == 3 else y.reshape(n, *L.out_shape)


def ctc_stream(x: np.ndarray, L: Layer, other: np.ndarray, state: np.ndarray | None = None):
    """A ctc that reads a span (hostside/graph.py): consecutive windows of one stream, [N, T, 1, V + 1] (other
    [N, 1, 1, C2]), after the stream held in `state` (the board's bytes, ctc_state_bytes; None: a new stream).
    Returns (outputs [N, 1, 1, C2 + 1], the state after them)."""
    b, f, w = ctc_span(L)
    q = ctc_offset(L)                                           # blocks into a kept window its frames start
    k_ring, t = (b + q) * w, L.in_shape[0] * L.in_shape[1]
    v = L.in_shape[2]
    n = x.size // (t * v)
    z = np.asarray(x, np.int8).reshape(n, t, v)
    st = np.zeros(ctc_state_bytes(L), np.uint8) if state is None else np.array(state, np.uint8).reshape(-1)
    if st.size != ctc_state_bytes(L):
        raise ValueError(f"ctc state of {st.size} B for a layer that keeps {ctc_state_bytes(L)} B")
    c = int(st[:4].view("<u4")[0])
    ring = st[4:].view(np.int8).reshape(k_ring, f, v)
    kept = [ring[(c - m) % k_ring] for m in range(min(c, k_ring), 0, -1)] + list(z[:, q * f:(q + 1) * f])  # oldest first
    h = min(c, k_ring)
    have = np.clip((h + np.arange(n)) // w - q, 0, b)           # blocks window j can read
    score = np.zeros(n, np.int64)
    for a in np.unique(have):
        js = np.flatnonzero(have == a)
        spans = np.stack([np.concatenate([kept[h + j - (m + q) * w] for m in range(a, 0, -1)] + [z[j]]) for j in js])
        score[js] = ctc_log_scores(spans, L)
    for j in range(max(0, n - k_ring), n):                     # the last K windows' kept frames stay
        ring[(c + j) % k_ring] = z[j, q * f:(q + 1) * f]
    c += n
    if c >= 2 * k_ring:
        c = k_ring + (c - k_ring) % k_ring
    st[:4] = np.array([c], "<u4").view(np.uint8)
    wake = requantize(score, L.multiplier[0], L.shift[0], L.out_zp, L.act_min, L.act_max, L.rounding)
    y = np.concatenate([np.asarray(other).reshape(n, -1), wake[:, None]], axis=1)
    return y.reshape(n, *L.out_shape), st


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
           "meanpool": meanpool, "softmax": softmax, "maxpool": maxpool, "qadd": qadd, "ctc": ctc}


@_one_blas_thread
def run(graph: IntGraph, x: np.ndarray, dump: bool = False, state: dict | None = None):
    """x: int8 input of graph.input_shape. Returns the int8 output vector, or (output, [t0 … tL]) with dump.
    A streaming graph reads its stream layers' state from `state` (layer index → int8 rows; missing: the
    initial state) and writes the new state back into it; without `state` every call starts fresh."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.shape != tuple(graph.input_shape):
        raise ValueError(f"input must be int8 {graph.input_shape}, got {x.dtype} {x.shape}")
    tensors = [x]
    for i, L in enumerate(graph.layers):
        x = tensors[graph.input_of(i)]
        if ctc_state_bytes(L):
            y, st = ctc_stream(x, L, tensors[L.skip], None if state is None else state.get(i))
            if state is not None:
                state[i] = st
            tensors.append(y.reshape(L.out_shape))
        elif L.op in SKIP_OPS:
            tensors.append(KERNELS[L.op](x, L, tensors[L.skip] if L.skip >= 0 else None))
        elif L.op == "stream":
            y = stream(x, L, None if state is None else state.get(i))
            if state is not None:
                state[i] = y[y.shape[0] - (L.out_shape[0] - L.in_shape[0]):].copy()
            tensors.append(y)
        else:
            tensors.append(KERNELS[L.op](x, L))
    out = tensors[-1].reshape(-1)
    return (out, tensors) if dump else out


BATCH_OPS = ("conv2d", "dwconv2d", "pwconv2d", "avgpool", "fc", "ctc")    # kernels that take a batch too


CHUNK_ELEMENTS = 1 << 18      # run_batch's default chunk: inputs whose largest tensor holds about this many values


def batch_chunk(graph: IntGraph) -> int:
    """How many inputs run_batch takes through each layer at once by default: as many as keep the largest
    tensor near CHUNK_ELEMENTS values (2 MiB of int64: the layer's integers stay in cache between one elementwise
    step and the next), 1 to 256. Measured on the demo's DS-CNN (16,000 values a tensor; benchmarks/reference): 16
    inputs a chunk took 1.49 ms an input, 512 took 2.89 ms."""
    biggest = max([int(np.prod(graph.input_shape))] + [int(np.prod(L.out_shape)) for L in graph.layers])
    return int(np.clip(CHUNK_ELEMENTS // max(1, biggest), 1, 256))


@_one_blas_thread
def run_batch(graph: IntGraph, xs: np.ndarray, chunk: int | None = None, state: dict | None = None) -> np.ndarray:
    """Outputs [N, out] of independent inputs [N, H, W, C] (a graph that keeps state: each its own new stream), or,
    with `state` (as run's), consecutive inputs of one stream, its state carried through them and written back.
    A graph of BATCH_OPS only (the DS-CNNs, with or without the phoneme branch, its ctc with or without a span) runs
    `chunk` inputs through each layer at once (the same kernels, the same integers; None: batch_chunk's); the others
    run input by input."""
    xs = np.asarray(xs)
    if not all(L.op in BATCH_OPS for L in graph.layers) or len(xs) == 0:
        return np.stack([run(graph, x, state=state) for x in xs]) if len(xs) else np.zeros((0, 0), np.int8)
    if xs.dtype != np.int8 or xs.shape[1:] != tuple(graph.input_shape):
        raise ValueError(f"inputs must be int8 [N, {graph.input_shape}], got {xs.dtype} {xs.shape}")
    chunk = chunk or batch_chunk(graph)
    out = []
    for k in range(0, len(xs), chunk):
        tensors = [xs[k: k + chunk]]
        for i, L in enumerate(graph.layers):
            x = tensors[graph.input_of(i)]
            if ctc_state_bytes(L) and state is not None:
                y, state[i] = ctc_stream(x, L, tensors[L.skip], state.get(i))
                tensors.append(y)
                continue
            tensors.append(KERNELS[L.op](x, L, tensors[L.skip]) if L.op in SKIP_OPS else KERNELS[L.op](x, L))
        out.append(tensors[-1].reshape(len(tensors[0]), -1))
    return np.concatenate(out)


class Streamer:
    """A streaming graph stepped one input at a time, its state carried between steps (as the board does)."""

    def __init__(self, graph: IntGraph):
        self.graph = graph
        self.state: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self.state.clear()

    def step(self, x: np.ndarray, dump: bool = False):
        return run(self.graph, x, dump=dump, state=self.state)
