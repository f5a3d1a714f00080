"""The firmware against the numpy reference, with ==: on the host build and on the emulated
RV32IMAC board (QEMU, UART on a pty read with pyserial)."""
import os
import shutil

import numpy as np
import pytest

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.qemu import QemuBoard, make_flash_image
from hostside.device.session import Session
from hostside.device.transport import ProcessTransport, SerialTransport
from hostside.errors import DeviceError, ModelHashMismatch
from hostside.plan import make_plan
from hostside.reference import run_batch

from conftest import random_graph, random_inputs


def _host_run(tmp_path, graph, inputs, budget=1024, mode="tiled", tile_budget=None, kernels="ref"):
    import dataclasses
    board = dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=budget)
    art = write_model_bin(tmp_path / "model.bin", graph, make_plan(graph, board, mode=mode, tile_budget=tile_budget))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels=kernels))
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        return Session(t, art.model_sha256, timeout=20).run(inputs), art
    finally:
        t.close()


@pytest.mark.parametrize("kernels", ["ref", "rv32"])
@pytest.mark.parametrize("seed,shape,channels,kernel,stride,budget", [
    (0, (13, 10), 5, (3, 3), (2, 1), 1024),
    (1, (11, 9), 7, (4, 3), (2, 2), 120),      # tiny tile budget: every layer split into several tiles
    (2, (17, 6), 3, (5, 2), (1, 2), 1024),
    (3, (8, 8), 13, (3, 3), (1, 1), 300),
])
def test_host_firmware_bit_exact(tmp_path, seed, shape, channels, kernel, stride, budget, kernels):
    _, g, _ = random_graph(seed, input_shape=shape, channels=channels, blocks=2, stem_kernel=kernel,
                           stem_stride=stride)
    xs = random_inputs(g, 8, seed)
    res, art = _host_run(tmp_path, g, xs, budget, kernels=kernels)
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))
    if budget < 200:
        assert len(art.tiles) > len(g.layers)
    assert res.ram["tile_buf"] == art.tile_buffer_bytes and res.ram["arena"] == art.arena_bytes
    assert_painted_use(res, art)


@pytest.mark.parametrize("kernels", ["ref", "rv32"])
@pytest.mark.parametrize("mode,tile_budget,wbits,abits", [
    ("tiled", None, 8, 8),      # the planner's choice: single tiles, layers in place
    ("tiled", 150, 8, 8),       # small tiles: pointwise layers out of place, depthwise still in place
    ("tiled", None, 4, 4),
    ("xip", None, 8, 8),
    ("xip", None, 4, 8),
])
def test_host_firmware_in_place_and_xip(tmp_path, mode, tile_budget, wbits, abits, kernels):
    """QAT graphs (int4/int8) with in-place layers and xip plans: the firmware equals the reference."""
    from hostside.models.ops import float_ops
    from hostside.compress.quant import build_quantnet
    from hostside.models import build_model
    import torch
    torch.manual_seed(3)
    m = build_model("dscnn", (14, 8), 4, channels=9, blocks=2, stem_kernel=(3, 3), stem_stride=(2, 1),
                    widths=(9, 7, 11), pw_ranks=(3, 0)).eval()
    x = np.random.default_rng(3).normal(0, 2, size=(8, 14, 8)).astype(np.float32)
    g = build_quantnet(float_ops(m), (14, 8), wbits, abits, 8, calib=x).to_int_graph()
    xs = np.stack([g.quantize_input(f) for f in x])
    res, art = _host_run(tmp_path, g, xs, budget=8192, mode=mode, tile_budget=tile_budget, kernels=kernels)
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))
    assert art.mode == mode and any(art.inplace)
    if tile_budget:
        assert not all(art.inplace[i] for i, L in enumerate(g.layers) if L.op == "pwconv2d")
    assert res.ram["tile_buf"] == art.tile_buffer_bytes and res.ram["arena"] == art.arena_bytes
    assert_painted_use(res, art)


