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

Graph: tensor t_0 is the input and t_{i+1} the output of layer i; layer i reads t_i, and an `add` may read
a second, earlier tensor t_skip (a residual connection). Ops without spatial structure treat an HWC tensor as
H·W pixels (tokens) of C channels. The transformer ops, integer only in the style of I-BERT (Kim et al. 2021):
- reshape: the same bytes seen with another shape (HWC row-major), e.g. (T, F, 1) → (T, 1, F).
- add: acc = (a − in_zp)·ra + (b − in2_zp)·rb, then the requant rule with the layer's M, s; b is t_skip, or,
  with skip = −1, a constant int8 tensor stored in the layer's tiles (one row of C values per pixel).
  ra, rb = round(2^ADD_BITS · s_a / max(s_a, s_b)), round(2^ADD_BITS · s_b / max(s_a, s_b)).
- layernorm over the C channels of each pixel: S1 = Σx, S2 = Σx², V = C·S2 − S1² (int64), sd = ⌊√V⌋,
  n_c = trunc((x_c·C − S1)·2^LN_BITS / sd) (0 when sd = 0; trunc rounds toward zero, as C's `/`), which is
  (x − mean)/std in units of 2^−LN_BITS; acc_c = n_c·γ_c + β_c (γ int8 per channel, weights [C][1]), requant.
- attention over the pixels (tokens) of a (T, 1, 3D) input holding q | k | v (D = heads·hd channels each,
  head h in channels h·hd … of each): per head and query i, logits L_j = Σ_d (q_id − zp)(k_jd − zp) (int32);
  r_j = ((L_j − max_j L_j)·m2 + 2^(s2−1)) >> s2 brings them to units of 2^−EXP_BITS; the I-BERT integer exp:
  z = ⌊−r/EXP_LN2⌋, p = r + z·EXP_LN2, e = ((p + EXP_B)² + EXP_C) >> z (0 when z > 30); S = Σ_j e_j,
  inv = ⌊2^INV_BITS / S⌋, prob_j = (e_j·inv) >> (INV_BITS − PROB_BITS) (a probability in units of
  2^−PROB_BITS); ctx_id = Σ_j prob_j·(v_jd − zp); output = requant(ctx) with the layer's M, s. T ≤ MAX_TOKENS.
- gelu: y = table[x + 128]; the 256 entries are the I-BERT integer GELU (hostside/reference/ibert.py) of
  every int8 input followed by the requant rule, computed at export time (weights [1][256]).
- lut: the same table lookup for any int8 → int8 function (an imported model's LOGISTIC: hostside/importer).
- avgpool: the sum of each window of (H/oh) × (W/ow) pixels (oh × ow the output's pixels: 1 × 1 is the global pool;
  the phoneme branch's (T', F') → (T', 1) is one window per time frame), Σ (x − in_zp) requantised with the layer's
  M, s per output pixel and channel (the kernel fields are not read).
- meanpool: TFLite's AVERAGE_POOL_2D over the whole map, input and output sharing one quantisation: per channel
  q = Σ x (raw int8) divided by the pixel count, rounded half away from zero, clamped (hostside/reference/tflite_ops).
- softmax: TFLite's int8 SOFTMAX over the channels of each pixel (gemmlowp fixed point; tflite_ops.softmax):
  M = multiplier[0] and s = shift[0] scale the difference to the row maximum into Q5.26 (s is a left shift
  here), m2 holds diff_min; output scale 1/256, zero point −128.
- maxpool: TFLite's MAX_POOL_2D (kernel, stride, padding as a conv's; padded taps are skipped), then the clamp;
  input and output share one quantisation.
- qadd: TFLite's int8 ADD of t_i and t_skip (or constant rows, as add): each operand (x − zp)·2^20 is scaled by
  double_round(·, ra, m2) and double_round(·, rb, s2), the sum by double_round(·, M, s), + out_zp, clamped.

