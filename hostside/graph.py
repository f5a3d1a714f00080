"""The integer graph: what the board computes, as plain data (numpy, no torch).

Conventions (the specification every kernel must match bit for bit):
- tensors are int8, layout HWC (row-major, channels last); a batch is one input;
- activations: asymmetric per tensor, real = scale · (q − zero_point);
- weights: int8 symmetric per output channel (zero point 0); bias int32 in units of in_scale·w_scale;
- accumulators: int32 of (x − in_zp)·w (padding contributes 0, i.e. pads with in_zp);
- requantisation (one rule everywhere): y = ((acc · M + 2^(s−1)) >> s) + out_zp, computed in int64 with an
  arithmetic right shift (round half up), then clamped to [act_min, act_max]. M is an int32 in
  [2^30, 2^31) and 1 ≤ s ≤ 62 (M = 0 encodes a scale too small to represent);
- ReLU is the clamp act_min = out_zp; no activation is act_min = −128;
- weight layouts, contiguous per output channel: conv2d [Cout][kh][kw][Cin], dwconv2d [C][kh][kw],
  pwconv2d and fc [Cout][Cin];
- weights are int8 (wbits 8, values in [−127, 127]) or int4 (wbits 4, values in [−7, 7], packed two per
  byte in flash: hostside/plan/planner.py); int4 activations are int8 tensors clamped to [−8, 7].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

OPS = {"conv2d": 1, "dwconv2d": 2, "pwconv2d": 3, "avgpool": 4, "fc": 5}
OP_NAMES = {v: k for k, v in OPS.items()}
WEIGHTED_OPS = ("conv2d", "dwconv2d", "pwconv2d", "fc")


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real > 0 → (M, s) with real ≈ M · 2^−s, M in [2^30, 2^31), 1 ≤ s ≤ 62."""
    if real <= 0 or not math.isfinite(real):
        return 0, 1
    m, e = math.frexp(real)          # real = m · 2^e, m in [0.5, 1)
    M = int(round(m * (1 << 31)))
    if M == 1 << 31:
        M //= 2
        e += 1
    s = 31 - e
    if s > 62:
        return 0, 1
    if s < 1:
        raise ValueError(f"requantisation scale {real} is too large (>= 2^30)")
    return M, s


def requantize(acc: np.ndarray, M: np.ndarray, s: np.ndarray, zp: int, lo: int, hi: int) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.int64)
    M = np.asarray(M, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    y = (acc * M + (np.int64(1) << (s - 1))) >> s
    return np.clip(y + zp, lo, hi).astype(np.int8)


@dataclass
class Layer:
    name: str
    op: str
    in_shape: tuple[int, int, int]           # (H, W, C)
    out_shape: tuple[int, int, int]
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int
    in_scale: float
    out_scale: float
    multiplier: np.ndarray                   # int32 [Cout] (avgpool: [1])
    shift: np.ndarray                        # int32 [Cout] (avgpool: [1])
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)   # top, left, bottom, right
    weights: np.ndarray | None = None        # int8, layout per module docstring
    bias: np.ndarray | None = None           # int32 [Cout]
    wbits: int = 8

    @property
    def out_channels(self) -> int:
        return self.out_shape[2]

    @property
    def weights_per_channel(self) -> int:
        """K: weights of one output channel."""
        if self.weights is None:
            return 0
        return int(np.prod(self.weights.shape[1:]))

    @property
    def macs(self) -> int:
        oh, ow, oc = self.out_shape
        if self.op == "avgpool":
            return self.in_shape[0] * self.in_shape[1] * self.in_shape[2]
        return oh * ow * oc * self.weights_per_channel


@dataclass
class IntGraph:
    input_shape: tuple[int, int, int]
    input_scale: float
    input_zp: int
    layers: list[Layer]
    classes: tuple[str, ...] = ()
    frontend: dict = field(default_factory=dict)

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    def quantize_input(self, features: np.ndarray) -> np.ndarray:
        """float features [T, F] → int8 HWC [T, F, 1]: round half away from zero, clamp."""
        q = features / self.input_scale
        q = np.sign(q) * np.floor(np.abs(q) + 0.5) + self.input_zp
        return np.clip(q, -128, 127).astype(np.int8).reshape(self.input_shape)

    def tensor_shapes(self) -> list[tuple[int, int, int]]:
        """Shapes of t0 (input) … tL (output): op i reads t_i and writes t_{i+1}."""
        return [self.input_shape] + [l.out_shape for l in self.layers]

    @property
    def total_macs(self) -> int:
        return sum(l.macs for l in self.layers)