def assert_painted_use(res, art):
    """Peak RAM is measured by painting, not echoed: the highest byte the run touched in the arena is the top
    of the plan's busiest tensor (to the 4-byte alignment and a paint-valued last byte), the tile buffer's is
    the largest tile streamed through it, and an xip plan never touches its tile buffer."""
    top = max(o + int(np.prod(L.out_shape)) for o, L in zip(art.tensor_offsets[1:], art.graph.layers))
    top = max(top, art.tensor_offsets[0] + int(np.prod(art.graph.input_shape)))
    assert top - 8 <= res.ram["arena_used"] <= art.arena_bytes
    if art.mode == "xip":
        assert res.ram["tile_buf_used"] == 0
    else:
        assert max(t.size for t in art.tiles) - 8 <= res.ram["tile_buf_used"] <= art.tile_buffer_bytes


def test_a_mismatch_names_the_first_bad_layer_and_index(tmp_path):
    """The firmware dumps layer outputs on request; against a reference whose layer 2 differs, the host
    names layer 2 and the first differing element."""
    import copy
    _, g, _ = random_graph(2, input_shape=(12, 8), channels=6, blocks=2)
    board = load_board("host")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw"))
    wrong = copy.deepcopy(art.graph)
    wrong.layers[2].bias = wrong.layers[2].bias + 5000         # layer 2 of the "reference" is off
    xs = random_inputs(g, 3, 1)
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        s = Session(t, art.model_sha256, timeout=20)
        res = s.run(xs, reference_graph=wrong)
        assert res.first_mismatch is not None and res.first_mismatch["input"] == 0
        assert res.first_mismatch["layer"] == 2 and res.first_mismatch["name"] == wrong.layers[2].name
        from hostside.reference import run
        _, good = run(art.graph, xs[0], dump=True)
        _, bad = run(wrong, xs[0], dump=True)
        first = int(np.argmax(good[3].reshape(-1) != bad[3].reshape(-1)))
        assert res.first_mismatch["index"] == first and res.first_mismatch["got"] == int(good[3].reshape(-1)[first])
    finally:
        t.close()
    # against the true reference, nothing to report
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        assert Session(t, art.model_sha256, timeout=20).run(xs, reference_graph=art.graph).first_mismatch is None
    finally:
        t.close()


def test_host_refuses_other_models_hash(tmp_path):
    _, g, _ = random_graph(0)
    board = load_board("host")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw"))
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        with pytest.raises(ModelHashMismatch) as e:
            Session(t, "ab" * 32, timeout=20).run(random_inputs(g, 1))
        assert art.model_sha256 in str(e.value) and "ab" * 32 in str(e.value)
    finally:
        t.close()


def test_stale_model_partition_is_refused(tmp_path):
    """Firmware generated for model A, partition holding model B of the same architecture: the app runs B (it
    reads B's quantisation and checks B's SHA-256), says so in HELLO, and the host, expecting A, refuses to
    report. Not garbage output, and not B's numbers credited to A."""
    _, ga, _ = random_graph(0)
    _, gb, _ = random_graph(5)
    board = load_board("host")
    art_a = write_model_bin(tmp_path / "a.bin", ga, make_plan(ga, board))
    art_b = write_model_bin(tmp_path / "b.bin", gb, make_plan(gb, board))
    fw = build_firmware(board, render_firmware(art_a, board, tmp_path / "fw"))
    t = ProcessTransport([str(fw), str(tmp_path / "b.bin")])
    try:
        with pytest.raises(ModelHashMismatch, match=art_b.model_sha256):
            Session(t, art_a.model_sha256, timeout=20).run(random_inputs(ga, 1))
    finally:
        t.close()


@pytest.mark.emulator
def test_qemu_firmware_bit_exact_over_pty(trained_pipeline):
    """≥ 20 real held-out inputs through the real cross-compiled firmware on QEMU, read with pyserial."""
    mb = trained_pipeline["model_bin"]
    art = trained_pipeline["art"]
    board = load_board("rv32-virt")
    corpus, x, _ = api.load_features(trained_pipeline["corpus"])
    held_out = [i for i, c in enumerate(corpus.clips) if c.split != "train"][:24]
    inputs = np.stack([art.graph.quantize_input(x[i]) for i in held_out])
    assert len(inputs) >= 20
    out = trained_pipeline["root"] / "fw-virt"
    fw = build_firmware(board, render_firmware(art, board, out))
    img = make_flash_image(board, mb, out / "flash.img")
    with QemuBoard(board, fw, img) as transport:
        assert isinstance(transport, SerialTransport) and transport.name.startswith("/dev/pts/")
        res = Session(transport, art.model_sha256, timeout=60).run(inputs)
    ref = run_batch(art.graph, inputs).astype(np.int64)
    assert np.array_equal(np.array(res.outputs, dtype=np.int64), ref)
    assert all(i and i > 0 for i in res.instret)
    assert len(set(res.instret)) <= 3 or max(res.instret) - min(res.instret) < 0.01 * max(res.instret)
    # the firmware's measured RAM parts are the planner's, and the stack was really painted and measured
    assert res.ram["tile_buf"] == art.tile_buffer_bytes and res.ram["arena"] == art.arena_bytes
    assert 0 < res.ram["stack_hwm"] <= board.stack_estimate_bytes, "the planner's stack estimate is too small"
    assert res.stats.bad_records == 0


