"""The emulated board: QEMU `virt` RV32IMAC with its UART on a pseudo-terminal, and a flash image (model.bin
at the model partition's offset) loaded into the memory window the firmware reads as its SPI flash."""
from __future__ import annotations

import re
import select
import subprocess
import time
from pathlib import Path

from ..boards import Board
from ..errors import DeviceError
from .build import find_tool
from .transport import SerialTransport

PTY_RE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


def make_flash_image(board: Board, model_bin: Path, image: Path) -> Path:
    """'Flash' for the emulated board: a flash image of the board's size with model.bin at the model partition."""
    data = Path(model_bin).read_bytes()
    part = board.model_partition
    if len(data) > part.size:
        raise DeviceError(f"model.bin is {len(data)} B but the model partition holds {part.size} B")
    size = int(board.memory["flash_image_bytes"])
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(size)                      # sparse zeros stand in for erased flash (0xFF on a chip)
        f.seek(part.offset)
        f.write(data)
    return image


class QemuBoard:
    """Context manager: starts QEMU, yields a pyserial transport on its UART's pty, stops QEMU."""

    def __init__(self, board: Board, elf: Path, flash_image: Path, start_timeout: float = 20.0,
                 qmp_socket: Path | None = None):
        self.board, self.elf, self.flash_image = board, Path(elf), Path(flash_image)
        self.start_timeout = start_timeout
        self.qmp_socket = qmp_socket
        self.proc: subprocess.Popen | None = None
        self.transport: SerialTransport | None = None
        self.pty: str | None = None

    def command(self) -> list[str]:
        qemu = find_tool(self.board.flasher["qemu"], self.board.flasher["debian_package"])
        return [qemu, "-M", self.board.flasher["machine"], "-bios", "none", "-display", "none",
                "-monitor", "none", "-icount", "shift=0", "-serial", "pty",
                "-device", f"loader,file={self.flash_image},addr={self.board.memory['flash_mmio_base']:#x},force-raw=on",
                "-kernel", str(self.elf)] + (["-qmp", f"unix:{self.qmp_socket},server=on,wait=off"]
                                             if self.qmp_socket else [])

    def __enter__(self) -> SerialTransport:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = b""
        deadline = time.monotonic() + self.start_timeout
        while self.pty is None:
            if self.proc.poll() is not None:
                rest = self.proc.stdout.read() or b""
                raise DeviceError(f"QEMU exited before opening its serial port: {(out + rest).decode(errors='replace').strip()}")
            if time.monotonic() > deadline:
                self.close()
                raise DeviceError("QEMU did not report its serial pty within "
                                  f"{self.start_timeout:.0f} s: {out.decode(errors='replace')}")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = self.proc.stdout.read1(4096) if hasattr(self.proc.stdout, "read1") else b""
                out += chunk
                m = PTY_RE.search(out)
                if m:
                    self.pty = m.group(1).decode()
        self.transport = SerialTransport(self.pty, self.board.serial.get("baud", 115200))
        return self.transport

    def close(self) -> None:
        if self.transport:
            self.transport.close()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def __exit__(self, *exc) -> None:
        self.close()


def qmp(socket_path: Path, command: str, timeout: float = 5.0) -> dict:
    """Send one QMP command (e.g. system_reset) to a QEMU started with a QMP socket; returns its reply."""
    import json
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(socket_path))
        f = s.makefile("rwb")
        json.loads(f.readline())                                   # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}).encode() + b"\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        return reply
