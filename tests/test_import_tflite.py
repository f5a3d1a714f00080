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
    audio = np.clip(np.concatenate(pieces), -32768, 32767).astype(np.int16).tobytes()
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


@pytest.mark.parametrize("name", NAMES)
def test_microwakeword_bit_exact_over_1000_streaming_steps(name, feats):
    res = import_tflite(MODELS / f"{name}.tflite")
    g = res.graph
    assert g.streaming and g.rounding == "mixed"
    oracle, ours = TfliteOracle(MODELS / f"{name}.tflite"), Streamer(g)
    for k, x in enumerate(step_inputs(g, feats, 1000)):
        want = oracle.step(x)
        out, tensors = ours.step(x, dump=True)
        for li, t in enumerate(res.layer_tensors):
            ref = oracle.tensor(t).reshape(tensors[li + 1].shape)
            assert np.array_equal(tensors[li + 1], ref), f"step {k}, layer {li} ({g.layers[li].op})"
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
def test_qemu_streams_okay_nabu_bit_exact(tmp_path, feats):
    """okay_nabu (MixConv, 6 state buffers, double rounding) on the emulated RV32IMAC board over a pty, tuned
    kernels, 300 steps, state carried by the firmware; and it measured every step."""
    g = import_tflite(MODELS / "okay_nabu.tflite").graph
    fc = max(i for i, L in enumerate(g.layers) if L.op == "fc") + 1
    g = _truncated(g, fc)
    xs = np.stack(step_inputs(g, feats, 300))
    got, art, res = _firmware_run(tmp_path, g, xs, board_name="rv32-virt", kernels="rv32")
    s = Streamer(g)
    assert np.array_equal(got, np.stack([s.step(x) for x in xs]))
    assert all(i and i > 0 for i in res.instret)
    assert res.ram["arena"] == art.arena_bytes
