"""The integer-only transformer (#5): its ops against float, the QAT model's integer forward against the
numpy reference over random configurations (hypothesis), the DAG-aware arena plan executed byte for byte,
model.bin v2 round trips and refusals, and the C kernels bit-exact on the host and on the emulated board."""
import dataclasses
import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostside.artifact import HEADER_SIZE, LAYER_FMT, LAYER_SIZE, read_model_bin, write_model_bin
from hostside.boards import load_board
from hostside.compress.qtransformer import build_quant_transformer, gelu_table
from hostside.errors import ArtifactError, BudgetError
from hostside.graph import EXP_BITS, LN_BITS, Layer
from hostside.models.transformer import KWSTransformer, TransformerConfig
from hostside.plan import make_plan
from hostside.reference import interpreter as ref
from hostside.reference import run, run_batch

from test_properties import _fix_checksums


def tiny(seed=0, T=8, F=10, dim=16, heads=2, mlp=32, layers=2, n_classes=4, wbits=8, abits=8, n=24):
    torch.manual_seed(seed)
    m = KWSTransformer(TransformerConfig(input_shape=(T, F), n_classes=n_classes, dim=dim, layers=layers,
                                         heads=heads, mlp_dim=mlp, dropout=0.0)).eval()
    with torch.no_grad():                       # larger positions and biases than at init: wider ranges
        m.pos.normal_(0, 0.5)
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
    x = np.random.default_rng(seed).normal(0, 2, size=(n, T, F)).astype(np.float32)
    return m, build_quant_transformer(m, x[: n // 2], wbits=wbits, abits=abits), x


# --- the integer ops against their float meaning -----------------------------------------------------------

def test_integer_exp_tracks_exp():
    r = -np.arange(0, 20 * 2**EXP_BITS, 7)
    e = ref.int_exp(r)
    approx = e / ref.int_exp(np.array([0]))[0]
    exact = np.exp(r / 2**EXP_BITS)
    assert np.abs(approx - exact).max() < 0.01            # I-BERT's polynomial: well under 1 % of exp(0)
    assert np.all(np.diff(e) <= 0)                         # monotone


def test_layernorm_tracks_float():
    rng = np.random.default_rng(1)
    C = 24
    x = rng.integers(-128, 128, size=(5, 1, C)).astype(np.int8)
    L = Layer("ln", "layernorm", (5, 1, C), (5, 1, C), 0, 0, -128, 127, 1.0, 1.0,
              multiplier=np.full(C, 1 << 30, np.int32), shift=np.full(C, 30 + LN_BITS - 4, np.int32),
              weights=np.ones((C, 1), np.int8), bias=np.zeros(C, np.int32))
    y = ref.layernorm(x, L).astype(np.float64).reshape(5, C)          # 16 units per standard deviation
    xf = x.reshape(5, C).astype(np.float64)
    want = (xf - xf.mean(1, keepdims=True)) / xf.std(1, keepdims=True) * 16
    assert np.abs(y - np.clip(want, -128, 127)).max() <= 1.0


def test_layernorm_of_a_constant_is_the_bias():
    C = 8
    L = Layer("ln", "layernorm", (2, 1, C), (2, 1, C), 0, 3, -128, 127, 1.0, 1.0,
              multiplier=np.full(C, 1 << 30, np.int32), shift=np.full(C, 30, np.int32),
              weights=np.full((C, 1), 100, np.int8), bias=np.arange(C, dtype=np.int32))
    y = ref.layernorm(np.full((2, 1, C), 17, np.int8), L)
    assert np.array_equal(y[0, 0], np.arange(C) + 3)       # sd = 0 → n = 0 → bias + zp, no division by 0


@pytest.mark.parametrize("s_in,zp_in", [(0.02, 0), (0.05, -20), (0.2, 10), (1.0, -128)])
def test_gelu_table_tracks_gelu(s_in, zp_in):
    s_out, zp_out = 4 * s_in / 3, -90
    t = gelu_table(s_in, zp_in, s_out, zp_out).astype(np.float64)
    x = (np.arange(-128, 128) - zp_in) * s_in
    want = np.clip(np.round(0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))) / s_out) + zp_out, -128, 127)
    assert np.abs(t - want).max() <= 2                      # I-BERT's erf polynomial: within 2 output steps


