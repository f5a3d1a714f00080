"""Flashing a real ESP32-C6 through esptool's Python API (never by scraping its output).

Writes the bootloader, partition table and app that `pio run` produced, and model.bin at the model
partition's offset. The chip is checked first (an image for the C6 is never written to another chip).
"""
from __future__ import annotations

from pathlib import Path

from ..boards import Board
from ..errors import DeviceError, PqlrError

PARTITION_TABLE_OFFSET = 0x8000


def bootloader_offset(board: Board) -> int:
    """Where the chip's ROM looks for the second-stage bootloader: esptool's own definition for the chip
    (0x0 on the ESP32-C6, 0x1000 on the ESP32), not a table kept here."""
    from esptool.targets import CHIP_DEFS
    chip = board.flasher["chip"]
    if chip not in CHIP_DEFS:
        raise PqlrError(f"board {board.name}: esptool does not know the chip {chip!r} (known: {', '.join(CHIP_DEFS)})")
    return CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET


def build_outputs(board: Board, fw_dir: Path) -> dict[str, tuple[int, Path]]:
    """name → (offset, file) for the bootloader, partition table and app a build left in the project: ESP-IDF's
    (build/flasher_args.json names files and offsets; they must agree with the board file) or PlatformIO's
    (.pio/build/<env>/, offsets from esptool's chip definition and the board's partition table)."""
    import json
    fw_dir = Path(fw_dir)
    args = fw_dir / "build" / "flasher_args.json"
    app = board.partition("factory").offset
    if args.is_file():
        fa = json.loads(args.read_text())
        files = {k: (int(fa[key]["offset"], 16), fw_dir / "build" / fa[key]["file"])
                 for k, key in (("bootloader", "bootloader"), ("partitions", "partition-table"), ("app", "app"))}
        want = {"bootloader": bootloader_offset(board), "partitions": PARTITION_TABLE_OFFSET, "app": app}
        odd = {k: hex(off) for k, (off, _) in files.items() if off != want[k]}
        if odd:
            raise PqlrError(f"the build in {fw_dir} puts {odd} where boards/{board.name}.toml and esptool expect "
                            f"{ {k: hex(v) for k, v in want.items() if k in odd} }: re-render and rebuild")
    else:
        out = fw_dir / ".pio" / "build" / board.toolchain.get("pio_env", board.name)
        files = {"bootloader": (bootloader_offset(board), out / "bootloader.bin"),
                 "partitions": (PARTITION_TABLE_OFFSET, out / "partitions.bin"), "app": (app, out / "firmware.bin")}
    missing = [str(p) for _, p in files.values() if not p.is_file()]
    if missing:
        raise PqlrError(f"no built firmware for {board.name} in {fw_dir} (missing {', '.join(missing)}): run "
                        f"`pqlr build --board {board.name}` first (ESP-IDF's idf.py with IDF_PATH set, or PlatformIO)")
    return files


def _same_model_as_app(fw_dir: Path, model: Path) -> None:
    """--model-only rewrites the model partition under an app that is already on the board. The app compiles in
    its model's shapes, tiling and arena plan and reads the weights and quantisation from the partition at boot
    (PQLR_MODEL_SWAP), so any model of the same architecture can go there: retrained, requantised. A model whose
    architecture differs needs a new app, and builds with the on-device front end or the MLPerf protocol (which
    compile the input/output quantisation in) take only their own model."""
    from ..artifact import architecture_crc32, read_model_bin
    from ..codegen.render import read_render_manifest
    manifest = read_render_manifest(Path(fw_dir))
    if manifest is None:
        raise PqlrError(f"--model-only needs the folder of the app that is on the board ({fw_dir} has no "
                        f".pqlr-render.json): pass --fw <that folder>, or flash without --model-only")
    art = read_model_bin(model)
    if art.model_sha256 == manifest["model_sha256"]:
        return
    if not manifest.get("model_swap"):
        raise PqlrError(f"--model-only: the app in {fw_dir} takes only model {manifest['model_sha256'][:12]} (it was "
                        f"built with the audio front end or the MLPerf protocol, which compile the model's input "
                        f"and output quantisation in); {model} is {art.model_sha256[:12]}: build and flash a new app")
    if f"{architecture_crc32(art.data):08x}" != manifest.get("architecture_crc32"):
        raise PqlrError(f"--model-only: {model} has another architecture (shapes, tiling or arena plan) than the model "
                        f"the app in {fw_dir} was built for; a different architecture needs a new app: `pqlr build` "
                        f"then `pqlr flash` without --model-only")


