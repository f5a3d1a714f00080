"""LSQ+ quantisation-aware training in plain torch, with a forward pass that *is* the integer model.

Weights: symmetric per output channel, q = clamp(round(w/s), −Q, Q), Q = 2^(b−1) − 1 (b ∈ {4, 8}).
Activations: asymmetric per tensor with a learned offset (LSQ+): q = clamp(round(x/s) + z, qmin, qmax),
qmin = −2^(b−1), qmax = 2^(b−1) − 1, the zero point z learned in integer units and rounded in the forward.
Step sizes are learned with LSQ's gradient scale g = 1/√(N·Qp) and initialised from calibration data by
minimising the quantisation MSE. BatchNorm is folded into the convolution before quantisation.

The forward pass computes exactly what the integer graph computes (hostside/graph.py): integer-valued
float64 tensors, exact convolutions, bias rounded to int32, and the requantisation y = ((acc·M + 2^(s−1)) >> s)
+ zp done in int64 with the same M and s the export writes. Gradients pass by straight-through
estimators (their values never leak into the forward: x + (f − f.detach()) is exactly x in floating point).
So the exported integer model's outputs equal this model's, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..graph import IntGraph, Layer, quantize_multiplier

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def ste(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """value in the forward, identity gradient to x (value must not need grad)."""
    return value.detach() + (x - x.detach())


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return ste(torch.round(x), x)


def round_half_away_ste(x: torch.Tensor) -> torch.Tensor:
    return ste(torch.sign(x) * torch.floor(x.abs() + 0.5), x)


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """x in the forward, gradient scaled by g."""
    return x.detach() + (x * g - (x * g).detach())


def multipliers(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [quantize_multiplier(float(r)) for r in real.detach().reshape(-1).tolist()]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.int64).reshape(real.shape),
            torch.tensor([p[1] for p in pairs], dtype=torch.int64).reshape(real.shape))


def requant_exact(acc: torch.Tensor, M: torch.Tensor, sh: torch.Tensor, zp: int, lo: int, hi: int) -> torch.Tensor:
    a = torch.round(acc.detach()).to(torch.int64)
    y = ((a * M + (torch.ones_like(sh) << (sh - 1))) >> sh) + zp
    return y.clamp(lo, hi).to(torch.float64)


class WeightQuant(nn.Module):
    def __init__(self, bits: int, n_channels: int):
        super().__init__()
        self.bits = bits
        self.Q = 2 ** (bits - 1) - 1
        self.step = nn.Parameter(torch.ones(n_channels, dtype=torch.float64))

    @torch.no_grad()
    def init_mse(self, w: torch.Tensor) -> None:
        """Per channel: the step, among 80 candidates up to max|w|/Q, with the least quantisation MSE."""
        flat = w.reshape(w.shape[0], -1).double()
        mx = flat.abs().max(dim=1).values.clamp_min(1e-8) / self.Q
        best = torch.full_like(mx, float("inf"))
        for a in torch.linspace(0.3, 1.0, 80, dtype=torch.float64):
            s = mx * a
            err = ((torch.clamp(torch.round(flat / s[:, None]), -self.Q, self.Q) * s[:, None] - flat) ** 2).sum(1)
            better = err < best
            best = torch.where(better, err, best)
            self.step[better] = s[better]

    def scale(self, per_channel: int) -> torch.Tensor:
        return grad_scale(self.step, 1.0 / math.sqrt(per_channel * self.Q)).abs().clamp_min(1e-12)

    def forward(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(integer weights with STE gradient, per-channel step)."""
        s = self.scale(w[0].numel())
        v = w / s.reshape(-1, *([1] * (w.dim() - 1)))
        return round_ste(torch.clamp(v, -self.Q, self.Q)), s

    def fake(self, w: torch.Tensor) -> torch.Tensor:
        q, s = self(w)
        return q * s.reshape(-1, *([1] * (w.dim() - 1)))


