"""Quantisation-aware training and integer lowering for the keyword-spotting transformer
(hostside/models/transformer.py), in the integer-only style of I-BERT.

Like QuantNet (quant.py), the forward pass computes the integer model the board runs — the ops and constants
of hostside/graph.py, written here a second time in torch (int64, or float64 where every value is an exact
integer) — while gradients flow through a float surrogate by straight-through estimators. Each module keeps
the integers it used in `export` (plain Python/numpy), and `to_int_graph` turns those into graph layers; the
numpy reference (an independent implementation) then has to reproduce this model's outputs bit for bit.

`exact=False` (set_exact) swaps the integer softmax, layer norm, GELU and requantisation for their float
counterparts on the same quantised tensors: the conventional "fake-quant" model. Comparing the two measures
what the integer-only arithmetic costs.

Weights: symmetric per output channel (LSQ step, int8 or int4); activations: asymmetric per tensor with a
learned step and zero point (LSQ+); layer norm's γ is int8 per channel; the embedding and classifier stay int8.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..graph import (ADD_BITS, EXP_B, EXP_BITS, EXP_C, EXP_LN2, INV_BITS, LN_BITS, MAX_TOKENS, PROB_BITS,
                     IntGraph, Layer, quantize_multiplier)
from ..reference.ibert import i_gelu
from .quant import INT32_MAX, INT32_MIN, ActQuant, WeightQuant, multipliers, requant_exact, round_half_away_ste, \
    round_ste, ste


def gelu_table(s_in: float, zp_in: int, s_out: float, zp_out: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    """int8[256]: entry x + 128 is the integer GELU of the int8 input x. The input is first refined by r bits
    (q·2^r at scale s_in/2^r ≤ 1/256) so the I-BERT polynomial sees a fine grid; then the requant rule,
    evaluated with Python integers so no intermediate can overflow. Export-time only: the board looks it up."""
    r = max(0, math.ceil(math.log2(max(s_in, 1e-30) * 256)))
    q = (np.arange(-128, 128, dtype=np.int64) - zp_in) << r
    qg, sg = i_gelu(q, s_in / 2**r)
    if sg < 0:
        qg, sg = -qg, -sg
    M, S = quantize_multiplier(sg / s_out)
    out = [min(hi, max(lo, ((int(v) * M + (1 << (S - 1))) >> S) + zp_out)) for v in qg]
    return np.array(out, dtype=np.int8)


def int_exp_t(r: torch.Tensor) -> torch.Tensor:
    z = torch.div(-r, EXP_LN2, rounding_mode="floor")
    p = r + z * EXP_LN2
    poly = (p + EXP_B) ** 2 + EXP_C
    return torch.where(z > 30, torch.zeros_like(poly), poly >> z.clamp(max=30))


def isqrt_t(v: torch.Tensor) -> torch.Tensor:
    """floor(√v) for int64 v ≥ 0: a float estimate corrected to the exact integer."""
    s = torch.sqrt(v.double()).floor().to(torch.int64)
    for _ in range(2):
        s = torch.where(s * s > v, s - 1, s)
        s = torch.where((s + 1) * (s + 1) <= v, s + 1, s)
    return s


class QOp(nn.Module):
    """An op with a learned output quantiser. Subclasses call finish(); export holds what the board needs."""

    exact = True
    calibrating = False

    def __init__(self, abits: int = 8):
        super().__init__()
        self.aq = ActQuant(abits)
        self.export: dict = {}

    def out_params(self, real: torch.Tensor):
        if self.calibrating:
            self.aq.init_mse(real.detach())
        return self.aq.params(int(real[0].numel()))

    def finish(self, y_int: torch.Tensor, y_float: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """y_float: the output in integer units before rounding (the gradient path)."""
        y_float = torch.clamp(y_float, lo, hi)
        if self.exact:
            return ste(y_int, y_float)
        return ste(torch.clamp(torch.round(y_float.detach()), lo, hi), y_float)

    def bounds(self, zp_out, relu: bool = False) -> tuple[int, int]:
        return (int(zp_out.detach()) if relu else self.aq.qmin), self.aq.qmax


class QLinear(QOp):
    """Per-token linear layer (pwconv2d on (T, 1, C); fc on a vector)."""

    def __init__(self, lin: nn.Linear, wbits: int, abits: int):
        super().__init__(abits)
        self.weight = nn.Parameter(lin.weight.detach().double().clone())
        self.bias = nn.Parameter(lin.bias.detach().double().clone())
        self.wq = WeightQuant(wbits, self.weight.shape[0])
        self.wq.init_mse(self.weight.data)

    def forward(self, q, s_in, zp_in):
        wq, sw = self.wq(self.weight)
        bq = torch.clamp(round_ste(self.bias / (s_in * sw)), INT32_MIN, INT32_MAX)
        acc = (q - zp_in) @ wq.T + bq
        s_out, zp_out = self.out_params(acc * s_in * sw)
        real = s_in * sw / s_out
        lo, hi = self.bounds(zp_out)
        M, sh = multipliers(real)
        y = self.finish(requant_exact(acc, M, sh, int(zp_out.detach()), lo, hi), acc * real + zp_out, lo, hi)
        self.export = dict(weights=wq.detach().round().to(torch.int64).numpy().astype(np.int8),
                           bias=bq.detach().round().to(torch.int64).numpy().astype(np.int32),
                           multiplier=M.numpy().astype(np.int32), shift=sh.numpy().astype(np.int32),
                           wbits=self.wq.bits)
        return y, s_out, zp_out


class QLayerNorm(QOp):
    def __init__(self, ln: nn.LayerNorm, abits: int):
        super().__init__(abits)
        self.gamma = nn.Parameter(ln.weight.detach().double().clone().reshape(-1, 1))
        self.beta = nn.Parameter(ln.bias.detach().double().clone())
        self.wq = WeightQuant(8, self.gamma.shape[0])
        self.wq.init_mse(self.gamma.data)

    def forward(self, q, s_in, zp_in):
        C = q.shape[-1]
        xi = q.detach().round().to(torch.int64)
        s1 = xi.sum(-1, keepdim=True)
        s2 = (xi * xi).sum(-1, keepdim=True)
        sd = isqrt_t(C * s2 - s1 * s1)
        num = (xi * C - s1) * (1 << LN_BITS)
        n_int = torch.where(sd > 0, torch.div(num, sd.clamp(min=1), rounding_mode="trunc"), torch.zeros_like(num))
        n_f = nn.functional.layer_norm(q - zp_in, (C,), eps=1e-6) * (1 << LN_BITS)
        gq, sg = self.wq(self.gamma)
        gq = gq[:, 0]
        unit = 2.0 ** -LN_BITS
        bq = torch.clamp(round_ste(self.beta / (unit * sg)), INT32_MIN, INT32_MAX)
        acc_i = n_int.double() * gq.detach() + bq.detach()
        acc_f = n_f * gq + bq
        s_out, zp_out = self.out_params(acc_f * unit * sg)
        real = unit * sg / s_out
        lo, hi = self.bounds(zp_out)
        M, sh = multipliers(real)
        y = self.finish(requant_exact(acc_i, M, sh, int(zp_out.detach()), lo, hi), acc_f * real + zp_out, lo, hi)
        self.export = dict(weights=gq.detach().round().to(torch.int64).numpy().astype(np.int8).reshape(-1, 1),
                           bias=bq.detach().round().to(torch.int64).numpy().astype(np.int32),
                           multiplier=M.numpy().astype(np.int32), shift=sh.numpy().astype(np.int32), wbits=8)
        return y, s_out, zp_out


class QAttention(QOp):
    def __init__(self, heads: int, abits: int):
        super().__init__(abits)
        self.heads = heads

    def forward(self, q, s_in, zp_in):
        N, T, C3 = q.shape
        D = C3 // 3
        H, hd = self.heads, D // self.heads
        x = (q - zp_in).reshape(N, T, 3, H, hd).permute(2, 0, 3, 1, 4)       # [3, N, H, T, hd]
        Q, K, V = x[0], x[1], x[2]
        logits = Q @ K.transpose(-1, -2)                                       # exact integers in float64
        att_real = float(s_in.detach()) ** 2 / math.sqrt(hd)
        m2, s2 = quantize_multiplier(att_real * 2**EXP_BITS)
        L = logits.detach().round().to(torch.int64)
        r = ((L - L.amax(-1, keepdim=True)) * m2 + (1 << (s2 - 1))) >> s2
        e = int_exp_t(r)
        inv = torch.div(torch.full_like(e[..., :1], 1 << INV_BITS), e.sum(-1, keepdim=True), rounding_mode="floor")
        prob = (e * inv) >> (INV_BITS - PROB_BITS)
        ctx_i = (prob.double() @ V.detach()).transpose(1, 2).reshape(N, T, D)
        p_f = torch.softmax(logits * att_real, dim=-1) * (1 << PROB_BITS)
        ctx_f = (p_f @ V).transpose(1, 2).reshape(N, T, D)
        unit = s_in * 2.0 ** -PROB_BITS
        s_out, zp_out = self.out_params(ctx_f * unit)
        real = unit / s_out
        lo, hi = self.bounds(zp_out)
        M, sh = quantize_multiplier(float(real.detach()))
        y = self.finish(requant_exact(ctx_i, torch.tensor(M), torch.tensor(sh), int(zp_out.detach()), lo, hi),
                        ctx_f * real + zp_out, lo, hi)
        self.export = dict(multiplier=np.array([M], np.int32), shift=np.array([sh], np.int32), m2=m2, s2=s2,
                           heads=H)
        return y, s_out, zp_out


class QGelu(QOp):
    def forward(self, q, s_in, zp_in):
        real_f = nn.functional.gelu((q - zp_in) * s_in)
        s_out, zp_out = self.out_params(real_f)
        lo, hi = self.bounds(zp_out)
        table = gelu_table(float(s_in.detach()), int(zp_in.detach()), float(s_out.detach()),
                           int(zp_out.detach()), lo, hi)
        idx = (q.detach().round().to(torch.int64) + 128).clamp(0, 255)
        y_i = torch.from_numpy(table.astype(np.float64))[idx]
        y = self.finish(y_i, real_f / s_out + zp_out, lo, hi)
        self.export = dict(weights=table.reshape(1, 256).copy(), wbits=8)
        return y, s_out, zp_out


class QAdd(QOp):
    """(a − za)·sa + (b − zb)·sb, requantised (graph module docstring: add)."""

    def forward(self, a, sa, za, b, sb, zb):
        fa, fb = float(sa.detach()), float(sb.detach())
        smax = max(fa, fb)
        ra, rb = round(2**ADD_BITS * fa / smax), round(2**ADD_BITS * fb / smax)
        acc_i = (a.detach() - za.detach()) * ra + (b.detach() - zb.detach()) * rb
        real_f = (a - za) * sa + (b - zb) * sb
        s_out, zp_out = self.out_params(real_f)
        lo, hi = self.bounds(zp_out)
        M, sh = quantize_multiplier(smax / (2**ADD_BITS * float(s_out.detach())))
        y = self.finish(requant_exact(acc_i, torch.tensor(M), torch.tensor(sh), int(zp_out.detach()), lo, hi),
                        real_f / s_out + zp_out, lo, hi)
        self.export = dict(multiplier=np.array([M], np.int32), shift=np.array([sh], np.int32), ra=ra, rb=rb,
                           in2_zp=int(zb.detach()), in2_scale=fb)
        return y, s_out, zp_out


def quantize_const(p: torch.Tensor):
    """A constant (the positional embedding): asymmetric int8 over its own range, STE to the parameter."""
    lo, hi = min(float(p.detach().min()), 0.0), max(float(p.detach().max()), 0.0)
    s = max(hi - lo, 1e-8) / 255.0
    zp = int(np.clip(np.round(-128 - lo / s), -128, 127))
    q = torch.clamp(round_ste(p / s) + zp, -128, 127)
    return q, torch.tensor(s, dtype=torch.float64), torch.tensor(float(zp), dtype=torch.float64)


class QMean(nn.Module):
    """Mean over tokens: Σ (q − zp) requantised by 1/T, keeping the input's scale and zero point (avgpool).
    Integer in both modes: a mean is linear, and the fake-quant model would round it the same way."""

    def forward(self, q, s_in, zp_in):
        T = q.shape[1]
        acc = (q - zp_in).sum(dim=1)
        M, sh = quantize_multiplier(1.0 / T)
        y_i = requant_exact(acc, torch.tensor(M), torch.tensor(sh), int(zp_in.detach()), -128, 127)
        y_f = torch.clamp(acc / T + zp_in, -128, 127)
        return ste(y_i, y_f), s_in, zp_in


class QBlock(nn.Module):
    def __init__(self, blk, wbits: int, abits: int):
        super().__init__()
        self.ln1 = QLayerNorm(blk.norm1, abits)
        self.qkv = QLinear(blk.attn.qkv, wbits, abits)
        self.attn = QAttention(blk.attn.heads, abits)
        self.proj = QLinear(blk.attn.proj, wbits, abits)
        self.add1 = QAdd(abits)
        self.ln2 = QLayerNorm(blk.norm2, abits)
        self.fc1 = QLinear(blk.fc1, wbits, abits)
        self.gelu = QGelu(abits)
        self.fc2 = QLinear(blk.fc2, wbits, abits)
        self.add2 = QAdd(abits)

    def forward(self, x):
        q, s, z = x
        h = self.proj(*self.attn(*self.qkv(*self.ln1(q, s, z))))
        x1 = self.add1(*h, q, s, z)
        h = self.fc2(*self.gelu(*self.fc1(*self.ln2(*x1))))
        return self.add2(*h, *x1)


class QuantTransformer(nn.Module):
    """forward(features [N, T, F]) → dequantised logits; forward_int → integer logits, scale, zero point."""

    kind = "quanttransformer"

    def __init__(self, model, wbits: int = 8, abits: int = 8):
        super().__init__()
        cfg = model.cfg
        self.cfg = cfg
        self.input_shape = tuple(cfg.input_shape)
        if self.input_shape[0] > MAX_TOKENS:
            raise ValueError(f"{self.input_shape[0]} tokens: the integer softmax handles at most {MAX_TOKENS}")
        self.in_q = ActQuant(8)
        self.embed = QLinear(model.embed, 8, 8)
        self.pos = nn.Parameter(model.pos.detach().double().clone())
        self.add_pos = QAdd(8)
        self.blocks = nn.ModuleList(QBlock(b, wbits, abits) for b in model.blocks)
        self.norm = QLayerNorm(model.norm, 8)
        self.mean = QMean()
        self.head = QLinear(model.head, 8, 8)

    def set_exact(self, exact: bool) -> "QuantTransformer":
        for m in self.modules():
            if isinstance(m, QOp):
                m.exact = exact
        return self

    def quantize_input(self, x: torch.Tensor):
        s, z = self.in_q.params(int(np.prod(self.input_shape)))
        q = torch.clamp(round_half_away_ste(x.double() / s) + z, -128, 127)
        return q, s, z

    def forward_int(self, x: torch.Tensor):
        q, s, z = self.quantize_input(x)
        h = self.embed(q, s, z)
        pq, ps, pz = quantize_const(self.pos)
        self._pos_export = (pq.detach().round().to(torch.int64).numpy()[0].astype(np.int8), float(ps), int(pz))
        h = self.add_pos(*h, pq, ps, pz)
        for b in self.blocks:
            h = b(h)
        q, s, z = self.head(*self.mean(*self.norm(*h)))
        return q, s, z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, s, z = self.forward_int(x)
        return (q - z) * s

    @torch.no_grad()
    def calibrate(self, calib: np.ndarray) -> None:
        """Initialise every activation quantiser in order, each from the real values it sees with the
        quantisers before it already in place (so upstream quantisation error is accounted for)."""
        x = torch.from_numpy(np.asarray(calib, dtype=np.float32))
        self.in_q.init_mse(x)
        QOp.calibrating = True
        try:
            self.forward_int(x.double())
        finally:
            QOp.calibrating = False

    @torch.no_grad()
    def to_int_graph(self, classes=(), frontend=None) -> IntGraph:
        """Run one probe input, then lower with exactly the integers each module used."""
        T, F = self.input_shape
        cfg = self.cfg
        D, Mlp = cfg.dim, cfg.mlp_dim
        probe = torch.zeros(1, T, F, dtype=torch.float64)
        was = self.training
        self.eval()
        self.forward_int(probe)
        self.train(was)
        _, s_in, z_in = self.quantize_input(probe)
        layers: list[Layer] = []
        cur = {"s": float(s_in), "z": int(z_in)}

        def act(m):
            s, z = m.aq.params(1)
            return float(s), int(z)

        def emit(name, op, in_shape, out_shape, mod=None, out=None, **kw):
            s_out, z_out = out if out is not None else act(mod)
            ex = dict(mod.export) if mod is not None else {}
            ex.update(kw)
            qmin, qmax = (mod.aq.qmin, mod.aq.qmax) if mod is not None and hasattr(mod, "aq") else (-128, 127)
            layers.append(Layer(name=f"l{len(layers)}_{name}", op=op, in_shape=in_shape, out_shape=out_shape,
                                in_zp=cur["z"], out_zp=z_out, act_min=qmin, act_max=qmax,
                                in_scale=cur["s"], out_scale=s_out,
                                multiplier=ex.pop("multiplier", np.array([0], np.int32)),
                                shift=ex.pop("shift", np.array([1], np.int32)), **ex))
            cur["s"], cur["z"] = s_out, z_out
            return len(layers)                     # index of the tensor it wrote

        emit("reshape", "reshape", (T, F, 1), (T, 1, F), out=(cur["s"], cur["z"]))
        emit("embed", "pwconv2d", (T, 1, F), (T, 1, D), self.embed)
        pq, ps, pz = self._pos_export
        x_idx = emit("pos", "add", (T, 1, D), (T, 1, D), self.add_pos, weights=pq.reshape(T, D).copy())
        assert layers[-1].in2_zp == pz and abs(layers[-1].in2_scale - ps) < 1e-12
        for bi, b in enumerate(self.blocks):
            x_s, x_z = cur["s"], cur["z"]
            emit(f"b{bi}_ln1", "layernorm", (T, 1, D), (T, 1, D), b.ln1)
            emit(f"b{bi}_qkv", "pwconv2d", (T, 1, D), (T, 1, 3 * D), b.qkv)
            emit(f"b{bi}_attn", "attention", (T, 1, 3 * D), (T, 1, D), b.attn)
            emit(f"b{bi}_proj", "pwconv2d", (T, 1, D), (T, 1, D), b.proj)
            x1 = emit(f"b{bi}_add1", "add", (T, 1, D), (T, 1, D), b.add1, skip=x_idx)
            assert layers[-1].in2_zp == x_z and abs(layers[-1].in2_scale - x_s) < 1e-12 * max(1.0, x_s)
            x1_s, x1_z = cur["s"], cur["z"]
            emit(f"b{bi}_ln2", "layernorm", (T, 1, D), (T, 1, D), b.ln2)
            emit(f"b{bi}_fc1", "pwconv2d", (T, 1, D), (T, 1, Mlp), b.fc1)
            emit(f"b{bi}_gelu", "gelu", (T, 1, Mlp), (T, 1, Mlp), b.gelu)
            emit(f"b{bi}_fc2", "pwconv2d", (T, 1, Mlp), (T, 1, D), b.fc2)
            x_idx = emit(f"b{bi}_add2", "add", (T, 1, D), (T, 1, D), b.add2, skip=x1)
            assert layers[-1].in2_zp == x1_z and abs(layers[-1].in2_scale - x1_s) < 1e-12 * max(1.0, x1_s)
        emit("norm", "layernorm", (T, 1, D), (T, 1, D), self.norm)
        M, sh = quantize_multiplier(1.0 / T)
        emit("mean", "avgpool", (T, 1, D), (1, 1, D), out=(cur["s"], cur["z"]),
             multiplier=np.array([M], np.int32), shift=np.array([sh], np.int32), kernel=(T, 1))
        emit("head", "fc", (1, 1, D), (1, 1, self.head.weight.shape[0]), self.head)
        return IntGraph(input_shape=(T, F, 1), input_scale=float(s_in), input_zp=int(z_in), layers=layers,
                        classes=tuple(classes), frontend=dict(frontend or {}))


def build_quant_transformer(model, calib: np.ndarray | None = None, wbits: int = 8, abits: int = 8) -> QuantTransformer:
    net = QuantTransformer(model, wbits, abits)
    if calib is not None:
        net.calibrate(calib)
    return net
