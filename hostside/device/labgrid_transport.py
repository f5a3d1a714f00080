"""A board in a labgrid board farm, reached through labgrid (an optional extra: pip install 'pqlr[farm]').

The place must exist on the coordinator (LG_COORDINATOR, default 127.0.0.1:20408) and hold a serial port
(e.g. an exporter's RawSerialPort/USBSerialPort, which labgrid serves through ser2net). pqlr acquires the
place if it is free, talks to the board through labgrid's SerialDriver (RFC 2217), and releases the place
when done if it acquired it."""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import DeviceError, PqlrError
from .transport import LineFraming


def _client(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("labgrid-client")
    if exe is None:
        import sys
        from pathlib import Path
        cand = Path(sys.executable).parent / "labgrid-client"
        exe = str(cand) if cand.exists() else None
    if exe is None:
        raise PqlrError("labgrid is not installed: pip install 'pqlr[farm]' (labgrid), then set LG_COORDINATOR")
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise DeviceError(f"labgrid-client {' '.join(args)} failed: {(p.stderr or p.stdout).strip()}")
    return p


class LabgridTransport(LineFraming):
    """Transport over a labgrid place's serial port."""

    def __init__(self, place: str, acquire: bool = True):
        try:
            from labgrid import Target
            from labgrid.driver import SerialDriver
            from labgrid.resource.remote import RemotePlace
        except ImportError:
            raise PqlrError("labgrid is not installed: pip install 'pqlr[farm]' (labgrid)") from None
        self.name = f"labgrid place {place} via {os.environ.get('LG_COORDINATOR', '127.0.0.1:20408')}"
        self.place = place
        self._acquired = False
        if acquire:
            p = _client("-p", place, "acquire", check=False)
            if p.returncode == 0:
                self._acquired = True
            elif "already acquired" not in (p.stderr + p.stdout):
                raise DeviceError(f"cannot acquire labgrid place {place}: {(p.stderr or p.stdout).strip()}")
        try:
            self._target = Target(f"pqlr-{place}")
            RemotePlace(self._target, name=place)
            self._driver = SerialDriver(self._target, name=None)
            self._target.activate(self._driver)
        except Exception as exc:
            self.close()
            raise DeviceError(f"labgrid place {place}: {exc}") from None
        self._buf = b""

    def write(self, data: bytes) -> None:
        try:
            self._driver.write(data)
        except Exception as exc:
            raise DeviceError(f"{self.name}: write failed: {exc}") from None

    def _chunk(self, timeout: float) -> bytes | None:
        try:
            return self._driver.read(size=1, timeout=min(timeout, 0.5), max_size=65536)
        except Exception as exc:
            if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
                return b""
            raise DeviceError(f"{self.name}: read failed: {exc}") from None

    def close(self) -> None:
        try:
            if getattr(self, "_target", None) is not None:
                self._target.deactivate_all_drivers()
        except Exception:
            pass
        if self._acquired:
            _client("-p", self.place, "release", check=False)
            self._acquired = False
