"""The esp32c6 flash path, offline with the real esptool: offsets from the partition table, the chip
check, a merged image with the model where the partition table says. No real flash happens here."""
import hashlib
from pathlib import Path

import pytest

from hostside import api
from hostside.boards import load_board
from hostside.device.flash import esptool_args, flash_plan
from hostside.device.partitions import parse_table, table_bin
from hostside.errors import PqlrError


def test_partition_table_binary_round_trips():
    b = load_board("esp32c6")
    blob = table_bin(b)
    assert len(blob) == 0xC00
    entries = parse_table(blob)
    model = next(e for e in entries if e["name"] == "model")
    assert (model["type"], model["subtype"], model["offset"], model["size"]) == (1, 0x40, 0x110000, 0x100000)
    bad = bytearray(blob)
    bad[40] ^= 1
    with pytest.raises(PqlrError, match="MD5"):
        parse_table(bytes(bad))


def test_esptool_arguments_come_from_the_board(small_model, tmp_path):
    b = load_board("esp32c6")
    pairs = flash_plan(b, tmp_path, small_model[0], model_only=True)
    assert pairs == [(0x110000, small_model[0])]                   # only the model partition
    args = esptool_args(b, pairs, "/dev/ttyACM0", diff_with=tmp_path / "last.bin")
    assert args[:2] == ["--chip", "esp32c6"]                        # esptool refuses any other chip
    assert "write-flash" in args and "--diff-with" in args and args[-2:] == ["0x110000", str(small_model[0])]
    with pytest.raises(PqlrError, match="no built firmware"):
        flash_plan(b, tmp_path, small_model[0], model_only=False)  # the app needs `pio run` first


def test_flash_without_port_is_one_line(small_model, tmp_path):
    with pytest.raises(PqlrError, match="needs --port"):
        api.flash("esp32c6", small_model[0], tmp_path)


def test_merged_image_offline(small_model, tmp_path):
    """esptool merge-bin (offline): the model lands at the model partition's offset, the table at 0x8000."""
    r = api.flash("esp32c6", small_model[0], tmp_path / "fw", merged=tmp_path / "merged.bin")
    img = Path(r["merged_image"]).read_bytes()
    model = small_model[0].read_bytes()
    assert img[0x110000: 0x110000 + len(model)] == model
    assert parse_table(img[0x8000: 0x8000 + 0xC00])[-1]["name"] == "model"
    assert hashlib.sha256(img[0x110000: 0x110000 + len(model)]).hexdigest() == hashlib.sha256(model).hexdigest()
