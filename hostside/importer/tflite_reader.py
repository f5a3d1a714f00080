"""A quantised TFLite model → pqlr's IntGraph, computing what TFLite computes (hostside/graph.py's rules).

What maps to what (TFLite builtin op → pqlr layer):
- CONV_2D → conv2d (pwconv2d when 1×1, stride 1, unpadded); DEPTHWISE_CONV_2D (depth multiplier 1) → dwconv2d;
  FULLY_CONNECTED → fc. Per-channel (or per-tensor) symmetric int8 weights, int32 bias, the fused activation
  as the clamp; multipliers computed as TFLite's QuantizeMultiplier does (double(in)·double(w)/double(out),
  frexp, round half away from zero).
- RESHAPE → nothing (same bytes) or a reshape layer when the HWC shape changes.
- LOGISTIC → lut: a 256-entry table built as TFLite's int8 kernel builds its own (LUTPopulate: float32
  dequantise, 1/(1+e^−x), round half away, clamp).
- Streaming state (VAR_HANDLE, READ_VARIABLE, CONCATENATION of a variable and the new rows along time,
  STRIDED_SLICE keeping the last rows, ASSIGN_VARIABLE, and CALL_ONCE's initial values) → one `stream` layer
  per variable: a ring of state rows the board keeps between inferences.
- SPLIT_V over channels into branches that each take the last rows of the window and a depthwise conv, joined by
  CONCATENATION over channels (microWakeWord's MixConv blocks) → one dwconv2d whose shorter kernels are padded
  with zero taps at their start. The accumulators are the same sums, so the result is exact.
- A last QUANTIZE int8 → uint8 of the same scale (output zero point +128) → recorded in graph.output; the
  board outputs the int8 tensor and the host adds the offset.
Anything else is refused with the op's name, its index and its tensors, and what pqlr does support.

Rounding (`rounding`, per layer in the graph):
- "tflite": what the TFLite interpreter (LiteRT, reference kernels) computes, as measured against it
  (tests/test_import_tflite.py): convolutions requantise with gemmlowp's double rounding, FULLY_CONNECTED
  rounds once (a −48.4998 case that double rounding takes to −49 came out −48).
- "tflm": TFLite Micro's default build, double rounding in every layer (its reference kernels all call
  MultiplyByQuantizedMultiplier); not checked here: no TFLM interpreter is installed.
- "single": a TFLite Micro built with TFLITE_SINGLE_ROUNDING=1: every layer rounds once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PqlrError
from ..graph import IntGraph, Layer
from ..reference.tflite_ops import quantize_multiplier, round_half_away

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RESHAPE", "LOGISTIC", "SOFTMAX",
             "AVERAGE_POOL_2D (over the whole map)", "MAX_POOL_2D", "ADD (same shapes: a residual or a constant)", "QUANTIZE (int8 → uint8, "
             "last op)", "CONCATENATION (streaming state)", "STRIDED_SLICE (streaming state, MixConv)",
             "SPLIT_V (MixConv)", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE")
INT8, UINT8, INT32, RESOURCE = 9, 3, 2, 13
ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
LAYER_ROUNDING = {"tflite": lambda op: "single" if op == "fc" else "double",
                  "tflm": lambda op: "double", "single": lambda op: "single"}


class TfliteImportError(PqlrError):
    """The TFLite model uses something pqlr cannot compute exactly."""


@dataclass
class ImportResult:
    graph: IntGraph
    source: str
    mapping: list[str] = field(default_factory=list)     # "op 14 CONV_2D → layer 1 conv2d", one per source op
    layer_tensors: list[int] = field(default_factory=list)   # the source tensor each layer's output equals


def _need_tflite():
    try:
        import tflite  # noqa: F401  (TFLite's generated flatbuffer schema)
        from tflite.BuiltinOperator import BuiltinOperator
    except ImportError:
        raise TfliteImportError("reading .tflite needs the `tflite` package: pip install -e '.[import]' "
                                "(or pip install tflite)") from None
    return tflite, {v: k for k, v in BuiltinOperator.__dict__.items() if not k.startswith("_")}


def tflite_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier in pqlr's (M, s) form: real ≈ M·2^−s. TFLite's shift is 31 − s."""
    if real == 0:
        return 0, 1
    M, e = quantize_multiplier(real)
    if e < -31:                       # TFLite: every bit shifted out → multiplier 0
        return 0, 1
    s = 31 - e
    if s < 1:
        raise TfliteImportError(f"requantisation scale {real} ≥ 2^30 cannot be represented")
    return M, s


