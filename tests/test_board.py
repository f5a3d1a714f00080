"""End-to-end on a real board: pytest -m board --board esp32c6 --port /dev/ttyACM0 (skipped otherwise,
saying what to pass). The same path the emulator tests take: build, flash, run, report — on the chip."""
import numpy as np
import pytest

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.plan import make_plan

from conftest import random_graph


@pytest.fixture
def board_under_test(request):
    return request.config.getoption("--board"), request.config.getoption("--port")


@pytest.mark.board
def test_bench_on_the_board(board_under_test, tmp_path):
    name, port = board_under_test
    board = load_board(name)
    _, g, _ = random_graph(4, input_shape=(49, 10), channels=16, blocks=2, stem_kernel=(10, 4), stem_stride=(2, 2))
    write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    r = api.bench(board, tmp_path / "model.bin", tmp_path / "bench", runs=20, port=port, warmup=2)
    rep = r["report"]
    assert rep["status"] == "complete" and rep["bit_exact"], rep["bit_exact_detail"]
    assert rep["latency_ms"]["provenance"] == "measured" and rep["latency_ms"]["p99"] >= rep["latency_ms"]["p50"]
    assert rep["peak_ram_bytes"]["value"] is not None
    assert rep["peak_ram_bytes"]["parts"]["stack_high_water_mark"] <= board.stack_bytes


@pytest.mark.board
def test_mlperf_mode_on_the_board(board_under_test, tmp_path):
    name, port = board_under_test
    board = load_board(name)
    _, g, _ = random_graph(5, input_shape=(49, 10), channels=16, blocks=2, stem_kernel=(10, 4), stem_stride=(2, 2))
    write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    r = api.mlperf(board, tmp_path / "model.bin", tmp_path / "mlperf", inferences=10, warmup=1, port=port)
    assert r["top1_agrees_with_reference"] and np.isfinite(r["runtime_s"])
