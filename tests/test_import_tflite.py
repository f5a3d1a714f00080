"""`pqlr import`: TFLite models read into pqlr's integer graph, bit-exact with a TFLite interpreter.

The models are the four microWakeWord wake words shipped in the PyPI package pymicro-wakeword (streaming int8
models with state variables and, in okay_nabu, MixConv blocks); the oracle is ai-edge-litert's interpreter on its
reference kernels. Both come with the `import` extra, which `make test` installs. Every layer's output is compared
with the TFLite tensor it stands for, on every step, with the models' state carried across 1,000 steps of real
speech features (espeak-ng through microWakeWord's own front end, pymicro-features) and noise.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite", reason="pip install -e '.[import]' (the tflite flatbuffer schema)")
pytest.importorskip("ai_edge_litert", reason="pip install -e '.[import]' (the TFLite interpreter oracle)")
mww = pytest.importorskip("pymicro_wakeword", reason="pip install -e '.[import]' (the microWakeWord models)")

from hostside.graph import double_round  # noqa: E402
from hostside.importer import import_tflite  # noqa: E402
from hostside.importer.oracle import TfliteOracle  # noqa: E402
from hostside.importer.tflite_reader import TfliteImportError, tflite_multiplier  # noqa: E402
from hostside.reference.interpreter import Streamer  # noqa: E402

MODELS = Path(mww.__file__).parent / "models"
NAMES = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")
PHRASES = ("alexa", "hey jarvis", "hey mycroft", "okay nabu", "the weather is nice today", "turn on the lights")


def speech_features(seed: int = 0) -> np.ndarray:
    """[frames, 40] float features of espeak-ng speech through microWakeWord's front end (10 ms frames)."""
    from pymicro_features import MicroFrontend
    from hostside.data.corpus import resample
    from hostside.data.engines import Espeak
    eng = Espeak()
    if not eng.available():
        pytest.skip("espeak-ng is not installed (make deps)")
    rng = np.random.default_rng(seed)
    pieces = []
    for text in PHRASES:
        a, sr = eng.speak(text, "en-us+m1", rng)
        a = resample(a.astype(np.float32), sr, 16000)
        pieces += [np.zeros(4000, np.float32), a]
    audio = np.clip(np.concatenate(pieces) * 32767, -32768, 32767).astype(np.int16).tobytes()   # [-1, 1) → PCM
    fe, feats, i = MicroFrontend(), [], 0
    while i + 320 <= len(audio):
        r = fe.process_samples(audio[i:i + 320])
        i += r.samples_read * 2
        if r.features:
            feats.append(r.features)
    return np.array(feats, np.float32)


@pytest.fixture(scope="module")
def feats():
    return speech_features()


def step_inputs(g, feats: np.ndarray, steps: int, seed: int = 1):
    """`steps` int8 inputs: the speech features (quantised as pymicro-wakeword does), then noise."""
    rng = np.random.default_rng(seed)
    n = g.input_shape[0]
    q = np.clip(np.round(feats / g.input_scale + g.input_zp), -128, 127).astype(np.int8)
    out = [q[i: i + n] for i in range(0, len(q) - n + 1, n)]
    while len(out) < steps:
        out.append(np.clip(rng.normal(-60, 45, (n, 40)), -128, 127).astype(np.int8))
    return [x.reshape(g.input_shape) for x in out[:steps]]


def step_both(res, oracle, ours, x, where: str = ""):
    """One step through TFLite's interpreter and pqlr's reference, every layer compared with the tensor it stands
    for; returns (pqlr's output, TFLite's output)."""
    want = oracle.step(x)
    out, tensors = ours.step(x.reshape(res.graph.input_shape), dump=True)
    for li, t in enumerate(res.layer_tensors):
        assert np.array_equal(tensors[li + 1].reshape(-1), oracle.tensor(t).reshape(-1)), \
            f"{where}layer {li} ({res.graph.layers[li].op})"
    return out, want