@pytest.mark.emulator
@pytest.mark.parametrize("mode", ["tiled", "xip"])
def test_qemu_int4_in_place_and_xip(tmp_path, mode):
    """int4 weights and activations, in-place layers, tiled and xip plans, on the emulated board."""
    from hostside.models.ops import float_ops
    from hostside.compress.quant import build_quantnet
    from hostside.models import build_model
    import torch
    torch.manual_seed(4)
    m = build_model("dscnn", (20, 10), 3, channels=12, blocks=2, stem_kernel=(4, 3), stem_stride=(2, 2)).eval()
    x = np.random.default_rng(4).normal(0, 2, size=(20, 20, 10)).astype(np.float32)
    g = build_quantnet(float_ops(m), (20, 10), 4, 4, 8, calib=x).to_int_graph()
    board = load_board("rv32-virt")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board, mode=mode))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw"))
    img = make_flash_image(board, tmp_path / "model.bin", tmp_path / "flash.img")
    xs = np.stack([g.quantize_input(f) for f in x])
    with QemuBoard(board, fw, img) as transport:
        res = Session(transport, art.model_sha256, timeout=60).run(xs)
    assert np.array_equal(np.array(res.outputs, dtype=np.int64), run_batch(g, xs).astype(np.int64))
    assert res.ram["tile_buf"] == art.tile_buffer_bytes and res.ram["arena"] == art.arena_bytes
    assert res.ram["tile_buf"] + res.ram["arena"] + res.ram["stack_hwm"] <= make_plan(g, board, mode=mode).peak_ram_bytes


@pytest.mark.emulator
def test_qemu_stale_partition(tmp_path, small_model):
    _, gb, _ = random_graph(7)
    board = load_board("rv32-virt")
    path, art = small_model
    other = write_model_bin(tmp_path / "other.bin", gb, make_plan(gb, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw"))
    img = make_flash_image(board, tmp_path / "other.bin", tmp_path / "flash.img")
    with QemuBoard(board, fw, img) as transport:
        with pytest.raises(DeviceError) as e:
            Session(transport, art.model_sha256, timeout=60).run(random_inputs(art.graph, 1))
    assert "model_architecture" in str(e.value) and other.model_sha256 in str(e.value)


def test_missing_cross_compiler_names_the_package(small_model, tmp_path, monkeypatch):
    from hostside.errors import ToolchainMissing
    monkeypatch.setenv("PATH", str(tmp_path))          # nothing on PATH
    board = load_board("rv32-virt")
    rendered = render_firmware(small_model[1], board, tmp_path / "fw")
    with pytest.raises(ToolchainMissing, match="gcc-riscv64-unknown-elf"):
        build_firmware(board, rendered)
    with pytest.raises(ToolchainMissing, match="qemu-system-misc"):
        QemuBoard(board, tmp_path / "x.elf", tmp_path / "f.img").command()


def test_cli_missing_tool_is_one_line(small_model, tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    p = subprocess.run([sys.executable, "-m", "hostside.cli", "build", "--board", "rv32-virt", "--model",
                        str(small_model[0]), "--out", str(tmp_path / "fw")], capture_output=True, text=True, env=env)
    if shutil.which("riscv64-unknown-elf-gcc", path=env["PATH"]):
        pytest.skip("the cross compiler lives beside python here")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "apt-get install" in p.stderr and "gcc-riscv64-unknown-elf" in p.stderr