def test_attention_tracks_float_softmax():
    m, net, x = tiny(3, layers=1)
    g = net.to_int_graph()
    L = next(l for l in g.layers if l.op == "attention")
    i = g.layers.index(L)
    _, ts = run(g, g.quantize_input(x[0]), dump=True)
    qkv = ts[i].reshape(-1, L.in_shape[2]).astype(np.float64) - L.in_zp
    T, D = qkv.shape[0], L.out_shape[2]
    hd = D // L.heads
    out = np.empty((T, D))
    for h in range(L.heads):
        q, k, v = (qkv[:, j * D + h * hd: j * D + (h + 1) * hd] * L.in_scale for j in range(3))
        a = q @ k.T / math.sqrt(hd)
        p = np.exp(a - a.max(1, keepdims=True))
        out[:, h * hd:(h + 1) * hd] = (p / p.sum(1, keepdims=True)) @ v
    want = np.clip(np.round(out / L.out_scale) + L.out_zp, -128, 127)
    assert np.abs(ts[i + 1].reshape(T, D).astype(np.float64) - want).max() <= 2


# --- lowering and reference over random transformers --------------------------------------------------------

@st.composite
def configs(draw):
    heads = draw(st.integers(1, 3))
    return dict(seed=draw(st.integers(0, 2**16)), T=draw(st.integers(2, 12)), F=draw(st.integers(2, 10)),
                heads=heads, dim=heads * draw(st.integers(1, 6)), mlp=draw(st.integers(1, 24)),
                layers=draw(st.integers(1, 2)), n_classes=draw(st.integers(2, 5)),
                wbits=draw(st.sampled_from([4, 8])), abits=draw(st.sampled_from([4, 8])),
                mode=draw(st.sampled_from(["tiled", "tiled", "xip"])),
                tile_budget=draw(st.sampled_from([None, 300, 700])))


def _simulate_arena(art, xq):
    """Run the graph with every tensor at its planned offset in one byte array (outputs written over whatever
    the plan says they may overwrite, scratch filled with garbage): a plan that lets a live tensor be
    overwritten changes the result."""
    g = art.graph
    arena = np.zeros(art.arena_bytes, dtype=np.int8)
    rng = np.random.default_rng(0)
    sizes = [int(np.prod(s)) for s in g.tensor_shapes()]
    off = art.tensor_offsets
    arena[off[0]: off[0] + sizes[0]] = xq.reshape(-1)
    for i, L in enumerate(g.layers):
        x = arena[off[i]: off[i] + sizes[i]].copy().reshape(L.in_shape)
        other = None
        if L.op == "add" and L.skip >= 0:
            other = arena[off[L.skip]: off[L.skip] + sizes[L.skip]].copy().reshape(L.in_shape)
        if art.scratch_bytes[i]:
            s0 = art.scratch_offsets[i]
            arena[s0: s0 + art.scratch_bytes[i]] = rng.integers(-128, 128, art.scratch_bytes[i])
        y = ref.add(x, L, other) if L.op == "add" else ref.KERNELS[L.op](x, L)
        arena[off[i + 1]: off[i + 1] + sizes[i + 1]] = y.reshape(-1)
    return arena[off[-1]: off[-1] + sizes[-1]].copy()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(p=configs())
