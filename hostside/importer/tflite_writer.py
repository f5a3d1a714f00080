"""pqlr's integer graph → a TFLite flatbuffer (TFLite's schema through the `tflite` package's generated builders).

What it is for: running a pqlr-trained DS-CNN in any TFLite runtime (the interpreter, TFLite Micro) and testing
`pqlr import` on models pqlr did not get from elsewhere, the MLPerf Tiny KWS geometry among them. The exported
model is a TFLite model in its own right; where TFLite's rules differ from pqlr's, it follows TFLite's:
- convolutions and fully connected layers: per-channel int8 weights whose scale is the layer's requantisation
  multiplier × out_scale / in_scale (M·2^−s·s_out/s_in), int32 bias, RELU / RELU6 / NONE from the clamp;
- a global average pool becomes AVERAGE_POOL_2D over the whole map, which in TFLite keeps its input's
  quantisation (pqlr's requantises): the exported pool's output has the input's scale and zero point;
- a reshape becomes RESHAPE; a SOFTMAX (output scale 1/256, zero point −128) can be appended after the last layer.
Other ops are refused. The reader is hostside/importer/tflite_reader.py.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ..errors import PqlrError
from ..graph import IntGraph, Layer

INT8, INT32 = 9, 2


def _mod(name: str):
    try:
        return importlib.import_module(f"tflite.{name}")
    except ImportError:
        raise PqlrError("writing .tflite needs the `tflite` package: pip install -e '.[import]'") from None


class TfliteBuilder:
    """Tensors, buffers and ops of one subgraph, serialised by `finish`."""

    def __init__(self):
        import flatbuffers
        self.fb = flatbuffers
        self.tensors: list[dict] = []
        self.buffers: list[bytes] = [b""]
        self.ops: list[dict] = []
        self.codes: list[int] = []

    def tensor(self, shape, dtype=INT8, scale=None, zp=None, data: np.ndarray | None = None, name: str = "",
               qdim: int = 0) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append({"shape": [int(d) for d in shape], "type": dtype, "buffer": buf, "name": name,
                             "scale": None if scale is None else np.atleast_1d(np.asarray(scale, np.float32)),
                             "zp": None if zp is None else np.atleast_1d(np.asarray(zp, np.int64)), "qdim": qdim})
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0, options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append({"code": self.codes.index(code), "in": inputs, "out": outputs, "otype": options_type,
                         "options": options})

    def _ivec(self, b, start, values, prepend="PrependInt32"):
        start(b, len(values))
        for v in reversed(values):
            getattr(b, prepend)(v)
        return b.EndVector()

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = self.fb.Builder(4096)
        M, SG, T, O, OC, BU, Q = (_mod(n) for n in ("Model", "SubGraph", "Tensor", "Operator", "OperatorCode",
                                                   "Buffer", "QuantizationParameters"))
        buf_offs = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)
                for byte in reversed(data):
                    b.PrependUint8(byte)
                vec = b.EndVector()
            BU.Start(b)
            if vec is not None:
                BU.AddData(b, vec)
            buf_offs.append(BU.End(b))
        t_offs = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._ivec(b, T.StartShapeVector, t["shape"])
            q = None
            if t["scale"] is not None:
                sc = self._ivec(b, Q.StartScaleVector, [float(v) for v in t["scale"]], "PrependFloat32")
                zp = self._ivec(b, Q.StartZeroPointVector, [int(v) for v in t["zp"]], "PrependInt64")
                Q.Start(b)
                Q.AddScale(b, sc)
                Q.AddZeroPoint(b, zp)
                Q.AddQuantizedDimension(b, t["qdim"])
                q = Q.End(b)
            T.Start(b)
            T.AddShape(b, shape)
            T.AddType(b, t["type"])
            T.AddBuffer(b, t["buffer"])
            T.AddName(b, name)
            if q is not None:
                T.AddQuantization(b, q)
            t_offs.append(T.End(b))
        o_offs = []
        for o in self.ops:
            opt = o["options"](b) if o["options"] else None
            ins = self._ivec(b, O.StartInputsVector, o["in"])
            outs = self._ivec(b, O.StartOutputsVector, o["out"])
            O.Start(b)
            O.AddOpcodeIndex(b, o["code"])
            O.AddInputs(b, ins)
            O.AddOutputs(b, outs)
            if opt is not None:
                O.AddBuiltinOptionsType(b, o["otype"])
                O.AddBuiltinOptions(b, opt)
            o_offs.append(O.End(b))
        sg_t = self._offvec(b, SG.StartTensorsVector, t_offs)
        sg_o = self._offvec(b, SG.StartOperatorsVector, o_offs)
        sg_in = self._ivec(b, SG.StartInputsVector, inputs)
        sg_out = self._ivec(b, SG.StartOutputsVector, outputs)
        sg_name = b.CreateString("main")
        SG.Start(b)
        SG.AddTensors(b, sg_t)
        SG.AddOperators(b, sg_o)
        SG.AddInputs(b, sg_in)
        SG.AddOutputs(b, sg_out)
        SG.AddName(b, sg_name)
        sg = SG.End(b)
        oc_offs = []
        for code in self.codes:
            OC.Start(b)
            OC.AddDeprecatedBuiltinCode(b, min(code, 127))
            OC.AddBuiltinCode(b, code)
            OC.AddVersion(b, 1)
            oc_offs.append(OC.End(b))
        m_oc = self._offvec(b, M.StartOperatorCodesVector, oc_offs)
        m_sg = self._offvec(b, M.StartSubgraphsVector, [sg])
        m_bu = self._offvec(b, M.StartBuffersVector, buf_offs)
        desc = b.CreateString("pqlr export")
        M.Start(b)
        M.AddVersion(b, 3)
        M.AddOperatorCodes(b, m_oc)
        M.AddSubgraphs(b, m_sg)
        M.AddBuffers(b, m_bu)
        M.AddDescription(b, desc)
        b.Finish(M.End(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _offvec(b, start, offs):
        start(b, len(offs))
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()


def _act(L: Layer) -> int:
    if L.act_min == -128 and L.act_max == 127:
        return 0
    if L.act_min == max(-128, L.out_zp) and L.act_max == 127:
        return 1
    from ..reference.tflite_ops import round_half_away
    six = L.out_zp + int(round_half_away(np.float32(6.0) / np.float32(L.out_scale)))
    if L.act_min == max(-128, L.out_zp) and L.act_max == min(127, six):
        return 3
    raise PqlrError(f"layer {L.name}: clamp [{L.act_min}, {L.act_max}] is not NONE, RELU or RELU6")


def _padding(L: Layer) -> int:
    from .tflite_reader import _same_pad
    if not any(L.pad):
        return 1
    (oh, ow), pad = _same_pad(L.in_shape[:2], L.kernel, L.stride, 0)
    # SAME when the outputs and the leading pads agree (a trailing pad no window reaches changes nothing)
    if (oh, ow) == L.out_shape[:2] and pad[:2] == tuple(L.pad[:2]):
        return 0
    raise PqlrError(f"layer {L.name}: padding {L.pad} is neither SAME nor VALID in TFLite's sense")


def export_tflite(graph: IntGraph, path: str | Path, softmax: bool = True) -> Path:
    """Write `graph` as an int8 TFLite model (see the module docstring); returns the path."""
    from tflite.BuiltinOperator import BuiltinOperator as B
    from tflite.BuiltinOptions import BuiltinOptions as BO
    C2, DW, FCO, P2, RO, SO = (_mod(n) for n in ("Conv2DOptions", "DepthwiseConv2DOptions", "FullyConnectedOptions",
                                                "Pool2DOptions", "ReshapeOptions", "SoftmaxOptions"))
    tb = TfliteBuilder()
    h, w, c = graph.input_shape
    cur = tb.tensor((1, h, w, c), scale=graph.input_scale, zp=graph.input_zp, name="input")
    first = cur
    cur_scale, cur_zp = graph.input_scale, graph.input_zp
    for i, L in enumerate(graph.layers):
        oh, ow, oc = L.out_shape
        if L.op in ("conv2d", "dwconv2d", "pwconv2d", "fc"):
            real = L.multiplier.astype(np.float64) * np.exp2(-L.shift.astype(np.float64))
            ws = (real * L.out_scale / cur_scale).astype(np.float32)
            if np.any(ws <= 0):
                raise PqlrError(f"layer {L.name}: a channel with multiplier 0 has no TFLite weight scale")
            bias = tb.tensor((oc,), INT32, scale=(np.float64(cur_scale) * ws).astype(np.float32),
                             zp=np.zeros(oc, np.int64), data=L.bias.astype("<i4"), name=f"{L.name}/bias")
            act = _act(L)
            if L.op == "fc":
                wt = tb.tensor((oc, L.weights_per_channel), scale=ws, zp=np.zeros(oc, np.int64),
                               data=L.weights.reshape(oc, -1).astype(np.int8), name=f"{L.name}/weights")
                out = tb.tensor((1, oc), scale=L.out_scale, zp=L.out_zp, name=L.name)
                tb.op(B.FULLY_CONNECTED, [cur, wt, bias], [out], BO.FullyConnectedOptions,
                      lambda b, a=act: (FCO.Start(b), FCO.AddFusedActivationFunction(b, a), FCO.End(b))[-1])
            elif L.op == "dwconv2d":
                kh, kw = L.kernel
                wt = tb.tensor((1, kh, kw, oc), scale=ws, zp=np.zeros(oc, np.int64), qdim=3,
                               data=np.ascontiguousarray(L.weights.transpose(1, 2, 0)[None]).astype(np.int8),
                               name=f"{L.name}/weights")
                out = tb.tensor((1, oh, ow, oc), scale=L.out_scale, zp=L.out_zp, name=L.name)
                pad, (sh, sw) = _padding(L), L.stride
                tb.op(B.DEPTHWISE_CONV_2D, [cur, wt, bias], [out], BO.DepthwiseConv2DOptions,
                      lambda b, a=act, p=pad, sh=sh, sw=sw: (DW.Start(b), DW.AddPadding(b, p), DW.AddStrideH(b, sh),
                                                            DW.AddStrideW(b, sw), DW.AddDepthMultiplier(b, 1),
                                                            DW.AddFusedActivationFunction(b, a),
                                                            DW.AddDilationHFactor(b, 1), DW.AddDilationWFactor(b, 1),
                                                            DW.End(b))[-1])
            else:
                kh, kw = L.kernel
                cin = L.in_shape[2]
                wt = tb.tensor((oc, kh, kw, cin), scale=ws, zp=np.zeros(oc, np.int64),
                               data=L.weights.reshape(oc, kh, kw, cin).astype(np.int8), name=f"{L.name}/weights")
                out = tb.tensor((1, oh, ow, oc), scale=L.out_scale, zp=L.out_zp, name=L.name)
                pad, (sh, sw) = _padding(L), L.stride
                tb.op(B.CONV_2D, [cur, wt, bias], [out], BO.Conv2DOptions,
                      lambda b, a=act, p=pad, sh=sh, sw=sw: (C2.Start(b), C2.AddPadding(b, p), C2.AddStrideH(b, sh),
                                                            C2.AddStrideW(b, sw), C2.AddFusedActivationFunction(b, a),
                                                            C2.AddDilationHFactor(b, 1), C2.AddDilationWFactor(b, 1),
                                                            C2.End(b))[-1])
            cur_scale, cur_zp = L.out_scale, L.out_zp
        elif L.op == "avgpool":
            if L.out_shape[:2] != (1, 1):
                raise PqlrError(f"layer {L.name}: only a global average pool is written to TFLite")
            ih, iw, _ = L.in_shape
            out = tb.tensor((1, 1, 1, oc), scale=cur_scale, zp=cur_zp, name=L.name)   # TFLite: input's quantisation
            tb.op(B.AVERAGE_POOL_2D, [cur], [out], BO.Pool2DOptions,
                  lambda b, ih=ih, iw=iw: (P2.Start(b), P2.AddPadding(b, 1), P2.AddStrideH(b, 1), P2.AddStrideW(b, 1),
                                           P2.AddFilterHeight(b, ih), P2.AddFilterWidth(b, iw),
                                           P2.AddFusedActivationFunction(b, 0), P2.End(b))[-1])
        elif L.op == "reshape":
            shape = tb.tensor((4,), INT32, data=np.array([1, oh, ow, oc], "<i4"), name=f"{L.name}/shape")
            out = tb.tensor((1, oh, ow, oc), scale=cur_scale, zp=cur_zp, name=L.name)
            tb.op(B.RESHAPE, [cur, shape], [out])
        else:
            raise PqlrError(f"layer {i} ({L.op}): no TFLite export for this op yet")
        cur = out
    if softmax:
        out = tb.tensor(tb.tensors[cur]["shape"], scale=1.0 / 256, zp=-128, name="softmax")
        tb.op(B.SOFTMAX, [cur], [out], BO.SoftmaxOptions,
              lambda b: (SO.Start(b), SO.AddBeta(b, 1.0), SO.End(b))[-1])
        cur = out
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tb.finish([first], [cur]))
    return path