@pytest.mark.parametrize("name", NAMES)
def test_microwakeword_bit_exact_over_1000_streaming_steps(name, feats):
    res = import_tflite(MODELS / f"{name}.tflite")
    g = res.graph
    assert g.streaming and g.rounding == "mixed"
    oracle, ours = TfliteOracle(MODELS / f"{name}.tflite"), Streamer(g)
    for k, x in enumerate(step_inputs(g, feats, 1000)):
        out, want = step_both(res, oracle, ours, x, f"step {k}, ")
        got = out.astype(np.int16) + g.output["offset"]
        assert np.array_equal(got, want.astype(np.int16)), f"step {k}"


def test_output_moves_on_speech(feats):
    """The streamed wake-word probability is not constant over the speech (else the test above proves little)."""
    g = import_tflite(MODELS / "okay_nabu.tflite").graph
    s = Streamer(g)
    fc = [s.step(x, dump=True)[1][-2].reshape(-1)[0] for x in step_inputs(g, feats, 400)]
    assert len(set(fc)) > 20


def test_double_rounding_is_what_makes_it_exact(feats):
    """The same import with single rounding differs from TFLite in some layer within 300 steps: the rule matters."""
    name = "okay_nabu"
    res = import_tflite(MODELS / f"{name}.tflite", rounding="single")
    oracle, ours = TfliteOracle(MODELS / f"{name}.tflite"), Streamer(res.graph)
    diffs = 0
    for x in step_inputs(res.graph, feats, 300):
        oracle.step(x)
        _, tensors = ours.step(x, dump=True)
        diffs += sum(int((tensors[li + 1].reshape(-1) != oracle.tensor(t).reshape(-1)).sum())
                     for li, t in enumerate(res.layer_tensors))
        if diffs:
            break
    assert diffs > 0


def test_state_persists_and_resets(feats):
    g = import_tflite(MODELS / "alexa.tflite").graph
    s = Streamer(g)
    xs = step_inputs(g, feats, 60)
    first = [s.step(x, dump=True)[1][-2].copy() for x in xs]
    s.reset()
    again = [s.step(x, dump=True)[1][-2] for x in xs]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    fresh = [Streamer(g).step(x, dump=True)[1][-2] for x in xs]      # no state carried: differs somewhere
    assert any(not np.array_equal(a, b) for a, b in zip(first, fresh))


def test_mixconv_is_fused_into_one_depthwise_conv():
    res = import_tflite(MODELS / "okay_nabu.tflite")
    assert any("MixConv" in m for m in res.mapping)
    assert all(L.op != "stream" or L.weights.shape[1] == L.in_shape[2] for L in res.graph.layers)


def _patch_op(data: bytes, old: int, new: int) -> bytes:
    """Change the builtin code of operator code `old` to `new` in place (both the int32 and the int8 field)."""
    import tflite
    m = tflite.Model.GetRootAsModel(data, 0)
    buf = bytearray(data)
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == old:
            for slot, fmt in ((10, "<i"), (4, "<b")):      # BuiltinCode (field 3), DeprecatedBuiltinCode (field 0)
                o = oc._tab.Offset(slot)
                if o:
                    struct.pack_into(fmt, buf, oc._tab.Pos + o, new)
    return bytes(buf)


def test_unsupported_op_is_refused_with_its_name_and_place(tmp_path):
    from tflite.BuiltinOperator import BuiltinOperator as B
    p = tmp_path / "tanh.tflite"
    p.write_bytes(_patch_op((MODELS / "alexa.tflite").read_bytes(), B.LOGISTIC, B.TANH))
    with pytest.raises(TfliteImportError) as e:
        import_tflite(p)
    msg = str(e.value)
    assert "op 43 TANH" in msg and "not supported" in msg and "LOGISTIC" in msg