Branches: a layer reads t_i unless its `src` names an earlier tensor (src ≥ 0): the wake word's phoneme branch reads
the trunk's maps again after the classifier has pooled them (an avgpool per time frame, a pointwise head, ctc). A
layer that reads t_src never runs in place.
- ctc: the wake word's phonemes in order, scored on the phoneme head's per-frame logits (T, 1, V + 1; blank 0) in a
  fixed-point log domain (units of 2^−CTC_BITS nats), as hostside/keyword.py's `phonemes` score does in float:
  per frame, r_v = requant(x_v − max_v x, m2, s2) (no clamp) and lse = logadd(… logadd(r_0, r_1) …, r_V) in
  channel order, lp_v = r_v − lse; logadd(a, b) = max(a, b) + table[min(|a − b|, CTC_TABLE − 1)], table[d] =
  round(2^CTC_BITS · ln(1 + e^(−d/2^CTC_BITS))) (ctc_table()). CTC's forward pass over the blank-interleaved states
  of each keyword sequence (α from CTC_NEG, the two first states entered at frame 0; a state takes α of itself,
  the one before, and the one two before when it is a phoneme unlike that one's, all logadd-ed in that order, + its
  lp; with pad_r = 1 (format 7, `pqlr export --phoneme-repeats yes`) a phoneme state also takes, logadd-ed last,
  the previous frame's α of the blank after it, unless the next phoneme is the same one: each phoneme may be said
  as several spikes with blanks between, hostside/keyword.py repeat_log_prob; ctc_states), log P =
  logadd(α_last, α_last−1), score = trunc(log P / len) (C's `/`), the best over the sequences;
  output channel C2 (C2 = the second operand's channels) = requant(score, M, s) with out_zp and the clamp; channels
  0 … C2−1 copy t_skip (the classifier's logits, quantisation in2_scale/in2_zp) unchanged. The layer's one row of
  weights is the table followed by each sequence as [length, phoneme indices …] (int8), then a 0 that ends the
  list and zeros to a whole number of 4-byte words.
  A ctc may read a span longer than its window (format 5; hostside/keyword.py PhonemeScorer's span): kh = f head
  frames per block, sh = w windows per block (a block is w window strides, whose start lies f head frames earlier),
  pad_t = B·f frames read before the window (B blocks; pad_t 0: the window alone), pad_b = Q·f (format 6): each
  block is read from the f frames that start Q·f frames into a window Q·w windows older than the block's own
  (Q = 0: a window's first f frames; the protocol's Q puts them at the window's centre, whose frames the trunk
  computed with context on both sides: attempts.md §47). Such a ctc keeps state between inferences
  (ctc_state_bytes): a u32 count c of windows seen (0 at a reset, which begins a new stream; it counts on to 2K − 1
  and then wraps to K, K = (B + Q)·w), then a ring of the last K windows' frames Q·f … Q·f + f − 1, K × f × (V + 1)
  int8, the window n windows ago in slot (c − n) mod K. The window after min(c, K) earlier ones reads
  have = min(max(min(c, K) div w − Q, 0), B) blocks: those frames of the windows (have + Q)·w, …, (2 + Q)·w,
  (1 + Q)·w windows ago, in that order, then its own T frames; then its frames Q·f … go to slot c mod K and c counts
  on.

Streaming (imported streaming models, e.g. microWakeWord): a `stream` layer holds S = out_h − in_h rows of
state (S·W pixels of C channels) that persist between inferences. Its output is state ‖ input along H
(S + in_h rows); after it, the state becomes the output's last S rows. Its initial state is a constant stored
as the layer's tile rows (one row of C values per pixel). Input and state share one quantisation.

Double rounding (IntGraph.rounding = "double", for models imported from TFLite, whose default build rounds
twice): y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc·2^max(0, 31−s), M), max(0, s−31)), gemmlowp's
rule (`double_round` below); the other steps (zero point, clamp) are the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

OPS = {"conv2d": 1, "dwconv2d": 2, "pwconv2d": 3, "avgpool": 4, "fc": 5,
       "add": 6, "layernorm": 7, "attention": 8, "gelu": 9, "reshape": 10, "stream": 11, "lut": 12,
       "meanpool": 13, "softmax": 14, "maxpool": 15, "qadd": 16, "ctc": 17}
ADD_OPS = ("add", "qadd")                                     # ops with a second operand (t_skip or constant rows)
SKIP_OPS = ADD_OPS + ("ctc",)                                 # ops that may read a second tensor t_skip
OP_NAMES = {v: k for k, v in OPS.items()}
WEIGHTED_OPS = ("conv2d", "dwconv2d", "pwconv2d", "fc")       # accumulate Σ (x − in_zp)·w per output channel
PER_CHANNEL_OPS = WEIGHTED_OPS + ("layernorm",)               # per-channel bias, M, s in their tiles
SCALAR_REQUANT_OPS = ("avgpool", "add", "attention", "ctc")   # one M, s in the layer entry
SCALAR_PARAM_OPS = SCALAR_REQUANT_OPS + ("softmax", "qadd")           # ops whose layer entry carries M, s

# integer constants of the transformer ops (see the module docstring)
ADD_BITS = 14
LN_BITS = 7
EXP_BITS = 10
EXP_LN2 = math.floor(math.log(2) * 2**EXP_BITS)                        # 709
EXP_B = math.floor(1.353 * 2**EXP_BITS)                                # 1385 (I-BERT: exp(p) ≈ 0.3585(p + 1.353)² + 0.344)
EXP_C = math.floor(0.344 / (0.3585 * 2.0**-(2 * EXP_BITS)))            # 1006164
PROB_BITS = 12
INV_BITS = 46
MAX_TOKENS = 512                                                        # keeps Σ e within int32
CTC_BITS = 6                                                            # the ctc op's log domain: units of 2^-6 nats
CTC_NEG = -(1 << 28)                                                    # log 0 there (far below any path, no overflow)
CTC_MAX_STATES = 65                                                     # 2·32 + 1: keyword sequences of ≤ 32 phonemes
CTC_MAX_FRAMES = 1024


def ctc_table(bits: int = CTC_BITS) -> np.ndarray:
    """round(2^bits · ln(1 + e^(−d/2^bits))) for d = 0, 1, … up to the last non-zero entry (int8): the ctc op's
    logadd correction (its length is CTC_TABLE)."""
    out = []
    while True:
        v = int(round(2.0**bits * math.log1p(math.exp(-len(out) / 2.0**bits))))
        if v == 0:
            return np.array(out + [0], dtype=np.int8)
        out.append(v)


CTC_TABLE = len(ctc_table())                                            # 312 entries at 2^-6 (the last is 0)


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


ROUNDINGS = ("single", "double")


def srdhm(a, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul of int32 values: (a·b + nudge) / 2^31, C's division toward
    zero, the one overflowing case saturated."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    num = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    hi = np.where(num >= 0, num >> 31, -((-num) >> 31))
    return np.where((a == -2**31) & (b == -2**31), 2**31 - 1, hi)


def rdbpot(x, e) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero (0 ≤ e ≤ 31)."""
    x = np.asarray(x, np.int64)
    mask = (np.int64(1) << np.asarray(e, np.int64)) - 1
    return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))


def double_round(acc: np.ndarray, M: np.ndarray, s: np.ndarray) -> np.ndarray:
    """TFLite's default MultiplyByQuantizedMultiplier (gemmlowp): SaturatingRoundingDoublingHighMul(acc·2^left, M)
    then RoundingDivideByPOT(·, right), with left = max(0, 31 − s) and right = max(0, s − 31). acc is int32."""
    acc = np.asarray(acc, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    x = acc << np.maximum(0, 31 - s)
    x = ((x + 2**31) % 2**32) - 2**31                       # C's int32 wrap (TFLite's x * (1 << left))
    return rdbpot(srdhm(x, M), np.maximum(0, s - 31))


def requantize(acc: np.ndarray, M: np.ndarray, s: np.ndarray, zp: int, lo: int, hi: int,
               rounding: str = "single") -> np.ndarray:
    M = np.asarray(M, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    if rounding == "double":
        y = double_round(np.asarray(acc, dtype=np.int64), M, s)
    else:                                   # (acc·M + 2^(s−1)) >> s, in place on one copy: the same integers, less memory
        y = np.array(acc, dtype=np.int64)
        np.multiply(y, M, out=y)
        y += np.int64(1) << (s - 1)
        np.right_shift(y, s, out=y)
    y += zp
    np.maximum(y, lo, out=y)
    np.minimum(y, hi, out=y)
    return y.astype(np.int8)


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
    skip: int = -1                           # add: tensor index of the second operand (−1: constant in tiles)
    in2_zp: int = 0                          # add: the second operand's zero point and scale
    in2_scale: float = 0.0
    ra: int = 0                              # add: operand multipliers
    rb: int = 0
    heads: int = 0                           # attention
    m2: int = 0                              # attention: logits → exp domain multiplier and shift
    s2: int = 0
    rounding: str = "single"                 # the model's requantisation rule (ROUNDINGS); IntGraph.rounding
    src: int = -1                            # the tensor it reads: −1 the previous one (t_i), else an earlier t_src

    @property
    def out_channels(self) -> int:
        return self.out_shape[2]

    @property
    def rows(self) -> int:
        """Rows of the parameter table that tiles cut: output channels (weighted ops, layer norm), pixels
        (an add's constant operand) or 1 (a gelu table)."""
        return self.out_channels if self.weights is None else int(self.weights.shape[0])

    @property
    def weights_per_channel(self) -> int:
        """K: weights of one output channel."""
        if self.weights is None:
            return 0
        return int(np.prod(self.weights.shape[1:]))

    @property
    def macs(self) -> int:
        oh, ow, oc = self.out_shape
        if self.op == "ctc":                 # per frame: V+1 logadds; per sequence: ≤ 3 per state (4: repeats)
            t, v = self.in_shape[0] * self.in_shape[1] + self.pad[0], self.in_shape[2]
            return t * v + (3 + ctc_repeats(self)) * t * sum(2 * len(q) + 1 for q in ctc_sequences(self))
        if self.op in ("avgpool", "add", "gelu", "layernorm", "lut", "meanpool", "softmax", "qadd"):
            return self.in_shape[0] * self.in_shape[1] * self.in_shape[2]
        if self.op == "maxpool":
            return oh * ow * oc * self.kernel[0] * self.kernel[1]
        if self.op in ("reshape", "stream"):
            return 0
        if self.op == "attention":
            t = self.in_shape[0] * self.in_shape[1]
            return 2 * t * t * oc
        return oh * ow * oc * self.weights_per_channel


@dataclass
class IntGraph:
    input_shape: tuple[int, int, int]
    input_scale: float
    input_zp: int
    layers: list[Layer]
    classes: tuple[str, ...] = ()
    frontend: dict = field(default_factory=dict)
    rounding: str = "single"                 # "double": TFLite's default (gemmlowp) rule; "mixed": per layer
    output: dict = field(default_factory=dict)   # imported models: how the source model's output relates to t_L

    def __post_init__(self):
        if self.rounding not in ROUNDINGS + ("mixed",):
            raise ValueError(f"rounding must be one of {ROUNDINGS} or 'mixed', not {self.rounding!r}")
        if self.rounding != "mixed":
            for L in self.layers:
                L.rounding = self.rounding

    @property
    def streaming(self) -> bool:
        """True when the graph keeps state between inferences (stream layers, a ctc that reads a span)."""
        return any(L.op == "stream" or ctc_state_bytes(L) for L in self.layers)

    @property
    def frame_streaming(self) -> bool:
        """True when the graph takes feature frames and keeps the rows before them (stream layers: imported
        streaming models), rather than whole windows."""
        return any(L.op == "stream" for L in self.layers)

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    @property
    def class_outputs(self) -> int:
        """How many of the output's values are class logits: all, or all but the last after a ctc (the wake score)."""
        return self.output_layer.out_channels - (self.output_layer.op == "ctc")

    def wake_scores(self, out: np.ndarray) -> np.ndarray:
        """int8 outputs [N, out] of a graph ending in a ctc → the wake score exp(log score per phoneme), [N]."""
        L = self.output_layer
        return np.exp((np.asarray(out[:, self.class_outputs], np.float64) - L.out_zp) * L.out_scale)

    def quantize_input(self, features: np.ndarray) -> np.ndarray:
        """float features [T, F] → int8 HWC [T, F, 1]: round half away from zero, clamp. Computed in float64
        whatever the features' dtype (as the QAT models do): float32 division rounds differently near ties."""
        q = np.asarray(features, dtype=np.float64) / self.input_scale
        q = np.sign(q) * np.floor(np.abs(q) + 0.5) + self.input_zp
        return np.clip(q, -128, 127).astype(np.int8).reshape(self.input_shape)

    def tensor_shapes(self) -> list[tuple[int, int, int]]:
        """Shapes of t0 (input) … tL (output): op i reads t_i and writes t_{i+1}."""
        return [self.input_shape] + [l.out_shape for l in self.layers]

    def persistent(self) -> set[int]:
        """Tensors that live across inferences: the outputs of stream layers (their rows are the state)."""
        return {i + 1 for i, L in enumerate(self.layers) if L.op == "stream"}

    def input_of(self, i: int) -> int:
        """The tensor layer i reads: t_i, or t_src for a branch."""
        src = self.layers[i].src
        return i if src < 0 else src

    def last_use(self) -> list[int]:
        """For each tensor t_k, the last op that reads it (t_L, the output, is read after the last op)."""
        n = len(self.layers)
        last = [k for k in range(n)] + [n]
        for i, L in enumerate(self.layers):
            if L.op in SKIP_OPS and L.skip >= 0:
                last[L.skip] = max(last[L.skip], i)
            if L.src >= 0:
                last[L.src] = max(last[L.src], i)
        return last

    @property
    def total_macs(self) -> int:
        return sum(l.macs for l in self.layers)


def ctc_span(layer: Layer) -> tuple[int, int, int]:
    """(B blocks read before the window, f head frames per block, w windows per block) of a ctc layer; B = 0: it
    scores its window alone (the module docstring)."""
    f = max(1, int(layer.kernel[0]))
    return int(layer.pad[0]) // f, f, max(1, int(layer.stride[0]))


def ctc_offset(layer: Layer) -> int:
    """Q: how many blocks into a kept window the frames a ctc's span reads start (pad_b = Q·f; 0: its first frames)."""
    return int(layer.pad[2]) // max(1, int(layer.kernel[0]))


def ctc_repeats(layer: Layer) -> bool:
    """Whether a ctc lets each phoneme be said as several spikes with blanks between (pad_r = 1; format 7)."""
    return bool(layer.pad[3])


def ctc_states(seq: tuple[int, ...]) -> tuple[list[int], list[bool], list[bool]]:
    """CTC's blank-interleaved states of a keyword sequence (ext: 0, s1, 0, s2, …, 0), which states may be entered
    from two back (skip: a phoneme after the blank between two different phonemes), and which phoneme states the
    repeats topology (pad_r) enters again from the blank right after them (back: every phoneme but one followed by
    the same phoneme, whose path that already is)."""
    ext = [0]
    for p in seq:
        ext += [p, 0]
    n = len(ext)
    skip = [i >= 2 and ext[i] != 0 and ext[i] != ext[i - 2] for i in range(n)]
    back = [ext[i] != 0 and (i + 2 >= n or ext[i + 2] != ext[i]) for i in range(n)]
    return ext, skip, back


def ctc_state_bytes(layer: Layer) -> int:
    """Bytes of state a ctc keeps between inferences: 0 without a span, else a u32 count and K × f × (V + 1),
    K = (B + Q)·w windows."""
    if layer.op != "ctc":
        return 0
    b, f, w = ctc_span(layer)
    return 0 if b == 0 else 4 + (b + ctc_offset(layer)) * w * f * int(layer.in_shape[2])


def ctc_sequences(layer: Layer) -> list[tuple[int, ...]]:
    """The keyword sequences a ctc layer's row holds after its table ([length, phonemes …] each; a length of 0 ends
    the list, the rest of the row is zeros)."""
    row = [int(v) for v in np.asarray(layer.weights).reshape(-1)[CTC_TABLE:]]
    out, k = [], 0
    while k < len(row) and row[k] > 0 and k + 1 + row[k] < len(row):
        out.append(tuple(row[k + 1: k + 1 + row[k]]))
        k += 1 + row[k]
    if k >= len(row) or any(row[k:]):
        raise ValueError(f"ctc layer {layer.name}: malformed keyword sequences at byte {CTC_TABLE + k} (each "
                         f"[length, phonemes …], then a 0 and zeros to the row's end)")
    return out
