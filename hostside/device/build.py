"""Build rendered firmware: the RISC-V cross compiler for rv32-virt, cc for host, PlatformIO for esp32c6."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..boards import Board
from ..errors import BuildError, ToolchainMissing

COMMON = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
FREESTANDING = ["-ffreestanding", "-nostdlib", "-nostartfiles", "-fno-tree-loop-distribute-patterns",
                "-ffunction-sections", "-fdata-sections"]


def find_tool(exe: str, package: str) -> str:
    path = shutil.which(exe)
    if path is None:
        raise ToolchainMissing(f"{exe} not found: install the Debian package {package} "
                               f"(`sudo apt-get install -y --no-install-recommends {package}`, or `make deps`)")
    return path


def compile_command(board: Board, fw_dir: Path, sources: list[str], output: Path) -> list[str]:
    kind = board.toolchain["kind"]
    fw_dir = Path(fw_dir)
    if kind == "riscv-gcc":
        cc = find_tool(board.toolchain["cc"], board.toolchain["debian_package"])
        return [cc, *board.cflags, *board.firmware.get("optimize", "-O2").split(), *COMMON, *FREESTANDING, "-I", str(fw_dir), "-T", str(fw_dir / "link.ld"),
                "-Wl,--gc-sections", f"-Wl,-Map={output}.map", *sources, "-o", str(output), "-lgcc"]
    if kind == "host-cc":
        cc = find_tool(board.toolchain["cc"], board.toolchain["debian_package"])
        return [cc, *board.firmware.get("optimize", "-O2").split(), *COMMON, "-I", str(fw_dir), *sources, "-o", str(output)]
    raise BuildError(f"board {board.name} builds with {kind}; use `pqlr build --board {board.name}` "
                     f"(PlatformIO) on a machine that can download the espressif32 platform")


def build_platformio(board: Board, fw_dir: Path) -> Path:
    """`pio run` in the rendered project; its output is shown, its errors surfaced."""
    import os
    import sys
    pio = shutil.which("pio", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if pio is None:
        raise ToolchainMissing("PlatformIO is not installed: `pip install platformio` (or `make venv`)")
    env = board.toolchain["pio_env"]
    proc = subprocess.run([pio, "run", "-d", str(fw_dir), "-e", env])
    if proc.returncode != 0:
        raise BuildError(f"`pio run -e {env}` failed in {fw_dir} (see its output above). If it could not "
                         f"download the {board.toolchain['pio_platform']} platform or toolchain, this machine "
                         f"has no access to the PlatformIO registry: build where it has.")
    return Path(fw_dir) / ".pio" / "build" / env / "firmware.elf"


def build_firmware(board: Board, rendered: dict, output: Path | None = None) -> Path:
    fw_dir = Path(rendered["dir"])
    if board.toolchain["kind"] == "platformio":
        return build_platformio(board, fw_dir)
    output = Path(output or fw_dir / ("firmware.elf" if board.toolchain["kind"] == "riscv-gcc" else "firmware"))
    cmd = compile_command(board, fw_dir, rendered["sources"], output)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        if "overflowed" in msg or "will not fit" in msg:
            raise BuildError(f"firmware does not fit board {board.name}'s budgets:\n{msg}")
        raise BuildError(f"compiling firmware for {board.name} failed:\n{' '.join(cmd)}\n{msg}")
    return output


def section_sizes(board: Board, elf: Path) -> dict:
    """text/data/bss of a cross-built ELF (riscv64-unknown-elf-size, Berkeley format)."""
    size = shutil.which(board.toolchain["cc"].replace("gcc", "size")) if board.toolchain["kind"] == "riscv-gcc" \
        else shutil.which("size")
    if size is None:
        return {}
    out = subprocess.run([size, str(elf)], capture_output=True, text=True).stdout.splitlines()
    if len(out) < 2:
        return {}
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


ELF_MACHINE_RISCV = 243


def code_size(elf: Path) -> dict | None:
    """text/data/bss of a RISC-V ELF (the rv32-virt firmware or an ESP32-C6 app), by the RISC-V binutils'
    `size`; None for anything else (a host executable's size says nothing about a microcontroller) or where
    binutils is missing. Decided by the file's ELF header, not by the board's name."""
    try:
        head = Path(elf).read_bytes()[:20]
    except OSError:
        return None
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != ELF_MACHINE_RISCV:
        return None
    size = shutil.which("riscv64-unknown-elf-size") or shutil.which("riscv32-esp-elf-size")
    if size is None:
        return None
    out = subprocess.run([size, str(elf)], capture_output=True, text=True).stdout.splitlines()
    if len(out) < 2:
        return None
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}