def test_not_a_tflite_file(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\x00" * 64)
    with pytest.raises(TfliteImportError):
        import_tflite(p)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_or_damaged_tflite_is_one_clear_error(tmp_path, cut):
    """Truncated files and flipped bytes end in TfliteImportError (one line for the CLI), never another exception,
    or import a model that still matches TFLite's own reading of the same bytes."""
    data = (MODELS / "okay_nabu.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(TfliteImportError):
        import_tflite(p)
    rng = np.random.default_rng(int(cut * 10))
    bad = bytearray(data)
    for i in rng.integers(0, 4096, 8):                  # the tables, not only weights
        bad[int(i)] ^= 0xFF
    p.write_bytes(bytes(bad))
    try:
        import_tflite(p)
    except TfliteImportError:
        pass


def test_cli_import_refusal_is_one_line(tmp_path, capsys):
    from hostside.cli import main
    p = tmp_path / "x.tflite"
    p.write_bytes(b"TFL3" * 8)
    rc = main(["import", str(p), "--board", "host", "--out", str(tmp_path / "m" / "model.bin")])
    err = capsys.readouterr().err
    assert rc != 0 and "x.tflite" in err and "Traceback" not in err


def _gemmlowp(acc: int, M: int, s: int) -> int:
    """gemmlowp's MultiplyByQuantizedMultiplier transcribed with Python ints (C semantics spelled out)."""
    left, right = max(0, 31 - s), max(0, s - 31)
    x = acc * (1 << left)
    x = (x + 2**31) % 2**32 - 2**31
    ab = x * M
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) // (1 << 31)
    hi = q if ab + nudge >= 0 else -q
    mask = (1 << right) - 1
    rem, thr = hi & mask, (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> right) + (1 if rem > thr else 0)


def test_double_round_matches_gemmlowp_transcription():
    rng = np.random.default_rng(3)
    acc = rng.integers(-2**24, 2**24, 4000)
    M = rng.integers(2**30, 2**31, 4000)
    s = rng.integers(20, 50, 4000)
    got = double_round(acc, M, s)
    want = [_gemmlowp(int(a), int(m), int(k)) for a, m, k in zip(acc, M, s)]
    assert got.tolist() == want
    # ties: single rounding rounds half up once; double rounding can differ by one
    assert (got != (acc * M + (1 << (s - 1))) >> s).any()


def test_tflite_multiplier_rounds_half_away():
    # q·2^31 = 2^30 + 0.5 exactly: TFLite's std::round goes up, Python's round() would go to even
    real = (2**30 + 0.5) / 2**31 * 2.0**-8
    M, s = tflite_multiplier(real)
    assert (M, s) == (2**30 + 1, 39)


def _truncated(g, upto: int):
    """The graph's first `upto` layers as a graph of their own (its output: layer upto−1's tensor)."""
    from hostside.graph import IntGraph
    layers = g.layers[:upto]
    return IntGraph(input_shape=g.input_shape, input_scale=g.input_scale, input_zp=g.input_zp, layers=layers,
                    classes=tuple(f"out{i}" for i in range(layers[-1].out_shape[2])), rounding="mixed")


def _firmware_run(tmp_path, g, xs, board_name="host", kernels="ref"):
    from hostside.artifact import write_model_bin
    from hostside.boards import load_board
    from hostside.codegen import render_firmware
    from hostside.device.build import build_firmware
    from hostside.device.session import Session
    from hostside.device.transport import ProcessTransport
    from hostside.plan import make_plan
    board = load_board(board_name)
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels=kernels))
    if board_name == "host":
        t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
        try:
            return np.array(Session(t, art.model_sha256, timeout=30).run(xs).outputs), art
        finally:
            t.close()
    from hostside.device.qemu import QemuBoard, make_flash_image
    img = make_flash_image(board, tmp_path / "model.bin", tmp_path / "flash.img")
    with QemuBoard(board, fw, img) as transport:
        res = Session(transport, art.model_sha256, timeout=60).run(xs)
    return np.array(res.outputs), art, res


