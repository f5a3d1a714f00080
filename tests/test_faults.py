"""Faults the hardware loop must survive, on real firmware: noise and boot logs on the line, corrupt
records, a board that resets mid-run (QEMU system_reset over QMP), a port that vanishes (QEMU killed),
a port that is not a pqlr board, a missing port."""
import json
import os
import pty
import sys
import time

import numpy as np
import pytest

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.qemu import QemuBoard, make_flash_image, qmp
from hostside.device.session import Session
from hostside.device.transport import ProcessTransport, SerialTransport
from hostside.errors import DeviceError, ModelHashMismatch
from hostside.plan import make_plan
from hostside.reference import run_batch

from conftest import random_graph, random_inputs

CORRUPTER = r"""
import sys
n = 0
for line in sys.stdin.buffer:
    if line.startswith(b"@pqlr1 INFER") or line.startswith(b"@pqlr1 LAYERS"):
        n += 1
        if n in (3, 8):                      # corrupt the 2nd INFER and the 4th LAYERS
            line = line.replace(b"=", b":", 1)
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


@pytest.fixture(scope="module")
def host_fw(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    _, g, _ = random_graph(3, input_shape=(12, 8), channels=6, blocks=2)
    board = load_board("host")
    art = write_model_bin(d / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, d / "fw"))
    return d, g, art, fw


def test_boot_noise_and_binary_garbage_are_skipped(host_fw):
    d, g, art, fw = host_fw
    noisy = ("printf 'ESP-ROM:esp32c6-20220919\\nBuild:Sep 19 2022\\n\\001\\377garbage @pq\\nrst:0x1 (POWERON)\\n'; "
             f"exec {fw} {d / 'model.bin'}")
    t = ProcessTransport(["sh", "-c", noisy])
    try:
        xs = random_inputs(g, 4)
        res = Session(t, art.model_sha256, 20).run(xs)
    finally:
        t.close()
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))
    assert res.stats.noise_lines >= 3


def test_corrupt_records_are_rejected_and_the_input_retried(host_fw, tmp_path):
    d, g, art, fw = host_fw
    (tmp_path / "corrupt.py").write_text(CORRUPTER)
    t = ProcessTransport(["sh", "-c", f"{fw} {d / 'model.bin'} | {sys.executable} -u {tmp_path / 'corrupt.py'}"])
    try:
        xs = random_inputs(g, 6, 2)
        res = Session(t, art.model_sha256, 20).run(xs)
    finally:
        t.close()
    assert res.stats.bad_records == 2 and res.retries == 2
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))   # nothing misattributed


# Damage the k-th record of one type on its way to the host, in one of several ways; the rest passes.
DAMAGER = r"""
import sys, zlib
kind, k, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = 0
def reframe(body):
    return ("@" + body + " *%08x" % zlib.crc32(body.encode())).encode() + b"\n"
for line in sys.stdin.buffer:
    if line.startswith(b"@pqlr1 " + kind.encode() + b" ") or line.rstrip() == b"@pqlr1 " + kind.encode() + line.rstrip()[-10:]:
        n += 1
        if n == k:
            body = line.rstrip().decode()[1:-10]
            if how == "checksum":            # one flipped bit: the checksum fails
                line = line.replace(b"pqlr1 ", b"pqlr1 \x01", 1) if b"=" not in line else line.replace(b"=", b":", 1)
            elif how == "marker":            # the marker itself is hit
                line = line.replace(b"@pqlr", b"@pqIr", 1)
            elif how == "noint":             # a valid checksum over a value that is not a number
                line = reframe(body.replace("out=", "out=1x,", 1).replace("arena=", "arena=zz", 1))
            elif how == "fewer":             # a valid checksum over one output too few
                f = body.split(" ")
                f = [("out=" + ",".join(x[4:].split(",")[:-1])) if x.startswith("out=") else x for x in f]
                line = reframe(" ".join(f))
            elif how == "range":             # a valid checksum over an output outside int8
                line = reframe(body.replace("out=", "out=300,", 1).replace(",", ",", 1))
            elif how == "glued":             # noise glued in front of a whole record
                line = b"\x00\xffrst:0x1 " + line
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("kind,k,how", [
    ("HELLO", 1, "checksum"), ("READY", 1, "checksum"), ("RAM", 1, "checksum"), ("DONE", 1, "checksum"),
    ("LAYERS", 2, "marker"), ("HELLO", 1, "marker"), ("INFER", 2, "noint"), ("RAM", 1, "noint"),
    ("INFER", 3, "fewer"), ("INFER", 1, "range"), ("INFER", 2, "glued"), ("LAYERS", 3, "glued")])
