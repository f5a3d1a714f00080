"""Board behaviour by kind. A board file names its kinds (`toolchain.kind`, `flasher.kind`); each kind's
behaviour lives in one class here — how it builds, flashes, is opened for talking, and where its latency comes
from — as esptool keeps one class per chip. No board name appears in code: a new board is a TOML file using
these kinds, and a new kind is a class registered below."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from ..boards import Board, kind_of
from ..errors import BuildError, PqlrError


# --- toolchains: rendered project → firmware binary -------------------------------------------------------
class Toolchain:
    kind = ""

    def build(self, board: Board, rendered: dict, output: Path | None = None) -> Path:
        raise NotImplementedError


class _CompileOnce(Toolchain):
    """One compiler command over the rendered sources."""
    binary = "firmware"

    def build(self, board, rendered, output=None):
        fw_dir = Path(rendered["dir"])
        output = Path(output or fw_dir / self.binary)
        cmd = self.command(board, fw_dir, rendered["sources"], output)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip()
            if "overflowed" in msg or "will not fit" in msg:
                raise BuildError(f"firmware does not fit board {board.name}'s budgets:\n{msg}")
            raise BuildError(f"compiling firmware for {board.name} failed:\n{' '.join(cmd)}\n{msg}")
        return output


class RiscvGcc(_CompileOnce):
    """Bare-metal RISC-V: the cross gcc with the board's linker script (rv32-virt)."""
    kind = "riscv-gcc"
    binary = "firmware.elf"

    def command(self, board, fw_dir, sources, output):
        from .build import COMMON, FREESTANDING, find_tool
        cc = find_tool(board.toolchain["cc"], board.toolchain["debian_package"])
        return [cc, *board.cflags, *board.firmware.get("optimize", "-O2").split(), *COMMON, *FREESTANDING,
                "-I", str(fw_dir), "-T", str(fw_dir / "link.ld"), "-Wl,--gc-sections", f"-Wl,-Map={output}.map",
                *sources, "-o", str(output), "-lgcc"]


class HostCC(_CompileOnce):
    """The development host's cc; the firmware reads model.bin from a file."""
    kind = "host-cc"

    def command(self, board, fw_dir, sources, output):
        from .build import COMMON, find_tool
        cc = find_tool(board.toolchain["cc"], board.toolchain["debian_package"])
        return [cc, *board.firmware.get("optimize", "-O2").split(), *COMMON, "-I", str(fw_dir), *sources, "-o", str(output)]


class EspIdfProject(Toolchain):
    """An ESP-IDF project: ESP-IDF's own idf.py where IDF_PATH is set, PlatformIO otherwise."""
    kind = "platformio"

    def command(self, board, fw_dir, sources, output):
        raise BuildError(f"board {board.name} builds an ESP-IDF project (idf.py or pio), not one compiler command")

    def build(self, board, rendered, output=None):
        from .build import build_esp_idf, build_platformio
        fw_dir = Path(rendered["dir"])
        idf = os.environ.get("IDF_PATH")
        return build_esp_idf(board, fw_dir, Path(idf)) if idf else build_platformio(board, fw_dir)


# --- flashers: how the model and firmware reach the board, how we talk to it, where time comes from ----------
class Flasher:
    kind = ""

    def flash(self, board: Board, model_bin: Path, fw_dir: Path, port: str | None, model_only: bool = False,
              merged: Path | None = None) -> dict:
        raise NotImplementedError

    @contextmanager
    def open(self, board: Board, firmware: Path, model_bin: Path, port: str | None = None,
             flash_image: Path | None = None, qmp_socket: Path | None = None):
        raise NotImplementedError
        yield

    def mlperf_provenance(self, board: Board) -> str:
        return "measured: the board's cycle counter"


class QemuFlasher(Flasher):
    """The emulated board: the flash image QEMU maps, QEMU started with the firmware, its UART on a pty."""
    kind = "qemu"

    def flash(self, board, model_bin, fw_dir, port, model_only=False, merged=None):
        from .qemu import make_flash_image
        img = make_flash_image(board, Path(model_bin), Path(fw_dir) / "flash.img")
        return {"flash_image": str(img), "model_partition_offset": board.model_partition.offset}

    @contextmanager
    def open(self, board, firmware, model_bin, port=None, flash_image=None, qmp_socket=None):
        from .qemu import QemuBoard
        with QemuBoard(board, Path(firmware), Path(flash_image or Path(firmware).parent / "flash.img"),
                       qmp_socket=qmp_socket) as q:
            yield q

    def mlperf_provenance(self, board):
        return (f"estimated: QEMU cycle counter (= instructions under -icount) at {board.cpu_hz / 1e6:g} MHz, "
                f"CPI 1, no flash wait states")


class ProcessFlasher(Flasher):
    """The host build: nothing to flash; the firmware runs as a process reading model.bin."""
    kind = "none"

    def flash(self, board, model_bin, fw_dir, port, model_only=False, merged=None):
        return {"model_file": str(model_bin)}

    @contextmanager
    def open(self, board, firmware, model_bin, port=None, flash_image=None, qmp_socket=None):
        from .transport import ProcessTransport
        t = ProcessTransport([str(firmware), str(model_bin)])
        try:
            yield t
        finally:
            t.close()

    def mlperf_provenance(self, board):
        return "measured: the development host's clock, not a microcontroller"


class EsptoolFlasher(Flasher):
    """An Espressif chip on a serial port: esptool's scripting API writes it; pyserial talks to it at the board
    file's baud."""
    kind = "esptool"

    def flash(self, board, model_bin, fw_dir, port, model_only=False, merged=None):
        from .flash import flash_esp, merged_image
        if merged is not None:
            return {"merged_image": str(merged_image(board, Path(model_bin), Path(merged), Path(fw_dir))),
                    "note": "written offline with esptool merge-bin; nothing was flashed"}
        return flash_esp(board, Path(fw_dir), Path(model_bin), port, model_only)

    @contextmanager
    def open(self, board, firmware, model_bin, port=None, flash_image=None, qmp_socket=None):
        from .transport import SerialTransport
        if port is None:
            raise PqlrError(f"board {board.name} needs --port (e.g. /dev/ttyACM0)")
        t = SerialTransport(port, int(board.serial.get("baud", 115200)))
        try:
            yield t
        finally:
            t.close()


TOOLCHAINS = {c.kind: c() for c in (RiscvGcc, HostCC, EspIdfProject)}
FLASHERS = {c.kind: c() for c in (QemuFlasher, ProcessFlasher, EsptoolFlasher)}


def toolchain_for(board: Board) -> Toolchain:
    return kind_of(board, "toolchain", TOOLCHAINS)


def flasher_for(board: Board) -> Flasher:
    return kind_of(board, "flasher", FLASHERS)
