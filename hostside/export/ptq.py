"""int8 post-training quantisation of a DS-CNN: fold BatchNorm, calibrate activation ranges on a
calibration set, quantise weights per output channel (symmetric) and activations per tensor
(asymmetric), and lower to an IntGraph (hostside/graph.py states the arithmetic)."""
from __future__ import annotations

import numpy as np
import torch

from ..models.ops import float_ops, run_float_ops
from ..graph import CTC_BITS, IntGraph, Layer, ctc_table, quantize_multiplier
from ..models.dscnn import DSCNN


def _act_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 scale/zero point covering [min(lo,0), max(hi,0)]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return float(scale), zp


def _quant_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: w[c] ≈ s[c]·q[c], q in [-127, 127]."""
    flat = w.reshape(w.shape[0], -1)
    s = np.abs(flat).max(axis=1) / 127.0
    s = np.where(s > 0, s, 1e-8)
    q = np.clip(np.round(flat / s[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), s


def _requant_params(in_scale: float, w_scale: np.ndarray, out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(in_scale * float(ws) / out_scale) for ws in np.atleast_1d(w_scale)]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


WAKE_SCORE_ZP = 127          # the ctc output's zero point: log score 0 (score 1) at 127, 2^-CTC_BITS nats a step


def quantize_ptq(model: DSCNN, calib: np.ndarray, classes: tuple[str, ...] = (),
                 frontend: dict | None = None, phonemes: dict | None = None) -> IntGraph:
    """calib: float features [N, T, F] (e.g. 200 training utterances). phonemes: {"head": the checkpoint's
    PhonemeHead, "sequences": the wake word's phoneme index sequences} adds the phoneme branch after the classifier
    (phoneme_branch): the graph's output is then the classifier's logits and the wake word's phoneme score."""
    model = model.eval()
    stages = float_ops(model)
    with torch.no_grad():
        acts = run_float_ops(stages, torch.from_numpy(np.asarray(calib, dtype=np.float32)))
    in_scale, in_zp = _act_qparams(float(calib.min()), float(calib.max()))
    T, F = calib.shape[1:]
    shape = (T, F, 1)
    layers: list[Layer] = []
    scale, zp = in_scale, in_zp
    for idx, (st, a) in enumerate(zip(stages, acts)):
        a = a.numpy()
        out_shape = (a.shape[2], a.shape[3], a.shape[1]) if a.ndim == 4 else (1, 1, a.shape[1])
        if st["op"] == "avgpool":
            # keep the input's quantisation: the mean of ReLU outputs stays in their range
            n = shape[0] * shape[1]
            M, s = quantize_multiplier(1.0 / n)
            layers.append(Layer(name=f"l{idx}_avgpool", op="avgpool", in_shape=shape, out_shape=out_shape,
                                in_zp=zp, out_zp=zp, act_min=-128, act_max=127, in_scale=scale, out_scale=scale,
                                multiplier=np.array([M], np.int32), shift=np.array([s], np.int32),
                                kernel=(shape[0], shape[1])))
            shape = out_shape
            continue
        out_scale, out_zp = _act_qparams(float(a.min()), float(a.max()))
        w = st["w"]
        if st["op"] == "conv2d":
            w = w.transpose(0, 2, 3, 1)                      # [Cout, kh, kw, Cin]
        elif st["op"] == "dwconv2d":
            w = w[:, 0]                                     # [C, kh, kw]
        elif st["op"] == "pwconv2d":
            w = w[:, :, 0, 0]                               # [Cout, Cin]
        qw, ws = _quant_weights(w)
        bias = np.round(st["b"] / (scale * ws)).astype(np.int64)
        bias = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)
        M, s = _requant_params(scale, ws, out_scale)
        kernel = tuple(qw.shape[1:3]) if st["op"] in ("conv2d", "dwconv2d") else (1, 1)
        hi = 127 if st.get("relu_cap") is None else min(127, out_zp + int(np.floor(st["relu_cap"] / out_scale + 0.5)))
        layers.append(Layer(name=f"l{idx}_{st['op']}", op=st["op"], in_shape=shape, out_shape=out_shape,
                            in_zp=zp, out_zp=out_zp, act_min=out_zp if st.get("relu") else -128, act_max=hi,
                            in_scale=scale, out_scale=out_scale, multiplier=M, shift=s, kernel=kernel,
                            stride=tuple(st.get("stride", (1, 1))), pad=tuple(st.get("pad", (0, 0, 0, 0))),
                            weights=qw, bias=bias, wbits=8))
        shape, scale, zp = out_shape, out_scale, out_zp
    if phonemes is not None:
        layers += phoneme_branch(layers, model, calib, phonemes["head"], phonemes["sequences"], phonemes.get("span"),
                                 phonemes.get("repeats", False))
    return IntGraph(input_shape=(T, F, 1), input_scale=in_scale, input_zp=in_zp, layers=layers,
                    classes=tuple(classes), frontend=dict(frontend or {}))


