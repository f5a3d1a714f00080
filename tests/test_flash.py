"""The esp32c6 flash path, offline with the real esptool: offsets from the partition table, the chip
check, a merged image with the model where the partition table says. No real flash happens here."""
import hashlib
from pathlib import Path

import pytest

from hostside import api
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.flash import bootloader_offset, flash_plan
from hostside.device.partitions import parse_table, table_bin
from hostside.errors import PqlrError


def test_partition_table_binary_round_trips():
    b = load_board("esp32c6")
    blob = table_bin(b)
    assert len(blob) == 0xC00
    entries = parse_table(blob)
    model = next(e for e in entries if e["name"] == "model")
    assert (model["type"], model["subtype"], model["offset"], model["size"]) == (0x40, 0x00, 0x110000, 0x100000)
    bad = bytearray(blob)
    bad[40] ^= 1
    with pytest.raises(PqlrError, match="MD5"):
        parse_table(bytes(bad))


def test_flash_plan_comes_from_the_board_and_esptool(small_model, tmp_path):
    b = load_board("esp32c6")
    assert bootloader_offset(b) == 0x0                               # esptool's definition for the C6
    render_firmware(small_model[1], b, tmp_path / "fw")
    pairs = flash_plan(b, tmp_path / "fw", small_model[0], model_only=True)
    assert pairs == [(0x110000, small_model[0])]                   # only the model partition
    with pytest.raises(PqlrError, match="no built firmware"):
        flash_plan(b, tmp_path / "fw", small_model[0], model_only=False)  # the app needs a build first


def test_model_only_refuses_a_model_the_app_was_not_built_for(small_model, trained_pipeline, tmp_path):
    """The app compiles in its model's tile table and quantisation parameters: --model-only can only put back
    the model the app was built for."""
    b = load_board("esp32c6")
    with pytest.raises(PqlrError, match="needs the folder of the app"):
        flash_plan(b, tmp_path / "nothing", small_model[0], model_only=True)
    render_firmware(small_model[1], b, tmp_path / "fw")
    other = trained_pipeline["model_bin"]
    with pytest.raises(PqlrError, match="another architecture"):
        flash_plan(b, tmp_path / "fw", other, model_only=True)


def test_flash_without_port_is_one_line(small_model, tmp_path):
    with pytest.raises(PqlrError, match="needs --port"):
        api.flash("esp32c6", small_model[0], tmp_path)


def test_merged_image_offline(small_model, tmp_path):
    """esptool merge-bin (offline): the model lands at the model partition's offset, the table at 0x8000."""
    r = api.flash("esp32c6", small_model[0], tmp_path / "fw", merged=tmp_path / "merged.bin")
    img = Path(r["merged_image"]).read_bytes()
    model = small_model[0].read_bytes()
    assert img[0x110000: 0x110000 + len(model)] == model
    table = {e["name"]: e for e in parse_table(img[0x8000: 0x8000 + 0xC00])}
    assert table["model"]["offset"] == 0x110000 and "coredump" in table          # esp-coredump has its partition
    assert hashlib.sha256(img[0x110000: 0x110000 + len(model)]).hexdigest() == hashlib.sha256(model).hexdigest()