def test_every_record_type_is_recovered(host_fw, tmp_path, kind, k, how):
    """A damaged record of any type is asked for again, quickly, and nothing is misattributed."""
    d, g, art, fw = host_fw
    (tmp_path / "damage.py").write_text(DAMAGER)
    t = ProcessTransport(["sh", "-c", f"{fw} {d / 'model.bin'} | {sys.executable} -u {tmp_path / 'damage.py'} "
                                      f"{kind} {k} {how}"])
    start = time.monotonic()
    try:
        xs = random_inputs(g, 5, 3)
        res = Session(t, art.model_sha256, 8, n_outputs=int(np.prod(g.layers[-1].out_shape))).run(xs)
    finally:
        t.close()
    assert time.monotonic() - start < 6, "recovered by asking again, not by waiting for the timeout"
    assert res.complete and np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))
    assert res.stats.bad_records >= (0 if how == "glued" else 1)
    assert set(res.ram) >= {"arena", "tile_buf"} and all(isinstance(v, int) for v in res.ram.values())


# Damage the k-th inference command on its way to the board.
COMMAND_DAMAGER = r"""
import sys
k, how = int(sys.argv[1]), sys.argv[2]
n = 0
for line in sys.stdin.buffer:
    if line[:1] == b"i":
        n += 1
        if n == k:
            j = 20
            if how == "digit":        # a hex digit changed into another hex digit: only the CRC can tell
                line = line[:j] + (b"0" if line[j:j + 1] != b"0" else b"1") + line[j + 1:]
            elif how == "nonhex":
                line = line[:j] + b"z" + line[j + 1:]
            elif how == "short":      # a character lost: the line ends inside the command
                line = line[:j] + line[j + 1:]
            elif how == "seq":        # the request number hit
                line = line[:3] + (b"7" if line[3:4] != b"7" else b"6") + line[4:]
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("how", ["digit", "nonhex", "short", "seq"])
def test_damaged_commands_are_refused_and_sent_again(host_fw, tmp_path, how):
    """A command damaged on its way to the board is refused by its CRC and sent again: no answer is credited
    to the wrong input (before the CRC, a changed digit gave a wrong answer reported as a firmware mismatch)."""
    d, g, art, fw = host_fw
    (tmp_path / "cmd.py").write_text(COMMAND_DAMAGER)
    t = ProcessTransport(["sh", "-c", f"{sys.executable} -u {tmp_path / 'cmd.py'} 2 {how} | {fw} {d / 'model.bin'}"])
    try:
        xs = random_inputs(g, 4, 9)
        res = Session(t, art.model_sha256, 8).run(xs)
    finally:
        t.close()
    assert res.complete and res.retries == 1
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))


def test_records_are_found_inside_a_line():
    from hostside.errors import TelemetryError
    from hostside.telemetry import encode, parse_line
    boot = encode("BOOT", {"fw": "0.1.0", "board": "host"})
    assert parse_line("@pqlr1 INFER n=3 out=1,2" + boot).type == "BOOT"     # reset mid-record: BOOT found
    assert parse_line("\x00garbage" + encode("DONE", {"n": 4})).fields == {"n": "4"}
    with pytest.raises(TelemetryError, match="damaged marker"):
        parse_line(encode("LAYERS", {"n": 1}).replace("@pqlr", "@pqIr"))
    with pytest.raises(TelemetryError, match="not an integer"):
        parse_line(encode("RAM", {"arena": "12k"})).int("arena")
    assert parse_line("rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)") is None


def test_other_models_firmware_is_refused_with_both_hashes(host_fw):
    d, g, art, fw = host_fw
    t = ProcessTransport([str(fw), str(d / "model.bin")])
    try:
        with pytest.raises(ModelHashMismatch) as e:
            Session(t, "cd" * 32, 20).run(random_inputs(g, 1))
    finally:
        t.close()
    assert art.model_sha256 in str(e.value) and "cd" * 32 in str(e.value)


PROTO_REWRITER = r"""
import sys, zlib
for line in sys.stdin.buffer:
    if line.startswith(b"@pqlr1 HELLO "):
        body = line.rstrip().decode()[1:-10].replace(" proto=2", " proto=1")
        line = ("@" + body + " *%08x" % zlib.crc32(body.encode())).encode() + b"\n"
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