@pytest.mark.parametrize("kernels", ["ref", "rv32"])
@pytest.mark.parametrize("name", NAMES)
def test_host_firmware_streams_bit_exact(tmp_path, name, kernels, feats):
    """The C firmware (host build) keeps the state across 1,000 steps and equals the reference (itself equal to
    TFLite above), for the whole model and for the model cut after its fully connected layer (whose int8 logit
    moves with the speech, where the probability mostly sits at 0)."""
    g = import_tflite(MODELS / f"{name}.tflite").graph
    xs = np.stack(step_inputs(g, feats, 1000))
    fc = max(i for i, L in enumerate(g.layers) if L.op == "fc") + 1
    for sub, graph in (("whole", g), ("logit", _truncated(g, fc))):
        (tmp_path / sub).mkdir()
        got = _firmware_run(tmp_path / sub, graph, xs, kernels=kernels)[0]
        s = Streamer(graph)
        ref = np.stack([s.step(x) for x in xs])
        assert np.array_equal(got, ref), f"{sub}: first differing step {int(np.argmax((got != ref).any(axis=1)))}"
        if sub == "logit":
            assert len(np.unique(ref)) > 10


@pytest.mark.emulator
@pytest.mark.parametrize("name", NAMES)
def test_qemu_streams_bit_exact(tmp_path, name, feats):
    """Each microWakeWord model (okay_nabu: MixConv) on the emulated RV32IMAC board over a pty, tuned kernels, state
    carried by the firmware across 250 steps, cut after its fully connected layer so the compared output moves."""
    g = import_tflite(MODELS / f"{name}.tflite").graph
    fc = max(i for i, L in enumerate(g.layers) if L.op == "fc") + 1
    g = _truncated(g, fc)
    xs = np.stack(step_inputs(g, feats, 250))
    got, art, res = _firmware_run(tmp_path, g, xs, board_name="rv32-virt", kernels="rv32")
    s = Streamer(g)
    assert np.array_equal(got, np.stack([s.step(x) for x in xs]))
    assert all(i and i > 0 for i in res.instret)
    assert res.ram["arena"] == art.arena_bytes


# ---- models written with TFLite's schema (hostside/importer/tflite_writer.py), checked by the interpreter ----

def _one_op_model(tmp_path, name, code, in_shape, in_q, out_shape, out_q, otype=0, options=None):
    from hostside.importer.tflite_writer import TfliteBuilder
    tb = TfliteBuilder()
    x = tb.tensor(in_shape, scale=in_q[0], zp=in_q[1], name="x")
    y = tb.tensor(out_shape, scale=out_q[0], zp=out_q[1], name="y")
    tb.op(code, [x], [y], otype, options)
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(tb.finish([x], [y]))
    return p


def test_logistic_table_equals_tflite_on_every_int8_input(tmp_path):
    from tflite.BuiltinOperator import BuiltinOperator as B
    rng = np.random.default_rng(5)
    for trial in range(6):
        s, z = float(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 128))
        p = _one_op_model(tmp_path, f"logistic{trial}", B.LOGISTIC, (1, 256), (s, z), (1, 256), (1 / 256, -128))
        res = import_tflite(p)
        x = np.arange(-128, 128, dtype=np.int8)
        assert np.array_equal(Streamer(res.graph).step(x.reshape(res.graph.input_shape)),
                              TfliteOracle(p).step(x)), f"scale {s}, zero point {z}"


