"""What an ESP-IDF build produced, checked offline: esptool's image-info on the bootloader and the app (chip id,
checksum, SHA-256, app descriptor), the app ELF's instructions against the board's ISA (isa.py), and code and
static RAM by esp-idf-size (ESP-IDF's own size tool, from the map file) where it is installed."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ..boards import Board
from ..errors import BuildError
from . import isa


def image_info(path: Path, chip: str) -> dict:
    """esptool image-info (esptool's own parser and checks), reduced to the facts that decide whether the chip's
    ROM and bootloader will accept the image."""
    p = subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "image-info", str(path)],
                       capture_output=True, text=True)
    text = p.stdout + p.stderr
    chip_id = re.search(r"Chip ID: (\d+)", text)
    return {"file": str(path), "bytes": Path(path).stat().st_size, "esptool_exit": p.returncode,
            "chip_id": int(chip_id.group(1)) if chip_id else None,
            "checksum_valid": bool(re.search(r"Checksum: \S+ \(valid\)", text)),
            "sha256_valid": bool(re.search(r"Validation hash: \S+ \(valid\)", text)),
            "project": (re.search(r"Project name: (\S+)", text) or [None, None])[1],
            "esp_idf": (re.search(r"ESP-IDF: (\S+)", text) or [None, None])[1]}


def idf_size(map_file: Path, python: str | None = None) -> dict | None:
    """esp-idf-size's JSON (memory types and sections) for the app's map file; None without esp-idf-size."""
    p = subprocess.run([python or sys.executable, "-m", "esp_idf_size", "--format", "json2", str(map_file)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def summary(board: Board, fw_dir: Path, idf_python: str | None = None) -> dict:
    """The checks above for an `idf.py build` in fw_dir (its build/flasher_args.json names the images)."""
    build = Path(fw_dir) / "build"
    try:
        fa = json.loads((build / "flasher_args.json").read_text())
        desc = json.loads((build / "project_description.json").read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"no ESP-IDF build in {fw_dir} ({exc}); run `pqlr build --board {board.name}` with IDF_PATH "
                         f"set (make build-c6)") from None
    chip = fa["extra_esptool_args"]["chip"]
    elf = build / desc["app_elf"]
    app_map = elf.with_suffix(".map")
    sizes = idf_size(app_map, idf_python) if app_map.is_file() else None
    march = _march(board)
    out = {"board": board.name, "chip": chip,
           "bootloader": image_info(build / fa["bootloader"]["file"], chip),
           "app": image_info(build / fa["app"]["file"], chip),
           "flash_files": fa["flash_files"],
           "isa": {k: v for k, v in isa.check(elf, march).items() if k != "mnemonics"},
           "esp_idf_size": sizes}
    if sizes:
        parts = [(m["name"], sec, p["size"]) for m in sizes.get("layout", []) for sec, p in m.get("parts", {}).items()]
        in_ram = [(sec, n) for name, sec, n in parts if "RAM" in name.upper()]
        out["code_bytes"] = sum(n for name, sec, n in parts if name == "Flash Code") + \
            sum(n for sec, n in in_ram if sec.startswith(".text"))
        out["static_ram_bytes"] = sum(n for sec, n in in_ram)            # IRAM code + .data + .bss, as linked
        out["data_bss_bytes"] = sum(n for sec, n in in_ram if sec in (".data", ".bss"))
    return out


def _march(board: Board) -> str:
    """The -march the board file builds for, in the form isa.allowed() reads (rv32imac + zicsr + zifencei)."""
    flags = [f for f in board.cflags if f.startswith("-march=")]
    base = flags[0].split("=", 1)[1] if flags else "rv32imac"
    return base + ("" if "zicsr" in base else "_zicsr_zifencei")