def test_a_board_speaking_another_protocol_is_refused_with_both_versions(host_fw, tmp_path):
    """A HELLO that is intact but names protocol 1 (firmware built by an older pqlr): refused before any input is
    sent, with both versions and what to do, not read as this protocol's records."""
    from hostside.errors import TelemetryError
    d, g, art, fw = host_fw
    (tmp_path / "proto.py").write_text(PROTO_REWRITER)
    t = ProcessTransport(["sh", "-c", f"{fw} {d / 'model.bin'} | {sys.executable} -u {tmp_path / 'proto.py'}"])
    try:
        with pytest.raises(TelemetryError, match=r"protocol 1, this host speaks 2: .*pqlr flash"):
            Session(t, art.model_sha256, 8).run(random_inputs(g, 2))
    finally:
        t.close()


def test_a_port_that_is_not_a_pqlr_board_times_out_clearly():
    master, slave = pty.openpty()
    try:
        t = SerialTransport(os.ttyname(slave))
        start = time.monotonic()
        with pytest.raises(DeviceError, match="no answer .* pqlr board"):
            Session(t, "00" * 32, timeout=1.5).run(np.zeros((1, 4), np.int8))
        assert time.monotonic() - start < 10
        t.close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_one_line():
    with pytest.raises(DeviceError, match="cannot open serial port /dev/ttyNOPE"):
        SerialTransport("/dev/ttyNOPE", open_timeout=0.5)


def test_a_port_that_comes_back_after_a_reset_is_reopened(tmp_path):
    """USB-Serial-JTAG re-enumerates after esptool resets the chip: the port is missing for a moment."""
    import threading
    master, slave = pty.openpty()
    link = tmp_path / "ttyACM0"
    timer = threading.Timer(0.6, lambda: link.symlink_to(os.ttyname(slave)))
    timer.start()
    try:
        t = SerialTransport(str(link), open_timeout=5.0)
        os.write(master, b"hello\n")
        assert t.readline(2.0).strip() == b"hello"
        t.close()
    finally:
        timer.cancel()
        os.close(master)
        os.close(slave)


def _on_qemu(d, g):
    """g's model.bin, firmware and flash image for the emulated board, in d."""
    board = load_board("rv32-virt")
    art = write_model_bin(d / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, d / "fw"))
    img = make_flash_image(board, d / "model.bin", d / "fw" / "flash.img")
    return d, g, art, fw, img, board


@pytest.fixture(scope="module")
def qemu_fw(tmp_path_factory):
    _, g, _ = random_graph(4, input_shape=(16, 10), channels=8, blocks=2)
    return _on_qemu(tmp_path_factory.mktemp("qfaults"), g)


@pytest.mark.emulator
def test_board_reset_mid_run_is_detected_and_the_run_resumes(qemu_fw):
    d, g, art, fw, img, board = qemu_fw
    sock = d / "qmp-reset.sock"
    xs = random_inputs(g, 8, 5)
    with QemuBoard(board, fw, img, qmp_socket=sock) as t:
        s = Session(t, art.model_sha256, 30)
        res = s.run(xs, on_inference=lambda k: qmp(sock, "system_reset") if k == 3 else None)
    assert res.resets == 1 and res.complete
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))