def test_softmax_equals_tflite(tmp_path):
    from tflite.BuiltinOperator import BuiltinOperator as B
    from tflite.BuiltinOptions import BuiltinOptions as BO
    import importlib
    SO = importlib.import_module("tflite.SoftmaxOptions")
    rng = np.random.default_rng(6)
    for trial in range(5):
        s, z, c = float(rng.uniform(0.02, 0.6)), int(rng.integers(-40, 40)), int(rng.integers(2, 40))
        p = _one_op_model(tmp_path, f"softmax{trial}", B.SOFTMAX, (1, c), (s, z), (1, c), (1 / 256, -128),
                          BO.SoftmaxOptions, lambda b: (SO.Start(b), SO.AddBeta(b, 1.0), SO.End(b))[-1])
        res = import_tflite(p)
        oracle = TfliteOracle(p)
        for _ in range(150):
            spread = int(rng.integers(1, 128))
            x = np.clip(rng.integers(-spread, spread + 1, c) + z, -128, 127).astype(np.int8)
            assert np.array_equal(Streamer(res.graph).step(x.reshape(res.graph.input_shape)), oracle.step(x))


def test_average_pool_equals_tflite(tmp_path):
    from tflite.BuiltinOperator import BuiltinOperator as B
    from tflite.BuiltinOptions import BuiltinOptions as BO
    import importlib
    P2 = importlib.import_module("tflite.Pool2DOptions")
    rng = np.random.default_rng(7)
    for trial, (h, w, act) in enumerate([(25, 5, 0), (7, 3, 1), (1, 9, 0)]):
        c, s, z = 8, 0.05, int(rng.integers(-20, 20))
        p = _one_op_model(tmp_path, f"pool{trial}", B.AVERAGE_POOL_2D, (1, h, w, c), (s, z), (1, 1, 1, c), (s, z),
                          BO.Pool2DOptions,
                          lambda b, h=h, w=w, a=act: (P2.Start(b), P2.AddPadding(b, 1), P2.AddStrideH(b, 1),
                                                      P2.AddStrideW(b, 1), P2.AddFilterHeight(b, h),
                                                      P2.AddFilterWidth(b, w), P2.AddFusedActivationFunction(b, a),
                                                      P2.End(b))[-1])
        res = import_tflite(p)
        oracle = TfliteOracle(p)
        for _ in range(100):
            x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
            assert np.array_equal(Streamer(res.graph).step(x.reshape(res.graph.input_shape)), oracle.step(x))


@pytest.fixture(scope="module")
def mlperf_tflite(tmp_path_factory):
    """pqlr's DS-CNN in the MLPerf Tiny KWS geometry (49×10 MFCC, 64 channels, 4 blocks, 12 classes), calibrated
    int8, exported with TFLite's schema, SOFTMAX appended: CONV_2D (10×4, stride 2, SAME), DEPTHWISE_CONV_2D,
    1×1 CONV_2D, AVERAGE_POOL_2D, FULLY_CONNECTED, SOFTMAX — the MLPerf KWS model's ops."""
    import torch
    from hostside.compress.quant import build_quantnet
    from hostside.importer.tflite_writer import export_tflite
    from hostside.models import build_model
    from hostside.models.ops import float_ops
    torch.manual_seed(0)
    m = build_model("dscnn-mlperf", (49, 10), 12).eval()
    x = np.random.default_rng(0).normal(0, 3, size=(48, 49, 10)).astype(np.float32)
    g = build_quantnet(float_ops(m), (49, 10), 8, 8, 8, calib=x).to_int_graph()
    p = export_tflite(g, tmp_path_factory.mktemp("mlperf") / "dscnn_mlperf.tflite")
    return p, np.stack([g.quantize_input(f) for f in x])


def test_mlperf_geometry_bit_exact_with_tflite(mlperf_tflite):
    p, xs = mlperf_tflite
    res = import_tflite(p)
    ops = [L.op for L in res.graph.layers]
    assert ops[0] == "conv2d" and "meanpool" in ops and ops[-1] == "softmax"
    oracle, ours = TfliteOracle(p), Streamer(res.graph)
    for k, x in enumerate(xs[:24]):
        out, want = step_both(res, oracle, ours, x, f"input {k}, ")
        assert np.array_equal(out, want)


