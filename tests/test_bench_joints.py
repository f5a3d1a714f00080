"""pqlr bench holds what it checked: the artifact is read once and pinned for the whole run, the results
always have somewhere to go, and nothing is written half."""
import errno
import json

import pytest

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.errors import PqlrError
from hostside.plan import make_plan
from conftest import random_graph


@pytest.fixture
def two_models(tmp_path):
    board = load_board("host")
    _, g1, _ = random_graph(11, input_shape=(12, 8), channels=6, blocks=1)
    _, g2, _ = random_graph(12, input_shape=(12, 8), channels=6, blocks=1)
    a1 = write_model_bin(tmp_path / "m1" / "model.bin", g1, make_plan(g1, board))
    a2 = write_model_bin(tmp_path / "m2" / "model.bin", g2, make_plan(g2, board))
    return tmp_path / "m1" / "model.bin", a1, tmp_path / "m2" / "model.bin", a2


@pytest.mark.parametrize("change", ["replace", "corrupt", "replace_pinned"])
def test_a_model_changed_during_the_run_changes_nothing(two_models, tmp_path, change):
    src, a1, other, a2 = two_models
    out = tmp_path / "bench"

    def meddle(k):
        if k != 2:
            return
        if change == "replace":                       # another valid model where the user's file was
            src.write_bytes(other.read_bytes())
        elif change == "corrupt":
            b = bytearray(src.read_bytes())
            b[len(b) // 2] ^= 0xFF
            src.write_bytes(bytes(b))
        else:                                         # even the run's own copy: the board holds what it checked
            (out / "model.bin").write_bytes(other.read_bytes())
    r = api.bench("host", src, out, runs=6, on_inference=meddle)["report"]
    assert r["status"] == "complete" and r["runs"] == 6 and r["bit_exact"] is True
    assert r["model_sha256"] == a1.model_sha256 == r["model_file"]["sha256"]


def test_an_unwritable_output_folder_fails_before_anything_is_built(two_models, tmp_path):
    src = two_models[0]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PqlrError, match="cannot write results to .*a-file/bench.*choose another --out"):
        api.bench("host", src, blocker / "bench", runs=2)


def test_a_full_disk_loses_no_results_and_leaves_no_empty_report(two_models, tmp_path, monkeypatch):
    from hostside import atomic
    src = two_models[0]
    out = tmp_path / "bench"
    real = atomic.write_bytes

    def full(path, data):
        if path.parent == out and path.name.startswith("report"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(atomic, "write_bytes", full)
    with pytest.raises(PqlrError) as e:
        api.bench("host", src, out, runs=3)
    msg = str(e.value)
    assert "No space left on device" in msg and "\n" not in msg
    spare = msg.rsplit(" is in ", 1)[1].rstrip(".")
    assert json.loads(open(spare).read())["runs"] == 3
    assert not (out / "report.json").exists()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    from hostside import atomic
    p = tmp_path / "r.json"
    atomic.write_text(p, "old")

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_text(p, "new")
    assert p.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["r.json"]


def test_budgets_are_checked_before_anything_is_rendered(two_models, tmp_path):
    """A model the board cannot hold is refused by render (so by build, bench, demo and flash) with the numbers,
    before a compiler runs."""
    import dataclasses
    import time
    from hostside.errors import BudgetError
    src = two_models[0]
    small = dataclasses.replace(load_board("host"), sram_budget_bytes=256)
    start = time.monotonic()
    with pytest.raises(BudgetError, match="exceeds the SRAM budget of 256 B"):
        api.bench(small, src, tmp_path / "bench", runs=2)
    assert time.monotonic() - start < 5 and not (tmp_path / "bench" / "fw").exists()
    with pytest.raises(BudgetError, match="tile_buffer_budget_bytes"):
        api.render(src, dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=16), tmp_path / "fw")


def test_the_reader_bounds_ram_sizes(tmp_path):
    import dataclasses
    from hostside.artifact import read_model_bin
    from hostside.errors import ArtifactError
    board = load_board("host")
    _, g, _ = random_graph(13, input_shape=(12, 8), channels=6, blocks=1)
    plan = dataclasses.replace(make_plan(g, board), arena_bytes=3 << 30)
    with pytest.raises(ArtifactError, match="larger than any microcontroller's RAM"):
        write_model_bin(tmp_path / "huge.bin", g, plan)       # the writer reads its file back
        read_model_bin(tmp_path / "huge.bin")