class ActQuant(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.qmin, self.qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.step = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
        self.offset = nn.Parameter(torch.tensor(0.0, dtype=torch.float64))   # zero point, integer units

    @torch.no_grad()
    def init_mse(self, x: torch.Tensor) -> None:
        x = x.double().reshape(-1)
        if x.numel() > 200_000:
            x = x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))[:200_000]]
        lo0, hi0 = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        best = float("inf")
        for a in np.linspace(0.3, 1.0, 36):
            lo, hi = lo0 * a, hi0 * a
            if hi - lo < 1e-8:
                continue
            s = (hi - lo) / (self.qmax - self.qmin)
            z = float(np.clip(np.round(self.qmin - lo / s), self.qmin, self.qmax))
            q = torch.clamp(torch.round(x / s) + z, self.qmin, self.qmax)
            err = float((((q - z) * s - x) ** 2).mean())
            if err < best:
                best = err
                self.step.fill_(s)
                self.offset.fill_(z)

    def params(self, n_per_sample: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = 1.0 / math.sqrt(max(1, n_per_sample) * self.qmax)
        s = grad_scale(self.step, g).abs().clamp_min(1e-12)
        z = round_ste(torch.clamp(grad_scale(self.offset, g), self.qmin, self.qmax))
        return s, z

    def fake(self, x: torch.Tensor) -> torch.Tensor:
        s, z = self.params(x[0].numel())
        q = torch.clamp(round_ste(x / s) + z, self.qmin, self.qmax)
        return (q - z) * s


class QLayer(nn.Module):
    """A folded conv / depthwise / pointwise / fully-connected layer with LSQ+ weights and output."""

    def __init__(self, op: dict, wbits: int, abits: int):
        super().__init__()
        self.op, self.relu = op["op"], bool(op.get("relu"))
        self.cap = op.get("relu_cap")                  # ReLU6: also clamp at the integer nearest 6
        self.stride = tuple(op.get("stride", (1, 1)))
        self.pad = tuple(op.get("pad", (0, 0, 0, 0)))
        self.weight = nn.Parameter(torch.from_numpy(np.array(op["w"], dtype=np.float64)))
        self.bias = nn.Parameter(torch.from_numpy(np.array(op["b"], dtype=np.float64)))
        self.wq = WeightQuant(wbits, self.weight.shape[0])
        self.aq = ActQuant(abits)
        self.wq.init_mse(self.weight.data)

    def int_params(self, s_in: torch.Tensor, out_numel: int):
        """Integer weights and bias, scales, output zero point and the real requantisation scale."""
        wq, sw = self.wq(self.weight)
        bq = torch.clamp(round_ste(self.bias / (s_in * sw)), INT32_MIN, INT32_MAX)
        s_out, zp_out = self.aq.params(out_numel)
        return wq, sw, bq, s_out, zp_out, s_in * sw / s_out

    def accumulate(self, x: torch.Tensor, wq: torch.Tensor) -> torch.Tensor:
        """Σ (x − zp)·w, exact: integer-valued float64 (weights in torch layout)."""
        if self.op == "fc":
            return x.flatten(1) @ wq.T
        t, l, b, r = self.pad
        groups = x.shape[1] if self.op == "dwconv2d" else 1
        return nn.functional.conv2d(nn.functional.pad(x, (l, r, t, b)), wq, stride=self.stride, groups=groups)

    def act_range(self, zp_out, s_out) -> tuple[int, int]:
        """[act_min, act_max] of the output: ReLU clamps at the zero point, ReLU6 also at zp + round(6/s)."""
        lo = int(zp_out.detach()) if self.relu else self.aq.qmin
        hi = self.aq.qmax
        if self.cap is not None:
            hi = min(hi, int(zp_out.detach()) + int(math.floor(self.cap / float(s_out.detach()) + 0.5)))
        return lo, max(lo, hi)

    def out_numel(self, x: torch.Tensor) -> int:
        with torch.no_grad():
            return int(self.accumulate(x[:1].detach(), torch.zeros_like(self.weight))[0].numel())

    def forward(self, q: torch.Tensor, s_in: torch.Tensor, zp_in: torch.Tensor):
        x = q - zp_in
        wq, sw, bq, s_out, zp_out, real = self.int_params(s_in, self.out_numel(x))
        acc = self.accumulate(x, wq)
        shape = (1, -1, 1, 1) if acc.dim() == 4 else (1, -1)
        acc = acc + bq.reshape(shape)
        lo, hi = self.act_range(zp_out, s_out)
        y_f = torch.clamp(acc * real.reshape(shape) + zp_out, lo, hi)
        M, sh = multipliers(real)
        y_i = requant_exact(acc, M.reshape(shape), sh.reshape(shape), int(zp_out.detach()), lo, hi)
        return ste(y_i, y_f), s_out, zp_out


class QAvgPool(nn.Module):
    """Sum of (q − zp) over the plane, requantised by 1/(H·W); keeps the input's scale and zero point."""

    def forward(self, q, s_in, zp_in):
        n = q.shape[2] * q.shape[3]
        acc = (q - zp_in).sum(dim=(2, 3), keepdim=True)
        M, sh = quantize_multiplier(1.0 / n)
        y_f = acc / n + zp_in
        y_i = requant_exact(acc, torch.tensor(M), torch.tensor(sh), int(zp_in.detach()), -128, 127)
        return ste(y_i, y_f), s_in, zp_in


class QuantNet(nn.Module):
    """The quantised network. forward(features [N, T, F]) → dequantised logits; forward_int → int logits."""

    kind = "quantnet"

    def __init__(self, ops: list[dict], wbits: list[int], abits: list[int], input_shape: tuple[int, int]):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.in_q = ActQuant(8)
        layers, wi = [], 0
        for op in ops:
            if op["op"] == "avgpool":
                layers.append(QAvgPool())
            else:
                layers.append(QLayer(op, wbits[wi], abits[wi]))
                wi += 1
        self.layers = nn.ModuleList(layers)

    def weighted(self) -> list[QLayer]:
        return [L for L in self.layers if isinstance(L, QLayer)]

    def quantize_input(self, x: torch.Tensor):
        s, z = self.in_q.params(int(np.prod(self.input_shape)))
        q = torch.clamp(round_half_away_ste(x.double() / s) + z, -128, 127)
        return q.unsqueeze(1), s, z

    def forward_int(self, x: torch.Tensor):
        q, s, z = self.quantize_input(x)
        for L in self.layers:
            q, s, z = L(q, s, z)
        return q.flatten(1), s, z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, s, z = self.forward_int(x)
        return (q - z) * s

    def _pool(self) -> int:
        """The index of the global average pool: the layers before it are the trunk, those from it the head."""
        k = next((i for i, L in enumerate(self.layers) if isinstance(L, QAvgPool)), None)
        if not k or not isinstance(self.layers[k - 1], QLayer):
            raise ValueError("this QuantNet has no convolutional trunk before a global average pool")
        return k

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's maps, dequantised ((q − zp)·s, float64, [N, C, T', F']): what training's phoneme head reads
        (hostside/train.py), as from a DS-CNN's trunk. trunk then head is forward, bit for bit."""
        q, s, z = self.quantize_input(x)
        for L in self.layers[: self._pool()]:
            q, s, z = L(q, s, z)
        return (q - z) * s

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """The pool and the classifier on trunk(x): the integers are recovered exactly (round(maps/s + zp), the
        last trunk layer's s and zp; their gradients cancel, so training sees forward's) → dequantised logits."""
        k = self._pool()
        aq = self.layers[k - 1].aq
        s, z = aq.params(int(maps[0].numel()))
        q = torch.clamp(round_ste(maps / s + z), aq.qmin, aq.qmax)
        for L in self.layers[k:]:
            q, s, z = L(q, s, z)
        q = q.flatten(1)
        return (q - z) * s

    @torch.no_grad()
    def calibrate(self, ops: list[dict], calib: np.ndarray) -> None:
        """Initialise every activation step/offset by minimising the quantisation MSE on calibration data."""
        from ..models.ops import run_float_ops
        x = torch.from_numpy(np.asarray(calib, dtype=np.float32))
        self.in_q.init_mse(x)
        outs = run_float_ops(ops, x)
        for L, out in zip(self.layers, outs):
            if isinstance(L, QLayer):
                L.aq.init_mse(out)

    @torch.no_grad()
    def to_int_graph(self, classes=(), frontend=None, phonemes: dict | None = None,
                     calib: np.ndarray | None = None) -> IntGraph:
        """Lower to the integer graph, with exactly the integers and multipliers the forward pass uses. phonemes
        (as export/ptq.py quantize_ptq's, with calib: float features): the phoneme branch after the classifier,
        its int8 head calibrated on this network's trunk."""
        T, F = self.input_shape
        probe = torch.zeros(1, T, F, dtype=torch.float64)
        q, s, z = self.quantize_input(probe)
        in_scale, in_zp = float(s), int(z)
        shape = (T, F, 1)
        layers: list[Layer] = []
        for i, L in enumerate(self.layers):
            q_next, s_next, z_next = L(q, s, z)
            out_shape = (q_next.shape[2], q_next.shape[3], q_next.shape[1]) if q_next.dim() == 4 else (1, 1, q_next.shape[1])
            if isinstance(L, QAvgPool):
                M, sh = quantize_multiplier(1.0 / (shape[0] * shape[1]))
                layers.append(Layer(name=f"l{i}_avgpool", op="avgpool", in_shape=shape, out_shape=out_shape,
                                    in_zp=int(z), out_zp=int(z), act_min=-128, act_max=127, in_scale=float(s),
                                    out_scale=float(s), multiplier=np.array([M], np.int32),
                                    shift=np.array([sh], np.int32), kernel=(shape[0], shape[1])))
            else:
                wq, sw, bq, s_out, zp_out, real = L.int_params(s, L.out_numel(q - z))
                M, sh = multipliers(real)
                w = wq.round().to(torch.int64).numpy().astype(np.int8)
                if L.op == "conv2d":
                    w = w.transpose(0, 2, 3, 1)              # [Cout, kh, kw, Cin]
                elif L.op == "dwconv2d":
                    w = w[:, 0]                              # [C, kh, kw]
                elif L.op == "pwconv2d":
                    w = w[:, :, 0, 0]                        # [Cout, Cin]
                kernel = tuple(w.shape[1:3]) if L.op in ("conv2d", "dwconv2d") else (1, 1)
                lo, hi = L.act_range(zp_out, s_out)
                layers.append(Layer(name=f"l{i}_{L.op}", op=L.op, in_shape=shape, out_shape=out_shape, in_zp=int(z),
                                    out_zp=int(zp_out), act_min=lo, act_max=hi, in_scale=float(s),
                                    out_scale=float(s_out), multiplier=M.numpy().astype(np.int32),
                                    shift=sh.numpy().astype(np.int32), kernel=kernel, stride=L.stride, pad=L.pad,
                                    weights=np.ascontiguousarray(w),
                                    bias=bq.round().to(torch.int64).numpy().astype(np.int32), wbits=L.wq.bits))
            q, s, z, shape = q_next, s_next, z_next, out_shape
        if phonemes is not None:
            from ..export.ptq import phoneme_branch
            layers += phoneme_branch(layers, self, calib, phonemes["head"], phonemes["sequences"],
                                     phonemes.get("span"), phonemes.get("repeats", False))
        return IntGraph(input_shape=(T, F, 1), input_scale=in_scale, input_zp=in_zp, layers=layers,
                        classes=tuple(classes), frontend=dict(frontend or {}))


def build_quantnet(ops: list[dict], input_shape, wbits: int = 8, abits: int = 8, first_last_bits: int = 8,
                   calib: np.ndarray | None = None, dw_bits: int | None = None) -> QuantNet:
    """Bit widths: `wbits`/`abits` for every weighted layer but the first and last (`first_last_bits`); dw_bits:
    the depthwise layers' weights instead of `wbits` (None: `wbits`; attempts.md §51, not a recipe field)."""
    weighted = [o for o in ops if o["op"] != "avgpool"]
    n = len(weighted)
    inner = [dw_bits if dw_bits is not None and o["op"] == "dwconv2d" else wbits for o in weighted]
    wb = [first_last_bits if i in (0, n - 1) else inner[i] for i in range(n)]
    ab = [first_last_bits if i in (0, n - 1) else abits for i in range(n)]
    net = QuantNet(ops, wb, ab, input_shape)
    if calib is not None:
        net.calibrate(ops, calib)
    return net