def test_lowering_reference_plan_and_round_trip(p, tmp_path_factory):
    _, net, x = tiny(p["seed"], p["T"], p["F"], p["dim"], p["heads"], p["mlp"], p["layers"], p["n_classes"],
                     p["wbits"], p["abits"], n=12)
    g = net.to_int_graph()
    with torch.no_grad():
        y, _, _ = net.forward_int(torch.from_numpy(x).double())
    xs = np.stack([g.quantize_input(f) for f in x])
    out = run_batch(g, xs)
    assert np.array_equal(y.numpy().astype(np.int64), out.astype(np.int64))     # bit for bit
    board = dataclasses.replace(load_board("rv32-virt"), tile_buffer_budget_bytes=4096)
    try:
        plan = make_plan(g, board, mode=p["mode"], tile_budget=p["tile_budget"] if p["mode"] == "tiled" else None)
    except BudgetError as e:
        assert "tile budget" in str(e)
        return
    if plan.mode == "tiled":
        assert all(t.size <= (p["tile_budget"] or board.tile_buffer_budget_bytes) for t in plan.tiles)
    art = write_model_bin(tmp_path_factory.mktemp("tf") / "model.bin", g, plan)
    assert np.array_equal(run_batch(art.graph, xs), out)                       # round trip
    assert art.graph.input_scale == g.input_scale                               # float64: inputs round alike
    for xq, want in zip(xs[:4], out):
        assert np.array_equal(_simulate_arena(art, xq), want)                    # the plan, executed in place


def test_residual_tensor_is_kept_alive():
    """The planner never lets a layer overwrite a tensor that a later add still reads."""
    _, net, _ = tiny(5, layers=2)
    g = net.to_int_graph()
    plan = make_plan(g, load_board("rv32-virt"))
    last = g.last_use()
    for i, L in enumerate(g.layers):
        if plan.inplace[i] and L.op != "reshape":
            assert last[i] == i, f"layer {i} ({L.op}) overwrites t{i}, which layer {last[i]} still reads"
    adds = [L for L in g.layers if L.op == "add" and L.skip >= 0]
    assert len(adds) == 4 and all(last[L.skip] > L.skip for L in adds)


def test_reader_refuses_in_place_over_a_residual(tmp_path):
    """Mark the first layer norm of a block (whose input the residual add reads later) in place and move its
    output onto its input, with valid checksums: the reader refuses the plan."""
    _, net, _ = tiny(6, layers=1)
    g = net.to_int_graph()
    art = write_model_bin(tmp_path / "m.bin", g, make_plan(g, load_board("rv32-virt"), mode="xip"))
    i = next(k for k, L in enumerate(g.layers) if L.op == "layernorm")
    b = bytearray((tmp_path / "m.bin").read_bytes())
    lt = struct.unpack_from("<I", b, 52)[0]
    e = lt + i * LAYER_SIZE
    b[e + 2] |= 1
    in_off = struct.calcsize(LAYER_FMT[:LAYER_FMT.index("2I")])             # the entry's u32 in/out offsets
    struct.pack_into("<I", b, e + in_off + 4, art.tensor_offsets[i])        # output offset := input offset
    struct.pack_into("<I", b, e + LAYER_SIZE + in_off, art.tensor_offsets[i])   # and the next layer reads it there
    with pytest.raises(ArtifactError, match="still read by a later layer"):
        read_model_bin(_fix_checksums(b))


def test_fuzz_transformer_model_bin():
    """2·10⁴ mutated/truncated transformer files (the new op fields): only ArtifactError."""
    _, net, _ = tiny(7, layers=1)
    g = net.to_int_graph()
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        write_model_bin(Path(d) / "m.bin", g, make_plan(g, load_board("rv32-virt")))
        data = (Path(d) / "m.bin").read_bytes()
    rng = np.random.default_rng(11)
    for i in range(20_000):
        b = bytearray(data)
        if i % 4 == 0:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(HEADER_SIZE, HEADER_SIZE + LAYER_SIZE * len(g.layers)))] = int(rng.integers(0, 256))
        try:
            read_model_bin(_fix_checksums(b) if i % 4 else bytes(b))
        except ArtifactError as exc:
            assert "malformed (" not in str(exc), f"the reader crashed instead of a check firing: {exc}"
    read_model_bin(data)                                    # the valid file still reads


