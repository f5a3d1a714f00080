"""MLPerf Tiny mode: the firmware speaks the EEMBC runner's protocol; pqlr mlperf drives it."""
import numpy as np
import pytest

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.mlperf import MlperfHost
from hostside.device.transport import ProcessTransport
from hostside.errors import DeviceError
from hostside.plan import make_plan

from conftest import random_graph


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlperf")
    _, g, _ = random_graph(6, input_shape=(14, 9), channels=7, blocks=2)
    art = write_model_bin(d / "model.bin", g, make_plan(g, load_board("rv32-virt")))
    return d, g, art


def test_protocol_on_host(model, tmp_path):
    d, g, art = model
    board = load_board("host")
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", mlperf=True))
    t = ProcessTransport([str(fw), str(d / "model.bin")])
    try:
        host = MlperfHost(t, timeout=20)
        host.drain()
        assert host.command("name") == ["m-name-[pqlr-host]"]
        assert "m-model-[kws01]" in host.command("profile")
        with pytest.raises(DeviceError, match="e-\\[the model's input is"):
            host.command("db load 3")
        with pytest.raises(DeviceError, match="load the input first"):
            host.command("infer 1 0")
        with pytest.raises(DeviceError, match="Unknown command"):
            host.command("fly")
        x = np.random.default_rng(0).integers(-128, 128, size=g.input_shape).astype(np.int8)
        r = host.run(x, 3, 1)
    finally:
        t.close()
    from hostside.reference import run
    ref = run(g, x)
    L = g.output_layer
    want = [(int(q) - L.out_zp) * L.out_scale for q in ref]
    assert np.allclose(r.results, want, atol=0.0015)
    assert r.lap_us[1] >= r.lap_us[0]


@pytest.mark.emulator
def test_pqlr_mlperf_on_the_emulated_board(model, tmp_path):
    d, g, art = model
    r = api.mlperf("rv32-virt", d / "model.bin", tmp_path / "out", inferences=4, warmup=1)
    assert r["top1_agrees_with_reference"] and r["runtime_s"] > 0
    assert r["latency_ms"]["provenance"] == "estimated"
    assert "Performance results for window 1" in r["summary"] and "# Inferences" in r["summary"]
    assert (tmp_path / "out" / "mlperf.json").is_file()