def phoneme_branch(layers: list[Layer], model: DSCNN, calib: np.ndarray, head, sequences, span=None,
                   repeats: bool = False) -> list[Layer]:
    """The layers after the classifier that compute hostside/keyword.py's `phonemes` wake score on the board:
    the trunk's maps (the global pool's input, read again: src) averaged over frequency (an average pool per time
    frame, the maps' quantisation kept), the phoneme head (a pointwise conv per frame, calibrated on `calib`), and the
    ctc op (hostside/graph.py), which copies the classifier's logits and appends the score (log domain, units of
    2^-CTC_BITS nats, zero point WAKE_SCORE_ZP). model: the float DS-CNN, or the QuantNet whose integer layers
    `layers` are (its trunk's fake-quant maps calibrate the head alike); the head is int8 either way. span: None (the
    ctc scores its window alone) or keyword.PhonemeScorer.span_fields, (input frames, head frames) → (blocks, windows
    per block, head frames per block[, Q: blocks into a kept window where a block is read]): the ctc then reads that
    span (hostside/graph.py) and keeps state. repeats: each phoneme may be several spikes with blanks between
    (keyword.repeat_log_prob; the ctc's pad_r = 1, format 7)."""
    pool = next(i for i, L in enumerate(layers) if L.op == "avgpool")
    maps_in = layers[pool]
    (t, f, c), logits = maps_in.in_shape, len(layers)
    M, s = quantize_multiplier(1.0 / f)
    framepool = Layer(name="ph_framepool", op="avgpool", in_shape=(t, f, c), out_shape=(t, 1, c),
                      in_zp=maps_in.in_zp, out_zp=maps_in.in_zp, act_min=-128, act_max=127, in_scale=maps_in.in_scale,
                      out_scale=maps_in.in_scale, multiplier=np.array([M], np.int32), shift=np.array([s], np.int32),
                      kernel=(1, f), src=pool)
    head = head.eval()
    with torch.no_grad():
        maps = model.eval().trunk(torch.from_numpy(np.asarray(calib, dtype=np.float32)))
        z = head.logits(maps).numpy()
    w = head.proj.weight.detach().numpy()
    b = head.proj.bias.detach().numpy()
    out_scale, out_zp = _act_qparams(float(z.min()), float(z.max()))
    qw, ws = _quant_weights(w)
    bias = np.clip(np.round(b / (maps_in.in_scale * ws)), -(2**31), 2**31 - 1).astype(np.int32)
    Mh, sh = _requant_params(maps_in.in_scale, ws, out_scale)
    v = w.shape[0]
    proj = Layer(name="ph_head", op="pwconv2d", in_shape=(t, 1, c), out_shape=(t, 1, v), in_zp=maps_in.in_zp,
                 out_zp=out_zp, act_min=-128, act_max=127, in_scale=maps_in.in_scale, out_scale=out_scale,
                 multiplier=Mh, shift=sh, weights=qw, bias=bias)
    cls = layers[-1]
    row = list(ctc_table())
    for q in sequences:
        if not 1 <= len(q) <= 32 or not all(0 < p < v for p in q):
            raise ValueError(f"keyword sequence {q}: 1–32 phoneme indices in [1, {v - 1}]")
        row += [len(q), *q]
    row += [0] * (1 + (-len(row) - 1) % 4)          # the list's end, and whole words (the reader sizes the row by its tile)
    m2, s2 = quantize_multiplier(out_scale * 2.0**CTC_BITS)
    Mc, sc = quantize_multiplier(1.0)                  # the score's units are the output's: 2^-CTC_BITS nats
    blocks, every, per, *offset = span(layers[0].in_shape[0], t) if span is not None else (0, 1, 1)
    q = int(offset[0]) if offset and blocks else 0
    ctc = Layer(name="ph_ctc", op="ctc", in_shape=(t, 1, v), out_shape=(1, 1, cls.out_shape[2] + 1), in_zp=out_zp,
                out_zp=WAKE_SCORE_ZP, act_min=-128, act_max=127, in_scale=out_scale, out_scale=2.0**-CTC_BITS,
                multiplier=np.array([Mc], np.int32), shift=np.array([sc], np.int32),
                weights=np.array([row], np.int8), skip=logits, in2_zp=cls.out_zp, in2_scale=cls.out_scale,
                m2=m2, s2=s2, kernel=(per, 1), stride=(every, 1), pad=(blocks * per, 0, q * per, int(bool(repeats))))
    return [framepool, proj, ctc]