def test_too_many_tokens_is_refused():
    with pytest.raises(ValueError, match="at most"):
        tiny(0, T=513, F=2, dim=2, heads=1, mlp=2, layers=1, n=4)


# --- C kernels ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernels", ["ref", "rv32"])
@pytest.mark.parametrize("mode,budget", [("tiled", 300), ("tiled", 4096), ("xip", None)])
def test_host_firmware_transformer_bit_exact(tmp_path, kernels, mode, budget):
    from hostside.codegen import render_firmware
    from hostside.device.build import build_firmware
    from hostside.device.session import Session
    from hostside.device.transport import ProcessTransport
    _, net, x = tiny(8, T=9, F=7, dim=12, heads=3, mlp=20, layers=2)
    g = net.to_int_graph()
    board = dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=budget or 4096)
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board, mode=mode))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels=kernels))
    xs = np.stack([g.quantize_input(f) for f in x[:8]])
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        res = Session(t, art.model_sha256, timeout=30).run(xs, g)
    finally:
        t.close()
    assert res.first_mismatch is None
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))


@pytest.mark.emulator
def test_qemu_transformer_bit_exact(tmp_path):
    """The transformer on the emulated RV32IMAC board (UART on a pty read with pyserial), tuned kernels."""
    from conftest import run_firmware
    _, net, x = tiny(9, T=12, F=10, dim=16, heads=2, mlp=24, layers=2, wbits=4, abits=8)
    g = net.to_int_graph()
    board = load_board("rv32-virt")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    xs = np.stack([g.quantize_input(f) for f in x[:6]])
    res = run_firmware(art, board, g, xs, tmp_path)
    assert res.first_mismatch is None
    assert np.array_equal(np.array(res.outputs, dtype=np.int64), run_batch(g, xs).astype(np.int64))
    assert res.ram["tile_buf"] + res.ram["arena"] + res.ram["stack_hwm"] <= art.tile_buffer_bytes + \
        art.arena_bytes + board.stack_estimate_bytes


