import dataclasses

import numpy as np
import pytest

from hostside.boards import load_board
from hostside.errors import BudgetError
from hostside.plan import make_plan, plan_arena

from conftest import random_graph


@pytest.mark.parametrize("budget", [200, 300, 1024, 4096])
def test_tiles_fit_budget_and_cover_channels(budget):
    _, g, _ = random_graph(2, input_shape=(16, 10), channels=11, blocks=2)
    board = dataclasses.replace(load_board("rv32-virt"), tile_buffer_budget_bytes=budget)
    plan = make_plan(g, board)
    assert plan.tile_buffer_bytes <= budget
    for i, L in enumerate(g.layers):
        tiles = [t for t in plan.tiles if t.layer == i]
        if L.weights is None:
            assert not tiles
            continue
        assert sum(t.ch_count for t in tiles) == L.out_channels
        assert [t.ch_start for t in tiles] == list(np.cumsum([0] + [t.ch_count for t in tiles])[:-1])
    if budget == 200:
        assert len(plan.tiles) > len([L for L in g.layers if L.weights is not None])   # really tiled


def test_arena_never_overlaps_live_tensors():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        sizes = [int(s) for s in rng.integers(1, 5000, n)]
        starts = rng.integers(0, 10, n)
        lifetimes = [(int(s), int(s + rng.integers(0, 4))) for s in starts]
        offsets, arena = plan_arena(sizes, lifetimes)
        for i in range(n):
            assert offsets[i] % 4 == 0 and offsets[i] + sizes[i] <= arena
            for j in range(i):
                live = not (lifetimes[i][1] < lifetimes[j][0] or lifetimes[j][1] < lifetimes[i][0])
                if live:
                    assert offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]


def test_budget_error_names_the_numbers():
    _, g, _ = random_graph(0, input_shape=(40, 40), channels=16)
    board = dataclasses.replace(load_board("rv32-virt"), sram_budget_bytes=10_000)
    with pytest.raises(BudgetError) as e:
        make_plan(g, board)
    msg = str(e.value)
    assert "10000" in msg and "arena" in msg and "tile buffer" in msg


def test_tile_budget_too_small_for_one_channel():
    _, g, _ = random_graph(0)
    board = dataclasses.replace(load_board("rv32-virt"), tile_buffer_budget_bytes=8)
    with pytest.raises(BudgetError, match="tile budget"):
        make_plan(g, board)


def test_cli_plan_refuses_a_model_over_budget_with_the_numbers(small_model, tmp_path):
    """`pqlr plan` against a board (from $PQLR_BOARDS) whose SRAM is too small: non-zero, every number."""
    import os
    import subprocess
    import sys
    from hostside.boards import BOARDS_DIR
    tiny = (BOARDS_DIR / "rv32-virt.toml").read_text().replace('name = "rv32-virt"', 'name = "tiny"')
    tiny = tiny.replace("sram_budget_bytes = 262144", "sram_budget_bytes = 1000")
    (tmp_path / "tiny.toml").write_text(tiny)
    env = dict(os.environ, PQLR_BOARDS=str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "hostside.cli", "plan", str(small_model[0]), "--board", "tiny"],
                       capture_output=True, text=True, env=env)
    art = small_model[1]
    assert p.returncode == 2 and "Traceback" not in p.stderr
    for number in (art.tile_buffer_bytes, art.arena_bytes, 1000):
        assert str(number) in p.stderr
    ok = subprocess.run([sys.executable, "-m", "hostside.cli", "plan", str(small_model[0]), "--board", "rv32-virt"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "fits rv32-virt" in ok.stdout


def test_packed_kernels_scratch_fits_never_grows_the_arena(tmp_path):
    """The packed (SWAR) kernels' scratch: by default only where it fits in the arena the plain plan needs. In the
    MLPerf geometry at int8 every eligible layer gets it at unchanged RAM (the first conv's through writing its
    output over its consumed input, conv_overlap); at int4 the conv is cut into two tiles (a smaller tile buffer),
    cannot overlap, and does not get it, while "always" grows the arena for it; model.bin's checker derives the
    same sizes from the offsets."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "kernels"))
    from run import model
    from hostside.artifact import write_model_bin
    from hostside.plan.planner import conv_lead, swar_scratch
    board = load_board("rv32-virt")
    for wbits in (8, 4):
        g, _ = model(wbits)
        fit, never, always = (make_plan(g, board, packed=p) for p in ("fit", "never", "always"))
        got = [fit.scratch_bytes[i] >= swar_scratch(L) > 0 for i, L in enumerate(g.layers)]
        ops = [L.op for L in g.layers]
        conv = ops.index("conv2d")
        assert all(got[i] for i, op in enumerate(ops) if op == "pwconv2d")
        assert all(always.scratch_bytes[i] >= swar_scratch(L) for i, L in enumerate(g.layers))
        if wbits == 8:
            assert fit.arena_bytes == never.arena_bytes == always.arena_bytes and got[conv]
            assert fit.tensor_offsets[conv] - fit.tensor_offsets[conv + 1] == conv_lead(g.layers[conv])
        else:
            assert fit.arena_bytes == never.arena_bytes < always.arena_bytes and not got[conv]
        for plan in (fit, always):
            art = write_model_bin(tmp_path / "m.bin", g, plan)
            assert art.scratch_bytes == plan.scratch_bytes
    with pytest.raises(BudgetError, match="packed"):
        make_plan(g, board, packed="sometimes")
