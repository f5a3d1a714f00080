"""The ESP32-C6 PlatformIO/ESP-IDF project: platformio.ini, partitions.csv, CMakeLists.txt,
sdkconfig.defaults and the ESP-IDF port, all computed from the board file."""
from __future__ import annotations

from pathlib import Path

import jinja2

from ..artifact import Artifact
from ..boards import Board


def ina226_params(board: Board) -> dict:
    """INA226 register values computed from the board file (current LSB 100 µA by default)."""
    cs = board.current_sensor
    if cs.get("kind") != "ina226":
        return {"sensor_kind": cs.get("kind", "none"), "ina226": 0, "i2c_sda": 0, "i2c_scl": 0, "i2c_addr": 0,
                "ina226_config": 0, "ina226_cal": 0, "ina226_lsb_ua": 0}
    lsb_ua = int(cs.get("current_lsb_ua", 100))
    cal = int(round(0.00512 / (lsb_ua * 1e-6 * float(cs["shunt_ohms"]))))
    if not 0 < cal < 0x8000:
        from ..errors import BoardError
        raise BoardError(f"board {board.name}: INA226 calibration {cal} out of range; change current_lsb_ua or shunt_ohms")
    # AVG = 16 samples, bus and shunt conversion 1.1 ms, shunt and bus continuous: ~35 ms window
    config = (0b010 << 9) | (0b100 << 6) | (0b100 << 3) | 0b111
    return {"sensor_kind": "ina226", "ina226": 1, "i2c_sda": int(cs["i2c_sda"]), "i2c_scl": int(cs["i2c_scl"]),
            "i2c_addr": hex(int(cs["i2c_addr"])), "ina226_config": hex(config), "ina226_cal": cal,
            "ina226_lsb_ua": lsb_ua}


IDF_REQUIRES = ("esp_partition", "esp_driver_usb_serial_jtag", "esp_driver_i2c")
"""ESP-IDF components the port uses beside the common ones (only a component named `main` gets every component
implicitly; listing them keeps the component correct under any name and documents what it needs)."""


def render_platformio(env: jinja2.Environment, ctx: dict, board: Board, out: Path, art: Artifact) -> list[Path]:
    """The ESP-IDF project (idf.py) that PlatformIO also builds (`src_dir = main`): sources in main/, the board's
    compiler flags in main/CMakeLists.txt, CONFIG_IDF_TARGET from the board's chip, the partition table from the
    board file (the model partition at its full reservation, the size model.h and the flasher use too), and
    model.bin inside the project, flashed with the app by `idf.py flash` and by `pio run -t upload`."""
    from ..errors import PqlrError
    part = board.model_partition
    if art.size > part.size:
        raise PqlrError(f"model.bin ({art.size} B) is larger than {board.name}'s model partition ({part.size} B)")
    if not art.data:
        raise PqlrError("render: the artifact carries no bytes (read it with read_model_bin)")
    tc = board.toolchain
    coredump = any(p.type == "data" and p.subtype == "coredump" for p in board.partitions)
    pctx = ctx | {
        "pio_env": tc["pio_env"], "pio_platform": tc["pio_platform"], "pio_board": tc["pio_board"],
        "pio_framework": tc["pio_framework"], "cpu_hz": board.cpu_hz, "cpu_mhz": board.cpu_hz // 1_000_000,
        "chip": board.chip, "flasher_chip": board.flasher.get("chip", board.chip),
        "upload_baud": board.flasher.get("baud", 460800),
        "flash_size_mb": board.flash_bytes // (1024 * 1024), "baud": board.serial.get("baud", 115200),
        "partitions": [{"name": p.name, "type": p.type, "subtype": p.subtype, "offset": hex(p.offset),
                        "size": hex(p.size)} for p in board.partitions],
        "model_partition_label": part.name, "model_partition_type": hex(part.type_id),
        "model_partition_subtype": hex(part.subtype_id), "model_offset": hex(part.offset),
        "stack_bytes": board.stack_bytes,
        "idf_requires": list(IDF_REQUIRES) + (["espcoredump"] if coredump else []), "coredump": coredump,
        "optimize": board.firmware.get("optimize", "-O2").split(),
    } | ina226_params(board)
    files = []

    def put(rel: str, template: str) -> None:
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(env.get_template(template).render(pctx))
        files.append(p)

    put("main/platform_espidf.c", "ports/esp-idf/platform_espidf.c.j2")
    pctx["sources"] = sorted(p.name for p in (out / "main").glob("*.c"))
    put("platformio.ini", "project/platformio.ini.j2")
    put("pio_flash_model.py", "project/pio_flash_model.py.j2")
    put("partitions.csv", "project/partitions.csv.j2")
    put("CMakeLists.txt", "project/CMakeLists.txt.j2")
    put("main/CMakeLists.txt", "project/main_CMakeLists.txt.j2")
    put("sdkconfig.defaults", "project/sdkconfig.defaults.j2")
    (out / "model.bin").write_bytes(art.data)
    files.append(out / "model.bin")
    return files