def test_cli_export_transformer_checkpoint(trained_pipeline, tmp_path):
    """`pqlr export` on a trained microbert-2l checkpoint, with a QAT epoch: a model.bin with the transformer ops
    that `pqlr inspect` lists; and the API's calibrated model lowers to a graph whose reference reproduces its
    integer forward on the corpus's test split."""
    import subprocess
    import sys
    from hostside import api
    from hostside.train import load_checkpoint
    corpus = trained_pipeline["corpus"]
    api.train(corpus, tmp_path / "tf.pt", model="microbert-2l", epochs=1, seed=0, progress=False)
    cli = [sys.executable, "-m", "hostside.cli"]
    r = subprocess.run(cli + ["export", "--checkpoint", str(tmp_path / "tf.pt"), "--corpus", str(corpus), "--board",
                              "rv32-virt", "--out", str(tmp_path / "model.bin"), "--calib", "32", "--qat-epochs", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    art = read_model_bin(tmp_path / "model.bin")
    ops = [L.op for L in art.graph.layers]
    assert ops.count("attention") == 2 and ops.count("layernorm") == 5 and ops.count("gelu") == 2
    r = subprocess.run(cli + ["inspect", str(tmp_path / "model.bin")], capture_output=True, text=True)
    assert r.returncode == 0 and "attention" in r.stdout and "layernorm" in r.stdout
    assert r.stdout.count("(residual)") == 4 and "4 heads" in r.stdout         # the plan is visible
    # the exported integers are the calibrated model's: same top-1 on held-out inputs as its fake-quant twin
    model, ck = load_checkpoint(tmp_path / "tf.pt")
    _, x, _ = api.load_features(corpus, "test", ck["frontend"])
    net = api.quant_transformer(model, ck, corpus, x[:32], 0, progress=False)
    g = net.to_int_graph()
    with torch.no_grad():
        q, _, _ = net.forward_int(torch.from_numpy(x).double())
    assert np.array_equal(run_batch(g, np.stack([g.quantize_input(f) for f in x])).astype(np.int64),
                          q.numpy().astype(np.int64))


def test_input_quantisation_matches_the_qat_model_for_float32_features():
    """float32 features near rounding ties quantise to the same int8 on the host graph as in the QAT model."""
    _, net, _ = tiny(12, T=6, F=5)
    g = net.to_int_graph()
    rng = np.random.default_rng(0)
    f = ((rng.integers(-150, 150, size=(64, 6, 5)) - g.input_zp + 0.5) * g.input_scale).astype(np.float32)
    with torch.no_grad():
        q_torch = net.quantize_input(torch.from_numpy(f))[0].numpy().astype(np.int64)
    q_np = np.stack([g.quantize_input(x) for x in f]).reshape(64, 6, 5).astype(np.int64)
    assert np.array_equal(q_np, q_torch)


def test_a_transformer_too_big_for_the_partition_is_refused_with_numbers_and_a_way_out():
    from hostside.plan.planner import check_budgets
    _, net, _ = tiny(13, layers=1)
    g = net.to_int_graph()
    board = load_board("esp32c6")
    plan = make_plan(g, board)
    with pytest.raises(BudgetError) as e:
        check_budgets(plan, board, model_bin_bytes=board.model_partition.size + 1)
    msg = str(e.value)
    assert str(board.model_partition.size + 1) in msg and str(board.model_partition.size) in msg
    assert "--wbits 4" in msg


def test_graph_constants_are_ibert_exp_at_the_fixed_scale():
    from hostside.graph import EXP_B, EXP_C, EXP_LN2
    from hostside.reference.ibert import EXP_A, EXP_B as B, EXP_C as C
    s = 2.0 ** -EXP_BITS
    assert (EXP_LN2, EXP_B, EXP_C) == (math.floor(math.log(2) / s), math.floor(B / s), math.floor(C / (EXP_A * s * s)))
    r = -np.arange(0, 40 * EXP_LN2, 3)
    z = (-r) // EXP_LN2                                   # the C kernel's formula, written out
    p = r + z * EXP_LN2
    c_kernel = np.where(z > 30, 0, ((p + EXP_B) ** 2 + EXP_C) >> np.minimum(z, 30))
    assert np.array_equal(ref.int_exp(r), c_kernel)


def test_layer_norm_resolves_the_deviation_better_than_ibert_on_int8():
    """On int8 pixels with a small spread, the paper's ⌊√var⌋ is off by up to 1/std; the graph's √(C²·var)
    is not. Both against the float normalisation, in units of a standard deviation."""
    from hostside.reference.ibert import i_layernorm
    rng = np.random.default_rng(3)
    C = 32
    x = np.clip(np.round(rng.normal(0, rng.uniform(2, 6, size=(64, 1)), size=(64, C))), -128, 127).astype(np.int8)
    xf = x.astype(np.float64)
    want = (xf - xf.mean(1, keepdims=True)) / np.maximum(xf.std(1, keepdims=True), 1e-9)
    q, s = i_layernorm(x.astype(np.int64), out_bits=10)          # 128 units per standard deviation
    err_ibert = np.abs(q * s - want).max()
    L = Layer("ln", "layernorm", (64, 1, C), (64, 1, C), 0, 0, -128, 127, 1.0, 1.0,
              multiplier=np.full(C, 1 << 30, np.int32), shift=np.full(C, 30 + LN_BITS - 4, np.int32),
              weights=np.ones((C, 1), np.int8), bias=np.zeros(C, np.int32))
    ours = ref.layernorm(x.reshape(64, 1, C), L).reshape(64, C).astype(np.float64) / 16
    err_ours = np.abs(ours - np.clip(want, -8, 127 / 16)).max()
    assert err_ours <= 1 / 32 + 1 / 128 + 4 / 64            # rounding, truncation, ⌊√⌋ (C·std ≥ 64) at ≤ 4 std
    assert err_ibert > 4 * err_ours
