"""A board in a labgrid farm: a coordinator and an exporter on 127.0.0.1 (Debian's ser2net serving the
QEMU board's pty), and `pqlr bench --place` benchmarking through them."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("labgrid", reason="labgrid is the optional extra pqlr[farm] (make test installs it)")
if not (shutil.which("ser2net") or Path("/usr/sbin/ser2net").exists()):
    pytest.skip("labgrid's exporter needs ser2net: sudo apt-get install ser2net", allow_module_level=True)

from hostside import api  # noqa: E402
from hostside.artifact import write_model_bin  # noqa: E402
from hostside.boards import load_board  # noqa: E402
from hostside.codegen import render_firmware  # noqa: E402
from hostside.device.build import build_firmware  # noqa: E402
from hostside.device.qemu import QemuBoard, make_flash_image  # noqa: E402
from hostside.plan import make_plan  # noqa: E402

from conftest import random_graph  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.emulator
def test_bench_through_a_labgrid_place(tmp_path, monkeypatch):
    _, g, _ = random_graph(4, input_shape=(16, 10), channels=8, blocks=2)
    board = load_board("rv32-virt")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw"))
    img = make_flash_image(board, tmp_path / "model.bin", tmp_path / "flash.img")
    coord_addr = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("LG_COORDINATOR", coord_addr)
    env = dict(os.environ)
    procs = []
    qemu = QemuBoard(board, fw, img)
    try:
        procs.append(subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", coord_addr], cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        qemu.__enter__()
        qemu.transport.close()                                  # the exporter's ser2net opens the pty
        (tmp_path / "exporter.yaml").write_text(f"qemu-board:\n  RawSerialPort:\n    port: {qemu.pty}\n    speed: 115200\n")
        time.sleep(1.0)
        procs.append(subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", coord_addr, "--hostname", "127.0.0.1",
                                       "-n", "pqlr-exporter", str(tmp_path / "exporter.yaml")], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def client(*a):
            return subprocess.run([str(BIN / "labgrid-client"), *a], env=env, capture_output=True, text=True)
        assert wait_for(lambda: "NetworkSerialPort" in client("resources").stdout), "the exporter did not register"
        assert client("-p", "pqlr-qemu", "create").returncode == 0
        assert client("-p", "pqlr-qemu", "add-match", "pqlr-exporter/qemu-board/*").returncode == 0
        r = api.bench(board, tmp_path / "model.bin", tmp_path / "bench", runs=4, place="pqlr-qemu")
        rep = r["report"]
        assert rep["bit_exact"] and rep["runs"] == 4 and rep["transport"] == "labgrid place pqlr-qemu"
        # pqlr released the place it acquired: another user can take it now
        assert client("-p", "pqlr-qemu", "acquire").returncode == 0
    finally:
        qemu.close()
        for p in procs[::-1]:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
