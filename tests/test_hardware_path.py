"""The hardware path's joints: firmware folders that are never emptied by accident, boards that are data (a
copy of a board file under another name works), serial noise kept (a panic backtrace reaches the user), and
the ESP32-C6's model partition agreeing everywhere."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from hostside import api
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.errors import BoardError, DeviceError, PqlrError


def test_render_refuses_a_folder_it_did_not_write(small_model, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    with pytest.raises(PqlrError, match="not empty and was not rendered by pqlr"):
        render_firmware(small_model[1], load_board("host"), work)
    assert (work / "notes.txt").read_text() == "mine"


def test_rerender_removes_only_what_it_wrote(small_model, trained_pipeline, tmp_path):
    out = tmp_path / "fw"
    first = render_firmware(small_model[1], load_board("esp32c6"), out)
    (out / "notes.txt").write_text("mine")                         # a user's file
    (out / "build").mkdir()
    (out / "build" / "keep.o").write_bytes(b"x")                   # a build output
    stale = out / "main" / "extra.c"
    stale.write_text("/* a file pqlr wrote last time */")
    import json
    m = json.loads((out / ".pqlr-render.json").read_text())
    m["files"].append("main/extra.c")
    (out / ".pqlr-render.json").write_text(json.dumps(m))
    from hostside.artifact import read_model_bin
    other = read_model_bin(trained_pipeline["model_bin"])
    second = render_firmware(other, load_board("esp32c6"), out)
    assert (out / "notes.txt").read_text() == "mine" and (out / "build" / "keep.o").is_file()
    assert not stale.exists()
    assert (out / "model.bin").read_bytes() == other.data
    assert set(first["files"]) == set(second["files"])


def test_cli_render_into_a_working_tree_is_refused(small_model, tmp_path, monkeypatch):
    from hostside import cli
    (tmp_path / "src.py").write_text("print('hello')")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["render", "--board", "host", "--model", str(small_model[0]), "--out", "."]) == 2
    assert (tmp_path / "src.py").is_file()


def test_a_copied_board_file_is_a_board(small_model, tmp_path, monkeypatch):
    """Boards are data: host.toml under another name benches like host (no code keyed by the name)."""
    d = tmp_path / "boards"
    d.mkdir()
    text = (Path(load_board("host").path)).read_text().replace('name = "host"', 'name = "myhost"')
    (d / "myhost.toml").write_text(text)
    monkeypatch.setenv("PQLR_BOARDS", str(d))
    b = load_board("myhost")
    r = api.bench(b, small_model[0], tmp_path / "bench", runs=2)["report"]
    assert r["bit_exact"] is True and r["board"] == "myhost"
    assert r["latency_ms"]["value"] is not None and "wall clock" in r["latency_ms"]["note"]


def test_no_clock_means_no_latency_not_a_crash(small_model, tmp_path):
    """A board whose counter counts CPU cycles but whose cpu_hz is unknown reports latency null, with why."""
    from hostside.device.session import SessionResult
    from hostside.report import build_report
    b = dataclasses.replace(load_board("host"), clock={"cpu_hz": 0, "counter": "cpu-cycles"})
    res = SessionResult(hello={}, outputs=[[0, 0, 0]], cycles=[1000])
    r = build_report(b, small_model[1], res, [[0, 0, 0]], [], [])
    assert r["latency_ms"]["value"] is None and "cpu_hz" in r["latency_ms"]["reason"]


def test_board_file_rejects_an_undocumented_partition_type(tmp_path, monkeypatch):
    d = tmp_path / "boards"
    d.mkdir()
    text = Path(load_board("esp32c6").path).read_text().replace('type = "0x40"', 'type = "0x30"')
    (d / "bad.toml").write_text(text.replace('name = "esp32c6"', 'name = "bad"'))
    monkeypatch.setenv("PQLR_BOARDS", str(d))
    with pytest.raises(BoardError, match="custom type 0x40-0xFE"):
        load_board("bad")


class ScriptedPort:
    """A console that prints what a crashing ESP32-C6 prints, then nothing (a stand-in for a serial port)."""
    name = "scripted"

    def __init__(self, lines):
        self.lines = list(lines)

    def write(self, data):
        pass

    def readline(self, timeout):
        return self.lines.pop(0) if self.lines else None

    def close(self):
        pass


def test_a_panic_backtrace_reaches_the_user():
    from hostside.device.session import Session
    panic = [b"Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.\n",
             b"MEPC    : 0x42008a3e  RA      : 0x42008a1c  SP      : 0x4080f3d0\n",
             b"Backtrace: 0x42008a3e:0x4080f3d0 0x42008b10:0x4080f400\n"]
    s = Session(ScriptedPort(panic), "0" * 64, timeout=0.2)
    with pytest.raises(DeviceError) as e:
        s.hello()
    assert "Guru Meditation Error" in str(e.value) and "Backtrace" in str(e.value)
    assert s.stats.console[-1].startswith("Backtrace")


@pytest.mark.emulator
def test_panic_addresses_are_decoded_to_functions(small_model, tmp_path):
    """ESP-IDF panic output names code addresses; Espressif's decoder (addr2line over the firmware ELF) turns
    them into functions. Here on the rv32-virt ELF, with an address taken from its symbol table."""
    import subprocess
    pytest.importorskip("esp_idf_panic_decoder", reason="pip install esp-idf-panic-decoder (the platformio extra)")
    from hostside.device.build import build_firmware
    from hostside.device.panic import decode, looks_like_a_panic
    b = load_board("rv32-virt")
    elf = build_firmware(b, render_firmware(small_model[1], b, tmp_path / "fw"))
    syms = subprocess.run(["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True).stdout.splitlines()
    addr = next(line.split()[0] for line in syms if line.endswith(" pqlr_model_run"))
    lines = ["Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.",
             f"Backtrace: 0x{addr}:0x3fc8f3d0"]
    assert looks_like_a_panic(lines)
    out = decode(lines, elf)
    assert out is not None and any("pqlr_model_run" in line for line in out), out