@pytest.mark.parametrize("kernels", ["ref", "rv32"])
def test_mlperf_geometry_on_host_firmware(tmp_path, mlperf_tflite, kernels):
    """The imported MLPerf-geometry model (average pool and softmax by TFLite's rules, double rounding) in the C
    firmware equals the reference, itself equal to TFLite above."""
    p, xs = mlperf_tflite
    g = import_tflite(p).graph
    got = _firmware_run(tmp_path, g, xs, kernels=kernels)[0]
    assert np.array_equal(got, np.stack([Streamer(g).step(x.reshape(g.input_shape)) for x in xs]))


@pytest.mark.emulator
def test_mlperf_geometry_on_qemu(tmp_path, mlperf_tflite):
    p, xs = mlperf_tflite
    g = import_tflite(p).graph
    got, art, res = _firmware_run(tmp_path, g, xs[:8], board_name="rv32-virt", kernels="rv32")
    assert np.array_equal(got, np.stack([Streamer(g).step(x.reshape(g.input_shape)) for x in xs[:8]]))
    assert res.ram["arena"] == art.arena_bytes


def test_softmax_and_logistic_on_host_firmware(tmp_path):
    """The C softmax (gemmlowp transcribed) and the logistic table against the reference on wide-spread inputs."""
    import importlib
    from tflite.BuiltinOperator import BuiltinOperator as B
    from tflite.BuiltinOptions import BuiltinOptions as BO
    SO = importlib.import_module("tflite.SoftmaxOptions")
    rng = np.random.default_rng(8)
    for trial, (c, s) in enumerate([(12, 0.3), (37, 0.05), (256, 0.5)]):
        p = _one_op_model(tmp_path, f"sm{trial}", B.SOFTMAX, (1, c), (s, 3), (1, c), (1 / 256, -128),
                          BO.SoftmaxOptions, lambda b: (SO.Start(b), SO.AddBeta(b, 1.0), SO.End(b))[-1])
        g = import_tflite(p).graph
        xs = np.stack([np.clip(rng.integers(-k, k + 1, c), -128, 127).astype(np.int8).reshape(g.input_shape)
                       for k in rng.integers(1, 128, 150)])
        (tmp_path / f"fw{trial}").mkdir()
        got = _firmware_run(tmp_path / f"fw{trial}", g, xs)[0]
        want = np.stack([TfliteOracle(p).step(x) for x in xs])
        assert np.array_equal(got, want)
    p = _one_op_model(tmp_path, "lg", B.LOGISTIC, (1, 256), (0.07, -9), (1, 256), (1 / 256, -128))
    g = import_tflite(p).graph
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, *g.input_shape)
    (tmp_path / "fwl").mkdir()
    assert np.array_equal(_firmware_run(tmp_path / "fwl", g, x)[0][0], TfliteOracle(p).step(x))


