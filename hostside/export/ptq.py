"""int8 post-training quantisation of a DS-CNN: fold BatchNorm, calibrate activation ranges on a
calibration set, quantise weights per output channel (symmetric) and activations per tensor
(asymmetric), and lower to an IntGraph (hostside/graph.py states the arithmetic)."""
from __future__ import annotations

import numpy as np
import torch

from ..models.ops import float_ops, run_float_ops
from ..graph import IntGraph, Layer, quantize_multiplier
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


def quantize_ptq(model: DSCNN, calib: np.ndarray, classes: tuple[str, ...] = (),
                 frontend: dict | None = None) -> IntGraph:
    """calib: float features [N, T, F] (e.g. 200 training utterances)."""
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
    return IntGraph(input_shape=(T, F, 1), input_scale=in_scale, input_zp=in_zp, layers=layers,
                    classes=tuple(classes), frontend=dict(frontend or {}))
