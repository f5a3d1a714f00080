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
    """The one compiler command of a bare-metal RISC-V or host build (kinds.RiscvGcc / kinds.HostCC)."""
    from .kinds import toolchain_for
    return toolchain_for(board).command(board, Path(fw_dir), sources, output)


BUILD_TIMEOUT_S = 1800       # a first ESP-IDF build compiles ~1,000 files; a hung one must still end


def build_esp_idf(board: Board, fw_dir: Path, idf_path: Path) -> Path:
    """ESP-IDF's own build (`idf.py build`) of the rendered project; IDF_PATH names the ESP-IDF tree and the
    environment provides its toolchain (Espressif's export.sh, or pqlr's offline one: tools/idf_offline)."""
    import os
    import sys
    idf_py = Path(idf_path) / "tools" / "idf.py"
    if not idf_py.is_file():
        raise ToolchainMissing(f"IDF_PATH={idf_path} has no tools/idf.py; point IDF_PATH at an ESP-IDF tree")
    python = os.environ.get("IDF_PYTHON") or sys.executable
    cmd = [python, str(idf_py), "-C", str(fw_dir), "-B", str(Path(fw_dir) / "build"),
           f"-DIDF_TARGET={board.chip}", "build"]
    try:
        proc = subprocess.run(cmd, timeout=int(board.toolchain.get("build_timeout_s", BUILD_TIMEOUT_S)))
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"`idf.py build` in {fw_dir} did not finish in {exc.timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BuildError(f"`idf.py build` failed in {fw_dir} (its output is above): {' '.join(cmd)}")
    desc = Path(fw_dir) / "build" / "project_description.json"
    import json
    try:
        app = json.loads(desc.read_text())["app_elf"]
    except (OSError, ValueError, KeyError):
        raise BuildError(f"`idf.py build` finished but {desc} names no app ELF") from None
    return Path(fw_dir) / "build" / app


def build_platformio(board: Board, fw_dir: Path) -> Path:
    """`pio run` in the rendered project; its output is shown, its errors surfaced."""
    import os
    import sys
    pio = shutil.which("pio", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if pio is None:
        raise ToolchainMissing("PlatformIO is not installed: `pip install platformio` (or `make venv`); or set "
                               "IDF_PATH to build with ESP-IDF's own idf.py")
    env = board.toolchain["pio_env"]
    try:
        proc = subprocess.run([pio, "run", "-d", str(fw_dir), "-e", env],
                              timeout=int(board.toolchain.get("build_timeout_s", BUILD_TIMEOUT_S)))
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"`pio run -e {env}` in {fw_dir} did not finish in {exc.timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BuildError(f"`pio run -e {env}` failed in {fw_dir} (see its output above). If it could not "
                         f"download the {board.toolchain['pio_platform']} platform or toolchain, this machine "
                         f"has no access to the PlatformIO registry: set IDF_PATH to an ESP-IDF tree and build "
                         f"with idf.py (`make build-c6` does it offline), or build where the registry is reachable.")
    return Path(fw_dir) / ".pio" / "build" / env / "firmware.elf"


def build_firmware(board: Board, rendered: dict, output: Path | None = None) -> Path:
    """Build a rendered project with the board's toolchain kind (device/kinds.py)."""
    from .kinds import toolchain_for
    return toolchain_for(board).build(board, rendered, output)


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