def test_c_double_rounding_equals_gemmlowp_on_extremes(tmp_path):
    """pqlr.h's pqlr_mul_twice (the firmware's double rounding) against hostside.graph.double_round on int32 extremes,
    left and right shifts, compiled with the host's cc."""
    import shutil
    import subprocess
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler")
    core = Path(__file__).resolve().parents[1] / "firmware_templates" / "core"
    (tmp_path / "model.h").write_text("#define PQLR_DOUBLE_ROUNDING 1\n#define PQLR_MODEL_CONST const\n")
    rng = np.random.default_rng(9)
    n = 20000
    acc = np.concatenate([rng.integers(-2**31, 2**31, n // 2), rng.integers(-70000, 70000, n // 2)])
    acc[:4] = [-2**31, 2**31 - 1, 0, -1]
    M = rng.integers(2**30, 2**31, n)
    s = rng.integers(20, 63, n)                 # about a quarter left shifts (s < 31), the rest right shifts
    src = tmp_path / "t.c"
    src.write_text('#include <stdio.h>\n#include "pqlr.h"\nuint8_t pqlr_round_twice = 1;\n'
                   "int main(void) { long a, m, s; while (scanf(\"%ld %ld %ld\", &a, &m, &s) == 3) "
                   "printf(\"%d\\n\", pqlr_mul_twice((int32_t)a, (int32_t)m, (int32_t)s)); return 0; }\n")
    exe = tmp_path / "t"
    subprocess.run([cc, "-O2", "-std=c99", "-I", str(tmp_path), "-I", str(core), str(src), "-o", str(exe)], check=True)
    # left shifts wrap in int32 as TFLite's x * (1 << left) does; keep those cases in range like real layers
    small = s < 31
    acc[small] = acc[small] >> (31 - s[small])
    out = subprocess.run([str(exe)], input="\n".join(f"{a} {m} {k}" for a, m, k in zip(acc, M, s)), text=True,
                         capture_output=True, check=True).stdout.split()
    assert [int(v) for v in out] == double_round(acc, M, s).tolist()


def _residual_model(tmp_path, seed: int, pool_padding: int = 1):
    """input → CONV_2D 3×3 SAME RELU → ADD(conv, input) → MAX_POOL_2D 2×2/2 → 1×1 CONV_2D → ADD(a constant) →
    FULLY_CONNECTED → output, with random int8 weights and plausible scales (TFLite's schema, our writer)."""
    import importlib
    from tflite.BuiltinOperator import BuiltinOperator as B
    from tflite.BuiltinOptions import BuiltinOptions as BO
    from hostside.importer.tflite_writer import TfliteBuilder
    C2, P2, AO, FO = (importlib.import_module(f"tflite.{n}") for n in ("Conv2DOptions", "Pool2DOptions", "AddOptions",
                                                                       "FullyConnectedOptions"))
    rng = np.random.default_rng(seed)
    tb = TfliteBuilder()
    H, W, C = 8, 6, 16

    def conv(x, cin, cout, k, scale_out, act):
        ws = rng.uniform(0.005, 0.02, cout).astype(np.float32)
        s_in = tb.tensors[x]["scale"][0]
        w = tb.tensor((cout, k, k, cin), scale=ws, zp=np.zeros(cout, np.int64),
                      data=rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8))
        b = tb.tensor((cout,), 2, scale=(np.float64(s_in) * ws).astype(np.float32), zp=np.zeros(cout, np.int64),
                      data=rng.integers(-2000, 2000, cout).astype("<i4"))
        y = tb.tensor((1, H if k == 3 else H // 2, W if k == 3 else W // 2, cout), scale=scale_out,
                      zp=-128 if act else int(rng.integers(-10, 10)))
        tb.op(B.CONV_2D, [x, w, b], [y], BO.Conv2DOptions,
              lambda bb, a=act: (C2.Start(bb), C2.AddPadding(bb, 0), C2.AddStrideH(bb, 1), C2.AddStrideW(bb, 1),
                                 C2.AddFusedActivationFunction(bb, a), C2.AddDilationHFactor(bb, 1),
                                 C2.AddDilationWFactor(bb, 1), C2.End(bb))[-1])
        return y

    def add(a, b, scale_out, act=0):
        y = tb.tensor(tb.tensors[a]["shape"], scale=scale_out, zp=int(rng.integers(-20, 20)))
        tb.op(B.ADD, [a, b], [y], BO.AddOptions,
              lambda bb, a_=act: (AO.Start(bb), AO.AddFusedActivationFunction(bb, a_), AO.End(bb))[-1])
        return y

    x = tb.tensor((1, H, W, C), scale=0.05, zp=int(rng.integers(-20, 20)), name="input")
    c1 = conv(x, C, C, 3, float(rng.uniform(0.15, 0.4)), 1)
    r1 = add(c1, x, float(rng.uniform(0.1, 0.4)), 1)
    p1 = tb.tensor((1, H // 2, W // 2, C), scale=tb.tensors[r1]["scale"][0], zp=tb.tensors[r1]["zp"][0])
    tb.op(B.MAX_POOL_2D, [r1], [p1], BO.Pool2DOptions,
          lambda bb: (P2.Start(bb), P2.AddPadding(bb, pool_padding), P2.AddStrideH(bb, 2), P2.AddStrideW(bb, 2),
                      P2.AddFilterHeight(bb, 2), P2.AddFilterWidth(bb, 2), P2.AddFusedActivationFunction(bb, 0),
                      P2.End(bb))[-1])
    c2 = conv(p1, C, C, 1, float(rng.uniform(0.1, 0.3)), 0)
    k = tb.tensor((1, H // 2, W // 2, C), scale=0.07, zp=3, data=rng.integers(-128, 128, (H // 2) * (W // 2) * C)
                  .astype(np.int8))
    a2 = add(c2, k, float(rng.uniform(0.1, 0.3)))
    ws = np.float32(0.01)
    n_in = (H // 2) * (W // 2) * C
    fw = tb.tensor((10, n_in), scale=[ws], zp=[0], data=rng.integers(-127, 128, (10, n_in)).astype(np.int8))
    fb = tb.tensor((10,), 2, scale=[np.float32(tb.tensors[a2]["scale"][0] * ws)], zp=[0],
                   data=rng.integers(-500, 500, 10).astype("<i4"))
    out = tb.tensor((1, 10), scale=0.5, zp=0)
    tb.op(B.FULLY_CONNECTED, [a2, fw, fb], [out], BO.FullyConnectedOptions,
          lambda bb: (FO.Start(bb), FO.AddFusedActivationFunction(bb, 0), FO.End(bb))[-1])
    p = tmp_path / f"residual{seed}.tflite"
    p.write_bytes(tb.finish([x], [out]))
    return p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_add_and_max_pool_bit_exact(tmp_path, seed):
    p = _residual_model(tmp_path, seed)
    res = import_tflite(p)
    g = res.graph
    assert [L.op for L in g.layers] == ["conv2d", "qadd", "maxpool", "pwconv2d", "qadd", "fc"]
    assert g.layers[1].skip == 0 and g.layers[4].skip == -1
    oracle = TfliteOracle(p)
    rng = np.random.default_rng(seed)
    xs = np.clip(rng.normal(0, 40, (40,) + g.input_shape), -128, 127).astype(np.int8)
    for x in xs:
        out, want = step_both(res, oracle, Streamer(g), x)
        assert np.array_equal(out, want)
    assert len(np.unique(np.stack([Streamer(g).step(x) for x in xs]))) > 10
    got = _firmware_run(tmp_path, g, xs)[0]
    assert np.array_equal(got, np.stack([oracle.step(x) for x in xs]))


def test_mlperf_reference_model_if_supplied(tmp_path):
    """MLPerf Tiny's own kws_ref_model.tflite, when PQLR_MLPERF_TFLITE points at it (pqlr does not ship or download
    it): every layer == TFLite on 50 inputs, and the C firmware (tuned kernels) == the reference."""
    import os
    path = os.environ.get("PQLR_MLPERF_TFLITE")
    if not path:
        pytest.skip("set PQLR_MLPERF_TFLITE to MLPerf Tiny's kws_ref_model.tflite (github.com/mlcommons/tiny, "
                    "benchmark/training/keyword_spotting/trained_models/) to run this check")
    res = import_tflite(path)
    g = res.graph
    oracle = TfliteOracle(path)
    rng = np.random.default_rng(10)
    xs = rng.integers(-128, 128, (50,) + g.input_shape).astype(np.int8)
    for x in xs:
        out, want = step_both(res, oracle, Streamer(g), x)
        assert np.array_equal(out, want)
    got = _firmware_run(tmp_path, g, xs[:10], kernels="rv32")[0]
    assert np.array_equal(got, np.stack([Streamer(g).step(x) for x in xs[:10]]))