class _Reader:
    def __init__(self, path: Path):
        self.tflite, self.names = _need_tflite()
        self.raw = Path(path).read_bytes()
        try:
            self.model = self.tflite.Model.GetRootAsModel(self.raw, 0)
            self.n_sub = self.model.SubgraphsLength()
        except Exception as exc:
            raise TfliteImportError(f"{path}: not a TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
        if self.n_sub == 0:
            raise TfliteImportError(f"{path}: the model has no subgraph")

    def opname(self, op) -> str:
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        return self.names.get(code, f"builtin {code}") if code != 32 else f"CUSTOM({oc.CustomCode().decode()})"

    def buffer(self, t) -> np.ndarray | None:
        b = self.model.Buffers(t.Buffer())
        if b is None:
            return None
        if b.Offset() > 1:
            return np.frombuffer(self.raw, np.uint8, b.Size(), b.Offset())
        if b.DataLength() == 0:
            return None
        return b.DataAsNumpy()


@dataclass
class _T:
    """One tensor of the source graph."""
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int
    scale: np.ndarray | None
    zp: np.ndarray | None
    data: np.ndarray | None

    def const(self, dtype) -> np.ndarray:
        if self.data is None:
            raise TfliteImportError(f"tensor {self.index} '{self.name}' should be a constant but has no data")
        return np.frombuffer(self.data.tobytes(), dtype).reshape(self.shape)

    @property
    def s(self) -> float:
        return float(self.scale[0])

    @property
    def z(self) -> int:
        return int(self.zp[0])


def _hwc(shape: tuple[int, ...], where: str) -> tuple[int, int, int]:
    if len(shape) >= 2 and shape[0] != 1:
        raise TfliteImportError(f"{where}: batch size {shape[0]} (pqlr runs batch 1)")
    dims = tuple(int(d) for d in shape[1:]) if len(shape) >= 2 else tuple(int(d) for d in shape)
    if len(dims) == 3:
        return dims
    if len(dims) == 2:
        return (dims[0], 1, dims[1])
    if len(dims) == 1:
        return (1, 1, dims[0])
    raise TfliteImportError(f"{where}: rank-{len(shape)} tensor {shape} has no HWC form")


def _act_range(act: int, out: _T, where: str) -> tuple[int, int]:
    if act not in ACT:
        raise TfliteImportError(f"{where}: fused activation {act} is not supported (NONE, RELU, RELU_N1_TO_1, RELU6)")
    lo, hi = -128, 127
    q = lambda f: out.z + int(round_half_away(np.float32(f) / np.float32(out.s)))   # noqa: E731
    if ACT[act] == "RELU":
        lo = max(lo, q(0.0))
    elif ACT[act] == "RELU6":
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif ACT[act] == "RELU_N1_TO_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


def _same_pad(in_hw, k, stride, padding: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """TFLite's output size and padding (top, left, bottom, right) for SAME (0) or VALID (1)."""
    out, pads = [], []
    for n, kk, s in zip(in_hw, k, stride):
        o = (n + s - 1) // s if padding == 0 else (n - kk + s) // s
        total = max((o - 1) * s + kk - n, 0) if padding == 0 else 0
        out.append(o)
        pads.append((total // 2, total - total // 2))
    return (out[0], out[1]), (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def sigmoid_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLite's int8 LOGISTIC table (LUTPopulate): float32 x = s_in·(v − zp_in), 1/(1 + e^−x) in float32,
    ×(1/s_out) in float32, rounded half away from zero, + zp_out, clamped; for every int8 v."""
    v = np.arange(-128, 128)
    x = np.float32(in_scale) * (v - in_zp).astype(np.float32)
    e = np.exp(-x.astype(np.float64)).astype(np.float32)
    y = np.float32(1) / (np.float32(1) + e)
    r = round_half_away((y * (np.float32(1) / np.float32(out_scale))).astype(np.float32))
    return np.clip(r + out_zp, -128, 127).astype(np.int8)


class _Importer:
    def __init__(self, path: Path, rounding: str):
        self.path = Path(path)
        self.r = _Reader(self.path)
        self.rounding = rounding
        self.sg = self.r.model.Subgraphs(0)
        self.tensors = [self._tensor(self.sg, i) for i in range(self.sg.TensorsLength())]
        self.ops = [self.sg.Operators(k) for k in range(self.sg.OperatorsLength())]
        self.consumers: dict[int, list[int]] = {}
        for k, op in enumerate(self.ops):
            for i in self._ins(op):
                self.consumers.setdefault(i, []).append(k)
        self.layers: list[Layer] = []
        self.layer_tensors: list[int] = []
        self.mapping: list[str] = []
        self.done: set[int] = set()
        self.handles: dict[int, str] = {}      # resource tensor → variable name
        self.reads: dict[int, str] = {}        # tensor read from a variable → its name
        self.init: dict[str, np.ndarray] = {}  # variable → initial value (CALL_ONCE)
        self.streams: dict[str, tuple[int, int, int]] = {}   # variable → (layer, concat output tensor, rows)
        self.assigned: set[str] = set()
        self.state_slices: dict[int, str] = {}  # validated STRIDED_SLICE output → variable it updates
        self.output_note: dict = {}

    # ---- flatbuffer helpers -------------------------------------------------------------------------
    def _tensor(self, sg, i: int) -> _T:
        t = sg.Tensors(i)
        q = t.Quantization()
        scale = q.ScaleAsNumpy().astype(np.float32) if q is not None and q.ScaleLength() else None
        zp = q.ZeroPointAsNumpy().astype(np.int64) if q is not None and q.ZeroPointLength() else None
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        return _T(i, (t.Name() or b"").decode(errors="replace"), shape, t.Type(), scale, zp, self.r.buffer(t))

    @staticmethod
    def _ins(op) -> list[int]:
        return [op.Inputs(i) for i in range(op.InputsLength())]

    @staticmethod
    def _outs(op) -> list[int]:
        return [op.Outputs(i) for i in range(op.OutputsLength())]

    def _where(self, k: int) -> str:
        op = self.ops[k]
        ins = ", ".join(f"#{i} '{self.tensors[i].name}'" for i in self._ins(op) if i >= 0)
        return f"{self.path.name}: op {k} {self.r.opname(op)} (inputs {ins})"

    def _options(self, op, cls):
        tab = op.BuiltinOptions()
        o = cls()
        o.Init(tab.Bytes, tab.Pos)
        return o

    def _q8(self, t: _T, where: str, what: str) -> None:
        if t.dtype != INT8:
            raise TfliteImportError(f"{where}: {what} tensor #{t.index} '{t.name}' is not int8 (type {t.dtype}); "
                                    f"pqlr imports int8 models")
        if t.scale is None or t.zp is None or len(t.scale) != 1:
            raise TfliteImportError(f"{where}: {what} tensor #{t.index} '{t.name}' is not quantised per tensor")

    def _same_q(self, a: _T, b: _T) -> bool:
        return a.scale is not None and b.scale is not None and a.s == b.s and a.z == b.z

    def _unary(self, k: int, op) -> tuple[str, _T, _T, tuple[int, int, int]]:
        """An op of one int8 tensor in and one out that reads the chain: (where, x, y, x's HWC shape)."""
        where = self._where(k)
        x, y = self.tensors[self._ins(op)[0]], self.tensors[self._outs(op)[0]]
        self._q8(x, where, "input")
        self._q8(y, where, "output")
        return where, x, y, self._chain_input(k, x.index)

    def _layer(self, k: int, op: str, x: _T, y: _T, in_shape, out_shape, lo: int = -128, hi: int = 127,
               **fields) -> Layer:
        """A layer from x to y; ops without per-channel parameters get a zero multiplier."""
        fields.setdefault("multiplier", np.zeros(1, np.int32))
        fields.setdefault("shift", np.ones(1, np.int32))
        return Layer(name=f"{self.path.stem}_op{k}_{op}", op=op, in_shape=tuple(in_shape), out_shape=tuple(out_shape),
                     in_zp=x.z, out_zp=y.z, act_min=lo, act_max=hi, in_scale=x.s, out_scale=y.s, **fields)

    # ---- the walk ---------------------------------------------------------------------------------
    def run(self) -> ImportResult:
        ins = [self.sg.Inputs(i) for i in range(self.sg.InputsLength())]
        outs = [self.sg.Outputs(i) for i in range(self.sg.OutputsLength())]
        if len(ins) != 1 or len(outs) != 1:
            raise TfliteImportError(f"{self.path.name}: {len(ins)} inputs and {len(outs)} outputs; pqlr imports "
                                    f"models with one of each")
        x = self.tensors[ins[0]]
        self._q8(x, f"{self.path.name}: the input", "input")
        self.cur = x.index
        self.shape = {x.index: _hwc(x.shape, f"{self.path.name}: the input")}
        self.chain_index = {x.index: 0}          # source tensor → pqlr tensor t_k
        self.input = x
        for k, op in enumerate(self.ops):
            if k in self.done:
                continue
            name = self.r.opname(op)
            handler = getattr(self, "op_" + name, None)
            if handler is None:
                raise TfliteImportError(f"{self._where(k)}: op {name} is not supported by pqlr's importer "
                                        f"(supported: {', '.join(SUPPORTED)})")
            handler(k, op)
        if self.cur != outs[0]:
            raise TfliteImportError(f"{self.path.name}: the ops do not form one chain from the input to the output "
                                    f"(ended at tensor #{self.cur}, the output is #{outs[0]})")
        missing = set(self.streams) - self.assigned
        if missing:
            raise TfliteImportError(f"{self.path.name}: state variable(s) {sorted(missing)} are read but never "
                                    f"updated; pqlr's stream layers always update their state")
        if not self.layers:
            raise TfliteImportError(f"{self.path.name}: no layer to run")
        g = IntGraph(input_shape=self.shape[x.index], input_scale=x.s, input_zp=x.z, layers=self.layers,
                     classes=tuple(f"out{i}" for i in range(self.layers[-1].out_shape[2])),
                     rounding="mixed" if self.rounding == "tflite" else LAYER_ROUNDING[self.rounding]("conv2d"),
                     output=dict(self.output_note, source=self.path.name))
        return ImportResult(graph=g, source=str(self.path), mapping=self.mapping, layer_tensors=self.layer_tensors)

    def _chain_input(self, k: int, t: int) -> tuple[int, int, int]:
        if t != self.cur:
            raise TfliteImportError(f"{self._where(k)}: reads tensor #{t}, not the previous op's output #{self.cur}; "
                                    f"pqlr imports chains (with streaming state and MixConv blocks)")
        return self.shape[t]

    def _emit(self, k: int, L: Layer, out: int, what: str | None = None) -> None:
        L.rounding = LAYER_ROUNDING[self.rounding](L.op)
        self.layers.append(L)
        self.layer_tensors.append(out)
        self.chain_index[out] = len(self.layers)
        self.shape[out] = L.out_shape
        self.cur = out
        self.mapping.append(f"op {k} {self.r.opname(self.ops[k])} → layer {len(self.layers) - 1} {what or L.op}")

    # ---- state ------------------------------------------------------------------------------------
    def op_CALL_ONCE(self, k, op):
        o = self._options(op, self.r.tflite.CallOnceOptions)
        sub = self.r.model.Subgraphs(o.InitSubgraphIndex())
        handles = {}
        for j in range(sub.OperatorsLength()):
            sop = sub.Operators(j)
            n = self.r.opname(sop)
            if n == "VAR_HANDLE":
                handles[sop.Outputs(0)] = self._var_name(sop)
            elif n == "ASSIGN_VARIABLE":
                h, v = sop.Inputs(0), sop.Inputs(1)
                t = self._tensor(sub, v)
                if t.dtype != INT8 or t.data is None:
                    raise TfliteImportError(f"{self.path.name}: the initial value of variable {handles.get(h)} is "
                                            f"not an int8 constant")
                self.init[handles[h]] = t.const(np.int8)
            else:
                raise TfliteImportError(f"{self.path.name}: the CALL_ONCE init subgraph has op {n}; pqlr reads only "
                                        f"VAR_HANDLE and ASSIGN_VARIABLE of constants there")
        self.mapping.append(f"op {k} CALL_ONCE → initial state of {len(self.init)} variables")

    def _var_name(self, op) -> str:
        o = self._options(op, self.r.tflite.VarHandleOptions)
        return ((o.Container() or b"").decode() + "/" + (o.SharedName() or b"").decode())

    def op_VAR_HANDLE(self, k, op):
        self.handles[op.Outputs(0)] = self._var_name(op)

    def op_READ_VARIABLE(self, k, op):
        name = self.handles.get(op.Inputs(0))
        if name is None:
            raise TfliteImportError(f"{self._where(k)}: reads a variable without a VAR_HANDLE")
        if name in self.reads.values():
            raise TfliteImportError(f"{self._where(k)}: variable {name} is read twice in one step")
        self.reads[op.Outputs(0)] = name

    def op_ASSIGN_VARIABLE(self, k, op):
        name = self.handles.get(op.Inputs(0))
        if name is None or self.state_slices.get(op.Inputs(1)) != name:
            raise TfliteImportError(f"{self._where(k)}: assigns variable {name} a value that is not the last rows "
                                    f"of its own stream; pqlr's stream layers cannot express it")
        self.assigned.add(name)

    def op_CONCATENATION(self, k, op):
        where = self._where(k)
        a, b = self._ins(op)[:2] if op.InputsLength() == 2 else (None, None)
        name = self.reads.get(a)
        if name is None or b != self.cur:
            raise TfliteImportError(f"{where}: only the streaming pattern concat(state variable, new rows) along "
                                    f"time is supported outside MixConv blocks")
        o = self._options(op, self.r.tflite.ConcatenationOptions)
        out = self._outs(op)[0]
        ta, tb, to = self.tensors[a], self.tensors[b], self.tensors[out]
        axis = o.Axis() % len(to.shape)
        if axis != 1 or len(to.shape) != 4:
            raise TfliteImportError(f"{where}: a state concatenation must be along axis 1 of a 4-D tensor "
                                    f"(time), not axis {o.Axis()} of {to.shape}")
        if not (self._same_q(ta, tb) and self._same_q(tb, to)) or o.FusedActivationFunction():
            raise TfliteImportError(f"{where}: state, input and output must share one quantisation")
        in_shape = self._chain_input(k, b)
        out_shape = _hwc(to.shape, where)
        rows = out_shape[0] - in_shape[0]
        init = self.init.get(name)
        if init is None:
            init = np.full((rows,) + in_shape[1:], ta.z, np.int8)        # no CALL_ONCE: TFLite zero-fills
        if init.size != rows * in_shape[1] * in_shape[2]:
            raise TfliteImportError(f"{where}: initial value of {name} has {init.size} values, the state has "
                                    f"{rows}×{in_shape[1]}×{in_shape[2]}")
        L = Layer(name=f"{self.path.stem}_stream{len(self.streams)}", op="stream", in_shape=in_shape,
                  out_shape=out_shape, in_zp=tb.z, out_zp=to.z, act_min=-128, act_max=127, in_scale=tb.s,
                  out_scale=to.s, multiplier=np.zeros(1, np.int32), shift=np.ones(1, np.int32),
                  weights=init.reshape(rows * in_shape[1], in_shape[2]).astype(np.int8))
        self.streams[name] = (len(self.layers), out, rows)
        self._emit(k, L, out, f"stream (state {name}: {rows} rows)")

    def op_STRIDED_SLICE(self, k, op):
        where = self._where(k)
        src, out = self._ins(op)[0], self._outs(op)[0]
        users = self.consumers.get(out, [])
        stream = [n for n, (_, t, _) in self.streams.items() if t == src]
        if not (stream and len(users) == 1 and self.r.opname(self.ops[users[0]]) == "ASSIGN_VARIABLE"):
            raise TfliteImportError(f"{where}: STRIDED_SLICE is supported as a stream's state update (its output "
                                    f"assigned to the variable) or inside a MixConv block")
        name = stream[0]
        rows = self.streams[name][2]
        ts = self.tensors[src]
        if self._time_slice(k) != (ts.shape[1] - rows, ts.shape[1]):
            raise TfliteImportError(f"{where}: the update of state {name} does not keep the last {rows} rows of "
                                    f"its stream; pqlr's stream layer cannot express it")
        self.state_slices[out] = name
        self.mapping.append(f"op {k} STRIDED_SLICE → state update of {name} (stream layer "
                            f"{self.streams[name][0]})")

    def _time_slice(self, k: int) -> tuple[int, int]:
        """A STRIDED_SLICE that keeps rows [a, b) of axis 1 of a 4-D tensor and everything else: (a, b)."""
        op = self.ops[k]
        ts = self.tensors[op.Inputs(0)]
        begin, end, strides = (self.tensors[i].const(np.int32).reshape(-1) for i in self._ins(op)[1:4])
        o = self._options(op, self.r.tflite.StridedSliceOptions)
        if len(ts.shape) != 4 or (strides != 1).any() or o.EllipsisMask() or o.NewAxisMask() or o.ShrinkAxisMask():
            raise TfliteImportError(f"{self._where(k)}: only unit-stride slices of a 4-D tensor's time axis are "
                                    f"supported")
        span = []
        for d, n in enumerate(ts.shape):
            a = 0 if o.BeginMask() >> d & 1 else int(begin[d])
            b = n if o.EndMask() >> d & 1 else int(end[d])
            a, b = (a + n if a < 0 else a), (b + n if b < 0 else b)
            span.append((max(0, min(a, n)), max(0, min(b, n))))
        if any(span[d] != (0, ts.shape[d]) for d in (0, 2, 3)):
            raise TfliteImportError(f"{self._where(k)}: a slice that cuts more than the time axis")
        return span[1]

    # ---- compute ----------------------------------------------------------------------------------
    def _weighted(self, k, op, kind: str) -> None:
        where = self._where(k)
        ins = self._ins(op)
        x, w = self.tensors[ins[0]], self.tensors[ins[1]]
        b = self.tensors[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None
        y = self.tensors[self._outs(op)[0]]
        self._q8(x, where, "input")
        self._q8(y, where, "output")
        if w.dtype != INT8 or w.scale is None:
            raise TfliteImportError(f"{where}: weights #{w.index} are not int8-quantised (type {w.dtype})")
        if w.zp is not None and np.any(w.zp != 0):
            raise TfliteImportError(f"{where}: weights #{w.index} are asymmetric (zero point ≠ 0)")
        in_shape = self._chain_input(k, x.index)
        W = w.const(np.int8)
        if kind == "fc":
            o = self._options(op, self.r.tflite.FullyConnectedOptions)
            act = o.FusedActivationFunction()
            cout = W.shape[0]
            if W.shape[1] != int(np.prod(in_shape)):
                raise TfliteImportError(f"{where}: {W.shape[1]} inputs per output, the input has {in_shape}")
            L = dict(op="fc", out_shape=(1, 1, cout), weights=W.reshape(cout, -1).copy())
        else:
            opts = self.r.tflite.Conv2DOptions if kind == "conv" else self.r.tflite.DepthwiseConv2DOptions
            o = self._options(op, opts)
            act = o.FusedActivationFunction()
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
                raise TfliteImportError(f"{where}: dilation {o.DilationHFactor()}×{o.DilationWFactor()} is not "
                                        f"supported yet")
            stride = (o.StrideH(), o.StrideW())
            if kind == "conv":
                cout, kh, kw, cin = W.shape
                if cin != in_shape[2]:
                    raise TfliteImportError(f"{where}: filter has {cin} input channels, the input {in_shape[2]}")
            else:
                _, kh, kw, cout = W.shape
                if cout != in_shape[2]:
                    raise TfliteImportError(f"{where}: depth multiplier {cout // max(in_shape[2], 1)} ≠ 1 is not "
                                            f"supported")
            (oh, ow), pad = _same_pad(in_shape[:2], (kh, kw), stride, o.Padding())
            if kind == "conv" and (kh, kw) == (1, 1) and stride == (1, 1) and not any(pad):
                L = dict(op="pwconv2d", out_shape=(oh, ow, cout), weights=W.reshape(cout, cin).copy())
            elif kind == "conv":
                L = dict(op="conv2d", out_shape=(oh, ow, cout), weights=W.copy(), kernel=(kh, kw), stride=stride,
                         pad=pad)
            else:
                L = dict(op="dwconv2d", out_shape=(oh, ow, cout), weights=np.ascontiguousarray(
                    W[0].transpose(2, 0, 1)), kernel=(kh, kw), stride=stride, pad=pad)
        if tuple(L["out_shape"]) != _hwc(y.shape, where):
            raise TfliteImportError(f"{where}: computed output {L['out_shape']} ≠ the model's {y.shape}")
        wscale = np.broadcast_to(w.scale.astype(np.float32), (cout,))
        bias = b.const(np.int32).reshape(-1).copy() if b is not None else np.zeros(cout, np.int32)
        if b is not None and b.dtype != INT32:
            raise TfliteImportError(f"{where}: bias #{b.index} is not int32 (type {b.dtype})")
        ms = [tflite_multiplier(float(np.float64(x.s) * np.float64(ws) / np.float64(y.s))) for ws in wscale]
        lo, hi = _act_range(act, y, where)
        layer = Layer(name=f"{self.path.stem}_op{k}_{L['op']}", op=L["op"], in_shape=in_shape,
                      out_shape=tuple(L["out_shape"]), in_zp=x.z, out_zp=y.z, act_min=lo, act_max=hi, in_scale=x.s,
                      out_scale=y.s, multiplier=np.array([m for m, _ in ms], np.int32),
                      shift=np.array([s for _, s in ms], np.int32), weights=L["weights"], bias=bias,
                      kernel=L.get("kernel", (1, 1)), stride=L.get("stride", (1, 1)), pad=L.get("pad", (0, 0, 0, 0)))
        self._emit(k, layer, y.index)

    def op_CONV_2D(self, k, op):
        self._weighted(k, op, "conv")

    def op_DEPTHWISE_CONV_2D(self, k, op):
        self._weighted(k, op, "dw")

    def op_FULLY_CONNECTED(self, k, op):
        self._weighted(k, op, "fc")

    def op_RESHAPE(self, k, op):
        where = self._where(k)
        x, y = self.tensors[self._ins(op)[0]], self.tensors[self._outs(op)[0]]
        in_shape = self._chain_input(k, x.index)
        out_shape = _hwc(y.shape, where)
        if x.dtype != y.dtype or not self._same_q(x, y):
            raise TfliteImportError(f"{where}: a reshape that changes type or quantisation")
        if out_shape == in_shape:
            self.shape[y.index] = out_shape
            self.chain_index[y.index] = self.chain_index[x.index]
            self.cur = y.index
            self.mapping.append(f"op {k} RESHAPE → nothing (same HWC bytes {out_shape})")
            return
        self._emit(k, self._layer(k, "reshape", x, y, in_shape, out_shape), y.index)

    def op_LOGISTIC(self, k, op):
        _, x, y, in_shape = self._unary(k, op)
        table = sigmoid_lut(x.s, x.z, y.s, y.z)
        self._emit(k, self._layer(k, "lut", x, y, in_shape, in_shape, weights=table.reshape(1, 256)), y.index,
                   "lut (logistic)")

    def op_AVERAGE_POOL_2D(self, k, op):
        where, x, y, in_shape = self._unary(k, op)
        o = self._options(op, self.r.tflite.Pool2DOptions)
        out_shape = _hwc(y.shape, where)
        if (o.FilterHeight(), o.FilterWidth()) != in_shape[:2] or out_shape != (1, 1, in_shape[2]):
            raise TfliteImportError(f"{where}: only an average pool over the whole {in_shape[0]}×{in_shape[1]} map is "
                                    f"supported (filter {o.FilterHeight()}×{o.FilterWidth()})")
        if not self._same_q(x, y):
            raise TfliteImportError(f"{where}: input and output quantisation differ (TFLite requires them equal)")
        lo, hi = _act_range(o.FusedActivationFunction(), y, where)
        self._emit(k, self._layer(k, "meanpool", x, y, in_shape, out_shape, lo, hi), y.index)

    def op_MAX_POOL_2D(self, k, op):
        where, x, y, in_shape = self._unary(k, op)
        if not self._same_q(x, y):
            raise TfliteImportError(f"{where}: input and output quantisation differ (TFLite requires them equal)")
        o = self._options(op, self.r.tflite.Pool2DOptions)
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        (oh, ow), pad = _same_pad(in_shape[:2], kernel, stride, o.Padding())
        out_shape = (oh, ow, in_shape[2])
        if out_shape != _hwc(y.shape, where):
            raise TfliteImportError(f"{where}: computed output {out_shape} ≠ the model's {y.shape}")
        lo, hi = _act_range(o.FusedActivationFunction(), y, where)
        self._emit(k, self._layer(k, "maxpool", x, y, in_shape, out_shape, lo, hi, kernel=kernel, stride=stride,
                                  pad=pad), y.index)

    def op_ADD(self, k, op):
        """TFLite's int8 ADD (left shift 20, three double-rounded multipliers) of the chain's tensor and either an
        earlier tensor of the chain (a residual connection) or a constant of the same shape."""
        where = self._where(k)
        a, b = self._ins(op)[:2]
        if b == self.cur and a != self.cur:
            a, b = b, a
        x, other, y = self.tensors[a], self.tensors[b], self.tensors[self._outs(op)[0]]
        for t, what in ((x, "input"), (other, "second input"), (y, "output")):
            self._q8(t, where, what)
        in_shape = self._chain_input(k, x.index)
        o = self._options(op, self.r.tflite.AddOptions)
        if other.data is not None:
            skip, const = -1, other.const(np.int8)
            if const.size != int(np.prod(in_shape)):
                raise TfliteImportError(f"{where}: a constant operand of shape {other.shape} (broadcasting is not "
                                        f"supported)")
            weights = const.reshape(in_shape[0] * in_shape[1], in_shape[2])
        elif other.index in self.chain_index and self.shape.get(other.index) == in_shape:
            skip, weights = self.chain_index[other.index], None
        else:
            raise TfliteImportError(f"{where}: the second operand is neither an earlier tensor of the same shape nor "
                                    f"a constant")
        twice_max = 2.0 * max(float(np.float64(x.s)), float(np.float64(other.s)))
        m1, s1 = tflite_multiplier(float(np.float64(x.s)) / twice_max)
        m2, s2 = tflite_multiplier(float(np.float64(other.s)) / twice_max)
        mo, so = tflite_multiplier(twice_max / ((1 << 20) * float(np.float64(y.s))))
        if min(s1, s2, so) < 31:
            raise TfliteImportError(f"{where}: an output scale this small needs a left shift TFLite's int8 add "
                                    f"does not take")
        lo, hi = _act_range(o.FusedActivationFunction(), y, where)
        self._emit(k, self._layer(k, "qadd", x, y, in_shape, in_shape, lo, hi, multiplier=np.array([mo], np.int32),
                                  shift=np.array([so], np.int32), weights=weights, skip=skip, in2_zp=other.z,
                                  in2_scale=other.s, ra=m1, rb=m2, m2=s1, s2=s2), y.index,
                   f"qadd (+ {'t' + str(skip) if skip >= 0 else 'a constant'})")

    def op_SOFTMAX(self, k, op):
        from ..reference.tflite_ops import softmax_params
        where, x, y, in_shape = self._unary(k, op)
        if y.z != -128 or abs(y.s - 1 / 256) > 1e-3 / 256:
            raise TfliteImportError(f"{where}: an int8 softmax's output must have scale 1/256 and zero point −128")
        beta = self._options(op, self.r.tflite.SoftmaxOptions).Beta()
        M, s, diff_min = softmax_params(x.s, beta)
        self._emit(k, self._layer(k, "softmax", x, y, in_shape, in_shape, multiplier=np.array([M], np.int32),
                                  shift=np.array([s], np.int32), m2=diff_min), y.index)

    def op_QUANTIZE(self, k, op):
        where = self._where(k)
        x, y = self.tensors[self._ins(op)[0]], self.tensors[self._outs(op)[0]]
        self._chain_input(k, x.index)
        last = k == len(self.ops) - 1 or all(j in self.done for j in range(k + 1, len(self.ops)))
        if not (last and x.dtype == INT8 and y.dtype == UINT8 and x.s == y.s and y.z - x.z == 128):
            raise TfliteImportError(f"{where}: only a last QUANTIZE from int8 to uint8 of the same scale is supported")
        self.output_note = {"dtype": "uint8", "offset": 128, "scale": y.s, "zero_point": y.z}
        self.cur = y.index
        self.mapping.append(f"op {k} QUANTIZE → output as uint8 = int8 + 128 (on the host)")

    def op_SPLIT_V(self, k, op):
        """A MixConv block: SPLIT_V over channels → per branch [STRIDED_SLICE of the last rows] → DEPTHWISE_CONV_2D
        → CONCATENATION over channels, fused into one depthwise conv with zero-padded kernels."""
        where = self._where(k)
        x = self.tensors[self._ins(op)[0]]
        in_shape = self._chain_input(k, x.index)
        T, Wd, C = in_shape
        branches = self._outs(op)
        dws, used = [], {k}
        concat = None
        for t in branches:
            users = self.consumers.get(t, [])
            if len(users) != 1:
                raise TfliteImportError(f"{where}: a split output is used {len(users)} times; not a MixConv block")
            j = users[0]
            rows = self.tensors[t].shape[1]
            if self.r.opname(self.ops[j]) == "STRIDED_SLICE":
                sl = self.ops[j]
                ts, to = self.tensors[sl.Inputs(0)], self.tensors[sl.Outputs(0)]
                a, b = self._time_slice(j)
                rows = b - a
                if b != ts.shape[1]:
                    raise TfliteImportError(f"{self._where(j)}: a MixConv branch must take the last rows of the window")
                used.add(j)
                nxt = self.consumers.get(to.index, [])
                if len(nxt) != 1:
                    raise TfliteImportError(f"{self._where(j)}: not a MixConv branch")
                j = nxt[0]
            if self.r.opname(self.ops[j]) != "DEPTHWISE_CONV_2D":
                raise TfliteImportError(f"{self._where(j)}: a MixConv branch must end in DEPTHWISE_CONV_2D")
            used.add(j)
            dws.append((j, rows))
            c_users = self.consumers.get(self.ops[j].Outputs(0), [])
            if len(c_users) != 1 or (concat is not None and c_users[0] != concat):
                raise TfliteImportError(f"{self._where(j)}: MixConv branches must meet in one CONCATENATION")
            concat = c_users[0]
        cop = self.ops[concat]
        if self.r.opname(cop) != "CONCATENATION" or [self.ops[j].Outputs(0) for j, _ in dws] != self._ins(cop):
            raise TfliteImportError(f"{self._where(concat)}: MixConv branches must be concatenated in split order")
        co = self._options(cop, self.r.tflite.ConcatenationOptions)
        y = self.tensors[cop.Outputs(0)]
        if co.Axis() % 4 != 3 or co.FusedActivationFunction():
            raise TfliteImportError(f"{self._where(concat)}: MixConv concatenation must be over channels")
        used.add(concat)
        # fuse: branch b sees the last r_b rows with a kh_b × kw kernel (valid, stride 1) → o rows
        weights, bias, mult, shift, outs, acts = [], [], [], [], set(), set()
        o_rows = None
        for j, rows in dws:
            dop = self.ops[j]
            w_t, b_t = self.tensors[dop.Inputs(1)], self.tensors[dop.Inputs(2)] if dop.InputsLength() > 2 else None
            yj = self.tensors[dop.Outputs(0)]
            o = self._options(dop, self.r.tflite.DepthwiseConv2DOptions)
            if (o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()) != (1, 1, 1, 1) or o.Padding() != 1:
                raise TfliteImportError(f"{self._where(j)}: MixConv branches must be VALID, stride 1, no dilation")
            Wj = w_t.const(np.int8)[0].transpose(2, 0, 1)        # [c][kh][kw]
            if w_t.zp is not None and np.any(w_t.zp != 0):
                raise TfliteImportError(f"{self._where(j)}: asymmetric weights")
            kh, kw = Wj.shape[1:]
            if kw != Wd:
                raise TfliteImportError(f"{self._where(j)}: MixConv kernels must span the window's width")
            oj = rows - kh + 1
            if o_rows is not None and oj != o_rows:
                raise TfliteImportError(f"{self._where(j)}: MixConv branches give different output lengths")
            o_rows = oj
            K = T - o_rows + 1
            pad_taps = K - kh
            Wf = np.zeros((Wj.shape[0], K, kw), np.int8)
            Wf[:, pad_taps:, :] = Wj
            weights.append(Wf)
            cj = Wj.shape[0]
            bias.append(b_t.const(np.int32).reshape(-1) if b_t is not None else np.zeros(cj, np.int32))
            for ws in np.broadcast_to(w_t.scale.astype(np.float32), (cj,)):
                m, s = tflite_multiplier(float(np.float64(x.s) * np.float64(ws) / np.float64(yj.s)))
                mult.append(m)
                shift.append(s)
            outs.add((yj.s, yj.z))
            acts.add(_act_range(o.FusedActivationFunction(), yj, where))
        if len(outs) != 1 or (y.s, y.z) not in outs or len(acts) != 1:
            raise TfliteImportError(f"{where}: MixConv branches and their concatenation must share one output "
                                    f"quantisation and activation")
        lo, hi = acts.pop()
        W = np.concatenate(weights, axis=0)
        if W.shape[0] != C:
            raise TfliteImportError(f"{where}: MixConv branches cover {W.shape[0]} of {C} channels")
        layer = Layer(name=f"{self.path.stem}_op{k}_mixconv", op="dwconv2d", in_shape=in_shape,
                      out_shape=(o_rows, 1, C), in_zp=x.z, out_zp=y.z, act_min=lo, act_max=hi, in_scale=x.s,
                      out_scale=y.s, multiplier=np.array(mult, np.int32), shift=np.array(shift, np.int32),
                      weights=W, bias=np.concatenate(bias).astype(np.int32), kernel=(W.shape[1], Wd))
        if _hwc(y.shape, where) != layer.out_shape:
            raise TfliteImportError(f"{where}: fused MixConv output {layer.out_shape} ≠ the model's {y.shape}")
        self.done |= used
        self._emit(k, layer, y.index, f"dwconv2d (MixConv of {len(dws)} kernels "
                                      f"{[int(self.tensors[self.ops[j].Inputs(1)].shape[1]) for j, _ in dws]}, "
                                      f"ops {sorted(used)})")


def import_tflite(path: str | Path, rounding: str = "tflite") -> ImportResult:
    """Read a quantised .tflite into an IntGraph that computes what TFLite computes, bit for bit.
    rounding: "tflite" (the TFLite interpreter), "tflm" (TFLite Micro's default) or "single"
    (TFLITE_SINGLE_ROUNDING=1); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise TfliteImportError(f"{path}: no such file")
    if rounding not in LAYER_ROUNDING:
        raise TfliteImportError(f"rounding must be one of {sorted(LAYER_ROUNDING)}, not {rounding!r}")
    try:
        return _Importer(path, rounding).run()
    except PqlrError:
        raise
    except Exception as exc:           # a damaged flatbuffer fails somewhere inside the generated reader
        raise TfliteImportError(f"{path}: malformed TFLite file ({type(exc).__name__}: {exc}); is it complete and "
                                f"really a .tflite?") from None
