"""A real ESP32-C6 image, built offline by ESP-IDF's own build system with Debian's RISC-V toolchain
(tools/idf_offline), from a trained model: checked with esptool image-info (chip id, checksums, SHA-256, app
descriptor), its instructions against RV32IMAC + Zicsr + Zifencei, code and static RAM by esp-idf-size, and
model.bin flashed with the app at the model partition. Needs an ESP-IDF v6.0.2 tree (IDF_PATH, or build/esp-idf
from `make build-c6`); skips with the command otherwise. Not booted: no ESP32-C6 or C6 emulator here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("tools/idf.py", "components/heap/tlsf/tlsf.c", "components/bootloader/subproject/components/micro-ecc/micro-ecc/uECC.c")


def _idf_tree() -> Path | None:
    for cand in (os.environ.get("IDF_PATH"), ROOT / "build" / "esp-idf"):
        if cand and all((Path(cand) / f).is_file() for f in NEEDED):
            return Path(cand)
    return None


def test_esp32c6_image_builds_offline(trained_pipeline, tmp_path):
    idf = _idf_tree()
    if idf is None:
        pytest.skip("no ESP-IDF v6.0.2 tree: run `make build-c6` (clones it into build/esp-idf: needs github.com), "
                    "or `bash tools/get_esp_idf.sh build/esp-idf`, or set IDF_PATH to an ESP-IDF v6.0.2 tree with its "
                    "micro-ecc and tlsf submodules")
    work = ROOT / "build" / "idf-offline"
    setup = subprocess.run(["bash", str(ROOT / "tools/idf_offline/setup.sh"), str(idf), str(work)],
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    model = trained_pipeline["model_bin"]
    out = tmp_path / "c6"
    cmd = (f"source {work}/env.sh && {sys.executable} -m hostside.cli build --board esp32c6 --model {model} "
           f"--out {out}")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    img = json.loads((out / "image.json").read_text())
    for part in ("app", "bootloader"):
        assert img[part]["chip_id"] == 13, img[part]                       # ESP32-C6
        assert img[part]["checksum_valid"] and img[part]["sha256_valid"], img[part]
    assert img["app"]["project"] == "pqlr_esp32c6" and img["app"]["esp_idf"] == "v6.0.2"   # the app descriptor
    assert img["isa"]["instructions"] > 10_000 and img["isa"]["outside"] == {}, img["isa"]
    assert img["code_bytes"] > 0 and img["static_ram_bytes"] > 0, img
    # model.bin goes with the app, at the model partition's offset from the board file
    assert img["flash_files"]["0x110000"] == "../model.bin"
    assert (out / "model.bin").read_bytes() == Path(model).read_bytes()
    assert "code" in p.stdout and "static RAM" in p.stdout                  # what `pqlr build` tells the user
    # one merged flash image (esptool merge_bin, offline) from the build's own offsets: bootloader, table, app, model
    from hostside import api
    from hostside.boards import load_board
    from hostside.device.partitions import table_bin
    merged = Path(api.flash(load_board("esp32c6"), out / "model.bin", out, merged=tmp_path / "flash.bin")["merged_image"])
    blob = merged.read_bytes()
    app = (out / "build" / "pqlr_esp32c6.bin").read_bytes()
    assert blob[0x10000: 0x10000 + len(app)] == app
    assert blob[0x8000: 0x8C00] == table_bin(load_board("esp32c6"))
    model_bytes = Path(model).read_bytes()
    assert blob[0x110000: 0x110000 + len(model_bytes)] == model_bytes