@pytest.mark.emulator
def test_vanished_port_gives_a_clear_error_and_partial_results_on_disk(qemu_fw, tmp_path):
    d, g, art, fw, img, board = qemu_fw
    sock = tmp_path / "qmp-quit.sock"

    def kill(k):
        if k == 4:
            qmp(sock, "quit")
    start = time.monotonic()
    with pytest.raises(DeviceError) as e:
        api.bench(board, d / "model.bin", tmp_path / "bench", runs=10, on_inference=kill, qmp_socket=sock)
    assert time.monotonic() - start < 60
    assert "vanished" in str(e.value) or "no answer" in str(e.value)
    report = json.loads((tmp_path / "bench" / "report.json").read_text())
    assert report["status"] == "incomplete" and report["runs"] == 5 and report["bit_exact"] is True
    assert "error" in report


@pytest.mark.emulator
def test_bench_report_has_percentiles_plots_and_provenance(qemu_fw, tmp_path):
    d, g, art, fw, img, board = qemu_fw
    r = api.bench(board, d / "model.bin", tmp_path / "bench", runs=6, warmup=2)
    rep = r["report"]
    assert rep["status"] == "complete" and rep["runs"] == 6 and rep["warmup"] == 2 and rep["bit_exact"]
    lat = rep["latency_ms"]
    assert lat["provenance"] == "estimated" and lat["p50"] <= lat["p90"] <= lat["p99"]
    assert rep["current_ma"]["value"] is None and "no current sensor" in rep["current_ma"]["reason"]
    assert rep["energy_per_inference_mj"]["value"] is None
    assert rep["instructions_per_inference"]["provenance"] == "emulated"
    for name in ("layers.png", "latency.png", "ram.png", "report.md", "report.json"):
        assert (tmp_path / "bench" / name).is_file(), name


@pytest.fixture(scope="module")
def stream_fw(tmp_path_factory):
    """A streaming model (pqlr's dscnn-stream exported one frame per step) on the host firmware."""
    import torch
    from hostside.compress.quant import build_quantnet
    from hostside.export.streaming import to_streaming
    from hostside.models import build_model
    from hostside.models.ops import float_ops
    torch.manual_seed(1)
    m = build_model("dscnn-stream", (20, 8), 3, channels=8, blocks=2).eval()
    x = np.random.default_rng(1).normal(0, 2, size=(16, 20, 8)).astype(np.float32)
    g = to_streaming(build_quantnet(float_ops(m), (20, 8), 8, 8, 8, calib=x).to_int_graph())
    d = tmp_path_factory.mktemp("stream-faults")
    board = load_board("host")
    art = write_model_bin(d / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, d / "fw"))
    return d, g, art, fw


def _stream_ref(g, xs):
    from hostside.reference.interpreter import Streamer
    s = Streamer(g)
    return np.stack([s.step(x) for x in xs]).astype(np.int64)


@pytest.mark.parametrize("kind,k,how", [("INFER", 3, "checksum"), ("LAYERS", 5, "marker"), ("INFER", 4, "fewer")])
def test_a_streaming_models_lost_answer_is_replayed_not_rerun(stream_fw, tmp_path, kind, k, how):
    """A lost INFER/LAYERS answer of a streaming model is asked for with 'r' (the board's kept answer): running the
    input again would step the model twice and every later output would differ."""
    d, g, art, fw = stream_fw
    (tmp_path / "damage.py").write_text(DAMAGER)
    xs = np.random.default_rng(5).integers(-128, 128, (40,) + g.input_shape).astype(np.int8)
    outs = {}
    for stateful in (True, False):
        t = ProcessTransport(["sh", "-c", f"{fw} {d / 'model.bin'} | {sys.executable} -u {tmp_path / 'damage.py'} "
                                          f"{kind} {k} {how}"])
        try:
            res = Session(t, art.model_sha256, 8, n_outputs=int(np.prod(g.layers[-1].out_shape)),
                          stateful=stateful).run(xs)
        finally:
            t.close()
        assert res.complete and res.stats.bad_records >= 1
        outs[stateful] = np.array(res.outputs)
    assert np.array_equal(outs[True], _stream_ref(g, xs))
    assert not np.array_equal(outs[False], _stream_ref(g, xs)), "re-running the input must be what breaks it"


