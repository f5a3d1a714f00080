"""The tuned RV32 kernels against the reference, bit for bit, over random shapes, bit widths and plans
(odd channel counts and pixel counts that are not multiples of the blocking), built for the host."""
import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings

from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.session import Session
from hostside.device.transport import ProcessTransport
from hostside.errors import BudgetError
from hostside.plan import make_plan
from hostside.reference import run_batch

from test_properties import build, stacks


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(p=stacks())
def test_rv32_kernels_equal_reference(p, tmp_path_factory):
    qn, x = build(p)
    g = qn.to_int_graph()
    board = dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=4096)
    try:
        plan = make_plan(g, board, mode=p["mode"], tile_budget=p["tile_budget"] if p["mode"] == "tiled" else None)
    except BudgetError:
        return
    d = tmp_path_factory.mktemp("k")
    art = write_model_bin(d / "model.bin", g, plan)
    xs = np.stack([g.quantize_input(f) for f in x[:4]])
    fw = build_firmware(board, render_firmware(art, board, d / "fw", kernels="rv32"))
    t = ProcessTransport([str(fw), str(d / "model.bin")])
    try:
        res = Session(t, art.model_sha256, 30).run(xs, g)
    finally:
        t.close()
    assert res.first_mismatch is None
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))
