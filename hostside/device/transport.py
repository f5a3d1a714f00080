"""One transport interface for every way of reaching a board's console: a serial port or QEMU's pty
(pyserial, also `socket://` and `rfc2217://` URLs), and the host build's stdin/stdout. Session code does
not know which one it has."""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from ..errors import DeviceError


class Transport(Protocol):
    name: str

    def write(self, data: bytes) -> None: ...
    def readline(self, timeout: float) -> bytes | None: ...
    def close(self) -> None: ...


class LineFraming:
    """Lines over any byte source: a transport gives _chunk(timeout) → bytes (b"" if nothing came yet,
    None at the end of the stream) and _eof_message()."""
    _buf = b""

    def readline(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            chunk = self._chunk(left)
            if chunk is None:
                if self._buf:
                    line, self._buf = self._buf, b""
                    return line
                raise DeviceError(self._eof_message())
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _chunk(self, timeout: float) -> bytes | None:
        raise NotImplementedError

    def _eof_message(self) -> str:
        return f"{getattr(self, 'name', 'the board')}: the stream ended"


class SerialTransport(LineFraming):
    """pyserial: /dev/ttyACM0, a QEMU pty (/dev/pts/N), socket://host:port, rfc2217://…"""

    def __init__(self, url: str, baud: int = 115200, open_timeout: float = 5.0):
        """open_timeout: how long to keep trying to open the port. After a reset (esptool's, after flashing),
        the ESP32-C6's USB-Serial-JTAG port disappears and comes back, so a first failure is not final."""
        import serial
        self.name = url
        deadline = time.monotonic() + open_timeout
        while True:
            try:
                self._ser = serial.serial_for_url(url, baudrate=baud or 115200, timeout=0.05)
                break
            except (serial.SerialException, OSError, ValueError) as exc:
                if time.monotonic() >= deadline or isinstance(exc, ValueError):
                    raise DeviceError(f"cannot open serial port {url}: {exc}. Check the port name "
                                      f"(ls /dev/ttyACM* /dev/ttyUSB*) and that no other program holds it") from None
                time.sleep(0.25)
        self._buf = b""

    def write(self, data: bytes) -> None:
        import termios

        import serial
        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            raise DeviceError(f"serial port {self.name} vanished while writing: {exc}") from None

    def _chunk(self, timeout: float) -> bytes | None:
        import serial
        try:
            return self._ser.read(4096)                       # returns after the port's 50 ms timeout
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"serial port {self.name} vanished while reading: {exc}") from None

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:
            pass


class ProcessTransport(LineFraming):
    """The host build: the firmware's stdin/stdout are its serial line."""

    def __init__(self, argv: list[str]):
        self.name = " ".join(argv)
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._proc.stdout, selectors.EVENT_READ)
        self._buf = b""

    def write(self, data: bytes) -> None:
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DeviceError(f"host firmware exited (code {self._proc.poll()}): "
                              f"{self._proc.stderr.read().decode(errors='replace').strip()}") from None

    def _chunk(self, timeout: float) -> bytes | None:
        if not self._sel.select(timeout):
            return b""
        return os.read(self._proc.stdout.fileno(), 65536) or None

    def _eof_message(self) -> str:
        return f"host firmware exited (code {self._proc.wait()})"

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            try:
                f.close()
            except Exception:
                pass


@contextmanager
def open_transport(board, firmware: Path, model_bin: Path, port: str | None = None, place: str | None = None,
                   flash_image: Path | None = None, qmp_socket: Path | None = None):
    """The one place a board's transport is chosen (bench, demo, mlperf and the board tests all come here):
    a labgrid place if given; else the board's flasher kind opens it (device/kinds.py): QEMU with the flash
    image, the host firmware as a process reading model.bin, or the serial port at the board file's baud."""
    if place:                                   # a board in a labgrid farm: whatever runs it, we only talk
        from .labgrid_transport import LabgridTransport
        t = LabgridTransport(place)
        try:
            yield t
        finally:
            t.close()
        return
    from .kinds import flasher_for
    with flasher_for(board).open(board, firmware, model_bin, port=port, flash_image=flash_image,
                                 qmp_socket=qmp_socket) as t:
        yield t
