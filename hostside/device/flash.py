"""Flashing a real ESP32-C6 through esptool's Python API (never by scraping its output).

Writes the bootloader, partition table and app that `pio run` produced, and model.bin at the model
partition's offset. The chip is checked first (an image for the C6 is never written to another chip).
"""
from __future__ import annotations

from pathlib import Path

from ..boards import Board
from ..errors import DeviceError, PqlrError

BOOTLOADER_OFFSET = {"esp32c6": 0x0}
PARTITION_TABLE_OFFSET = 0x8000


def build_outputs(board: Board, fw_dir: Path) -> dict[str, Path]:
    env = board.toolchain.get("pio_env", board.name)
    out = Path(fw_dir) / ".pio" / "build" / env
    files = {"bootloader": out / "bootloader.bin", "partitions": out / "partitions.bin", "app": out / "firmware.bin"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise PqlrError(f"no built firmware for {board.name} in {fw_dir} (missing {', '.join(missing)}): run "
                        f"`pqlr build --board {board.name}` first (PlatformIO must be able to download the "
                        f"espressif32 platform)")
    return files


def flash_plan(board: Board, fw_dir: Path, model_bin: Path, model_only: bool = False) -> list[tuple[int, Path]]:
    """(offset, file) pairs, from the board's partition table; nothing outside them is written."""
    model = Path(model_bin)
    part = board.model_partition
    if model.stat().st_size > part.size:
        raise PqlrError(f"model.bin ({model.stat().st_size} B) is larger than the model partition ({part.size} B)")
    pairs = [(part.offset, model)]
    if not model_only:
        files = build_outputs(board, fw_dir)
        app = board.partition("factory")
        pairs = [(BOOTLOADER_OFFSET[board.chip], files["bootloader"]), (PARTITION_TABLE_OFFSET, files["partitions"]),
                 (app.offset, files["app"])] + pairs
    return pairs


def esptool_args(board: Board, pairs: list[tuple[int, Path]], port: str, diff_with: Path | None = None) -> list[str]:
    """esptool's arguments: --chip from the board file (esptool refuses any other chip it finds on the
    port), offsets from the partition table, and --diff-with to rewrite only changed sectors."""
    args = ["--chip", board.flasher["chip"], "--port", port, "--baud", str(board.flasher.get("baud", 460800)),
            "--after", "hard-reset", "write-flash"]
    if diff_with is not None:
        args += ["--diff-with", str(diff_with)]
    for off, path in pairs:
        args += [hex(off), str(path)]
    return args


def merged_image(board: Board, model_bin: Path, out: Path, fw_dir: Path | None = None) -> Path:
    """One flash image (esptool merge-bin, offline): the partition table and the model partition, plus the
    bootloader and app when `pio run` built them — for a programmer, or to check what would be written."""
    import esptool
    from .partitions import TABLE_OFFSET, table_bin
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = out.with_name("partitions.bin")
    table.write_bytes(table_bin(board, Path(model_bin).stat().st_size))
    pairs = [(TABLE_OFFSET, table), (board.model_partition.offset, Path(model_bin))]
    if fw_dir is not None:
        try:
            files = build_outputs(board, fw_dir)
            pairs = [(BOOTLOADER_OFFSET[board.chip], files["bootloader"]), (TABLE_OFFSET, table),
                     (board.partition("factory").offset, files["app"]), (board.model_partition.offset, Path(model_bin))]
        except PqlrError:
            pass
    args = ["--chip", board.flasher["chip"], "merge-bin", "-o", str(out)]
    for off, path in sorted(pairs):
        args += [hex(off), str(path)]
    try:
        esptool.main(args)
    except SystemExit as exc:
        if exc.code:
            raise PqlrError(f"esptool merge-bin failed (exit {exc.code})") from None
    return out


def flash_esp(board: Board, fw_dir: Path, model_bin: Path, port: str | None, model_only: bool = False) -> dict:
    if not port:
        raise PqlrError(f"flashing {board.name} needs --port (e.g. /dev/ttyACM0); "
                        f"`make flash BOARD={board.name} PORT=/dev/ttyACM0`")
    pairs = flash_plan(board, fw_dir, model_bin, model_only)
    try:
        import esptool
    except ImportError:
        raise PqlrError("esptool is not installed in this environment: `pip install esptool`") from None
    # the model last written through this folder: with --model-only, only sectors that changed are rewritten
    last = Path(fw_dir) / ".flashed" / "model.bin"
    args = esptool_args(board, pairs, port, last if model_only and last.is_file() else None)
    try:
        esptool.main(args)   # esptool's documented scripting entry point; --chip makes it refuse other chips
    except SystemExit as exc:
        if exc.code:
            raise DeviceError(f"esptool failed writing {board.name} on {port} (exit {exc.code})") from None
    except Exception as exc:  # esptool raises FatalError and serial errors
        raise DeviceError(f"esptool failed on {port}: {exc}") from None
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(Path(model_bin).read_bytes())
    return {"port": port, "written": [{"offset": hex(o), "file": str(p)} for o, p in pairs]}