def test_a_streaming_models_damaged_command_is_sent_again(stream_fw, tmp_path):
    """The board refused the damaged command (it did not run): the replay gets ERR not_run, the input goes again."""
    d, g, art, fw = stream_fw
    (tmp_path / "cmd.py").write_text(COMMAND_DAMAGER)
    t = ProcessTransport(["sh", "-c", f"{sys.executable} -u {tmp_path / 'cmd.py'} 2 digit | {fw} {d / 'model.bin'}"])
    xs = np.random.default_rng(6).integers(-128, 128, (12,) + g.input_shape).astype(np.int8)
    try:
        res = Session(t, art.model_sha256, 8, stateful=True).run(xs)
    finally:
        t.close()
    assert res.complete and res.retries == 1
    assert np.array_equal(np.array(res.outputs), _stream_ref(g, xs))


def _streams_ref(g, xs, starts):
    from hostside.reference.interpreter import Streamer
    s, out = Streamer(g), []
    for k, x in enumerate(xs):
        if k in starts:
            s.reset()
        out.append(s.step(x))
    return np.stack(out).astype(np.int64)


@pytest.mark.parametrize("damage", [None, ("STREAM", 2, "checksum"), ("STREAM", 1, "marker")])
def test_each_stream_starts_from_the_boot_state(stream_fw, tmp_path, damage):
    """streams: 'n' before each stream's first input sets the model's state back to where boot leaves it, so each
    recording is scored as if the board had just started (pqlr bench's wake-word files); a lost STREAM answer is
    asked for again ('n' twice is harmless)."""
    d, g, art, fw = stream_fw
    xs = np.random.default_rng(7).integers(-128, 128, (30,) + g.input_shape).astype(np.int8)
    starts = [0, 9, 10, 21]
    cmd = f"{fw} {d / 'model.bin'}"
    if damage:
        (tmp_path / "damage.py").write_text(DAMAGER)
        cmd += f" | {sys.executable} -u {tmp_path / 'damage.py'} {' '.join(map(str, damage))}"
    t = ProcessTransport(["sh", "-c", cmd])
    try:
        res = Session(t, art.model_sha256, 8, stateful=True).run(xs, g, streams=starts)
    finally:
        t.close()
    assert res.complete and res.first_mismatch is None
    assert res.stats.bad_records == (1 if damage else 0)
    assert np.array_equal(np.array(res.outputs), _streams_ref(g, xs, starts))
    assert not np.array_equal(np.array(res.outputs), _stream_ref(g, xs)), "the state must have been reset"


@pytest.fixture(scope="module")
def stream_qemu(stream_fw, tmp_path_factory):
    """stream_fw's streaming model on the emulated board."""
    return _on_qemu(tmp_path_factory.mktemp("stream-qemu"), stream_fw[1])


@pytest.mark.emulator
def test_a_streaming_board_that_restarts_runs_its_stream_again(stream_qemu):
    """A board reset mid-stream empties the state: the host runs that stream again from its first input, so the
    outputs are those of an unbroken run (before: resumed mid-stream on an empty state, and differed)."""
    d, g, art, fw, img, board = stream_qemu
    sock = d / "qmp-reset.sock"
    xs = np.random.default_rng(8).integers(-128, 128, (24,) + g.input_shape).astype(np.int8)
    starts = [0, 8, 16]
    done = []

    def reset_once(k):
        if k == 12 and not done:
            done.append(k)
            qmp(sock, "system_reset")
    with QemuBoard(board, fw, img, qmp_socket=sock) as t:
        res = Session(t, art.model_sha256, 30, stateful=True).run(xs, g, on_inference=reset_once, streams=starts)
    assert res.resets == 1 and res.complete and res.first_mismatch is None
    assert len(res.outputs) == len(res.instret) == len(res.layer_cycles) == len(xs)
    assert np.array_equal(np.array(res.outputs), _streams_ref(g, xs, starts))
