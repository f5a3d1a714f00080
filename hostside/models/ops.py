"""A DS-CNN as a list of float operations with BatchNorm folded in: the common ground of post-training
quantisation, quantisation-aware training and the integer export.

Each op is a dict: op ∈ {conv2d, dwconv2d, pwconv2d, avgpool, fc}, w (float64, torch layout), b (float64),
stride, pad (top, left, bottom, right), relu (bool), relu_cap (6.0 for ReLU6, else None)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .dscnn import DSCNN


def fold_bn(w: torch.Tensor, b: torch.Tensor | None, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of a conv followed by bn (eval mode), float64 numpy."""
    w = w.detach().double()
    b = b.detach().double() if b is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    g = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    w = w * g.reshape(-1, *([1] * (w.dim() - 1)))
    b = (b - bn.running_mean.detach().double()) * g + bn.bias.detach().double()
    return w.numpy(), b.numpy()


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


def float_ops(model: DSCNN) -> list[dict]:
    if not isinstance(model, DSCNN):
        from ..errors import PqlrError
        raise PqlrError(f"this path takes DS-CNN models, not {type(model).__name__} (transformers lower "
                        f"through hostside/compress/qtransformer.py: `pqlr export`)")
    if model.cfg.input_norm != "none":
        from ..errors import PqlrError
        raise PqlrError(f"input_norm={model.cfg.input_norm!r} has no integer kernel yet: this model is an fp32 "
                        f"experiment (benchmarks/quality/attempts.md §28); train without --set input_norm to export it")
    model = model.eval()
    cap = 6.0 if getattr(model.cfg, "activation", "relu") == "relu6" else None
    ops = []
    w, b = fold_bn(model.stem.weight, model.stem.bias, model.stem_bn)
    pl, pr, pt, pb = model.stem_pad
    ops.append(dict(op="conv2d", w=w, b=b, stride=tuple(model.stem.stride), pad=(pt, pl, pb, pr), relu=True,
                    relu_cap=cap))
    mods = list(model.body)
    for i in range(0, len(mods), 6):
        dw, dw_bn, _, pw, pw_bn, _ = mods[i: i + 6]
        w, b = fold_bn(dw.weight, dw.bias, dw_bn)
        ph, pw_ = dw.padding
        ops.append(dict(op="dwconv2d", w=w, b=b, stride=tuple(dw.stride), pad=(ph, pw_, ph, pw_), relu=True,
                        relu_cap=cap))
        if isinstance(pw, nn.Sequential):          # low-rank: C→r (linear, no bias), r→C (+BN, ReLU)
            first, second = pw
            ops.append(dict(op="pwconv2d", w=first.weight.detach().double().numpy(), b=_zeros(first.out_channels),
                            stride=(1, 1), pad=(0, 0, 0, 0), relu=False))
            pw = second
        w, b = fold_bn(pw.weight, pw.bias, pw_bn)
        ops.append(dict(op="pwconv2d", w=w, b=b, stride=(1, 1), pad=(0, 0, 0, 0), relu=True, relu_cap=cap))
    ops.append(dict(op="avgpool", relu=False))
    fcs = list(model.fc) if isinstance(model.fc, nn.Sequential) else [model.fc]
    for fc in fcs:
        ops.append(dict(op="fc", w=fc.weight.detach().double().numpy(),
                        b=fc.bias.detach().double().numpy() if fc.bias is not None else _zeros(fc.out_features),
                        relu=False))
    return ops


def run_float_ops(ops: list[dict], x: torch.Tensor) -> list[torch.Tensor]:
    """x [N, T, F] → each op's output (NCHW, float64)."""
    outs = []
    h = x.double().unsqueeze(1)
    for st in ops:
        if st["op"] in ("conv2d", "dwconv2d", "pwconv2d"):
            t, l, b, r = st["pad"]
            h = nn.functional.pad(h, (l, r, t, b))
            groups = h.shape[1] if st["op"] == "dwconv2d" else 1
            h = nn.functional.conv2d(h, torch.from_numpy(st["w"]), torch.from_numpy(st["b"]), stride=st["stride"],
                                     groups=groups)
        elif st["op"] == "avgpool":
            h = h.mean(dim=(2, 3), keepdim=True)
        elif st["op"] == "fc":
            h = h.flatten(1) @ torch.from_numpy(st["w"]).T + torch.from_numpy(st["b"])
        if st.get("relu"):
            h = torch.relu(h)
        if st.get("relu_cap") is not None:
            h = h.clamp(max=st["relu_cap"])
        outs.append(h)
    return outs