def flash_plan(board: Board, fw_dir: Path, model_bin: Path, model_only: bool = False) -> list[tuple[int, Path]]:
    """(offset, file) pairs, from the board's partition table; nothing outside them is written."""
    model = Path(model_bin)
    part = board.model_partition
    if model.stat().st_size > part.size:
        raise PqlrError(f"model.bin ({model.stat().st_size} B) is larger than the model partition ({part.size} B)")
    if model_only:
        _same_model_as_app(fw_dir, model)
    pairs = [(part.offset, model)]
    if not model_only:
        files = build_outputs(board, fw_dir)
        pairs = [files["bootloader"], files["partitions"], files["app"]] + pairs
    return pairs


def merged_image(board: Board, model_bin: Path, out: Path, fw_dir: Path | None = None) -> Path:
    """One flash image (esptool's merge_bin, offline): the partition table and the model partition, plus the
    bootloader and app when they were built — for a programmer, or to check what would be written."""
    from esptool.cmds import merge_bin
    from .partitions import TABLE_OFFSET, table_bin
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs: list[tuple[int, bytes]] = [(TABLE_OFFSET, table_bin(board)), (board.model_partition.offset,
                                                                         Path(model_bin).read_bytes())]
    if fw_dir is not None:
        try:
            files = build_outputs(board, fw_dir)
            pairs = [(off, path.read_bytes()) for off, path in (files["bootloader"], files["app"])] + \
                [(TABLE_OFFSET, table_bin(board)), (board.model_partition.offset, Path(model_bin).read_bytes())]
        except PqlrError:
            pass
    try:
        merge_bin(sorted(pairs), board.flasher["chip"], output=str(out))
    except Exception as exc:                    # esptool's FatalError and friends, as one line
        raise PqlrError(f"esptool merge_bin failed: {exc}") from None
    return out


def flash_esp(board: Board, fw_dir: Path, model_bin: Path, port: str | None, model_only: bool = False) -> dict:
    """Write through esptool's scripting API (esptool.cmds): connect, refuse a chip other than the board
    file's, load the stub, write each (offset, file) — with --model-only only the model partition, and only
    the sectors that changed since the last write through this folder — then hard-reset."""
    if not port:
        raise PqlrError(f"flashing {board.name} needs --port (e.g. /dev/ttyACM0); "
                        f"`make flash BOARD={board.name} PORT=/dev/ttyACM0`")
    pairs = flash_plan(board, fw_dir, model_bin, model_only)
    try:
        from esptool.cmds import attach_flash, detect_chip, reset_chip, run_stub, write_flash
        from esptool.targets import CHIP_DEFS
    except ImportError:
        raise PqlrError("esptool is not installed in this environment: `pip install esptool`") from None
    last = Path(fw_dir) / ".flashed" / "model.bin"
    diff = [last.read_bytes() if model_only and last.is_file() and off == board.model_partition.offset else None
            for off, _ in pairs]
    want = CHIP_DEFS[board.flasher["chip"]].CHIP_NAME
    try:
        with detect_chip(port) as esp:
            if esp.CHIP_NAME != want:
                raise DeviceError(f"{port} has an {esp.CHIP_NAME}, not the {want} board {board.name} is for; "
                                  f"nothing was written")
            esp = run_stub(esp)
            baud = int(board.flasher.get("baud", 460800))
            if baud != esp.ESP_ROM_BAUD:
                esp.change_baud(baud)
            attach_flash(esp)
            write_flash(esp, [(off, str(path)) for off, path in pairs],
                        **({"diff_with": diff} if any(d is not None for d in diff) else {}))
            reset_chip(esp, "hard-reset")
    except DeviceError:
        raise
    except Exception as exc:                    # esptool raises FatalError, serial errors, timeouts
        raise DeviceError(f"esptool failed writing {board.name} on {port}: {exc}") from None
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(Path(model_bin).read_bytes())
    return {"port": port, "chip": want, "written": [{"offset": hex(o), "file": str(p)} for o, p in pairs]}
