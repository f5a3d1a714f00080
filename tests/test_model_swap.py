"""A new model without a new app: the firmware compiles in its model's shapes, tiling and arena plan, and reads
the layers' quantisation and the tiles' CRCs from the model partition at boot, after checking the partition's
architecture CRC and its SHA-256. A retrained / requantised model of the same architecture runs bit-exact on
the old app; another architecture, or a damaged table, is refused with the reason."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import random_graph, random_inputs
from hostside import api
from hostside.artifact import LAYER_OFFSETS, architecture_crc32, write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.flash import flash_plan
from hostside.errors import DeviceError, PqlrError
from hostside.plan import make_plan
from hostside.reference import run_batch

SHAPE = dict(input_shape=(20, 10), channels=8, blocks=2)


def _model(tmp_path, seed, name, board, **shape):
    _, g, _ = random_graph(seed, **(SHAPE | shape))
    return write_model_bin(tmp_path / name, g, make_plan(g, board))


def test_architecture_crc_ignores_weights_and_quantisation_only(tmp_path):
    b = load_board("rv32-virt")
    a, c, d = _model(tmp_path, 1, "a.bin", b), _model(tmp_path, 2, "c.bin", b), _model(tmp_path, 3, "d.bin", b, channels=12)
    assert a.model_sha256 != c.model_sha256
    assert architecture_crc32(a.data) == architecture_crc32(c.data)
    assert architecture_crc32(a.data) != architecture_crc32(d.data)


@pytest.mark.emulator
def test_retrained_model_runs_bit_exact_on_the_old_app(tmp_path):
    b = load_board("rv32-virt")
    old = _model(tmp_path, 1, "old.bin", b)
    new = _model(tmp_path, 2, "new.bin", b)                   # same architecture, other weights and scales
    fw = build_firmware(b, render_firmware(old, b, tmp_path / "fw"))
    # --model-only accepts it for this app; only the model partition is written
    assert flash_plan(load_board("esp32c6"), tmp_path / "fw", tmp_path / "new.bin", model_only=True)
    img = api.flash(b, tmp_path / "new.bin", tmp_path / "fw")["flash_image"]
    x = random_inputs(new.graph, 12, seed=4)
    res = api.run_on_board(b, fw, new, x, flash_image=img, model_bin=tmp_path / "new.bin")
    assert res.hello["model"] == new.model_sha256 and res.hello["swap"] == "1"
    got = np.array(res.outputs, dtype=np.int64)
    want = run_batch(new.graph, x).astype(np.int64).reshape(len(x), -1)
    assert np.array_equal(got, want)
    assert not np.array_equal(want, run_batch(old.graph, x).astype(np.int64).reshape(len(x), -1))


@pytest.mark.emulator
def test_other_architecture_or_damaged_table_is_refused(tmp_path):
    b = load_board("rv32-virt")
    old = _model(tmp_path, 1, "old.bin", b)
    wide = _model(tmp_path, 2, "wide.bin", b, channels=12)
    fw = build_firmware(b, render_firmware(old, b, tmp_path / "fw"))
    with pytest.raises(PqlrError, match="another architecture"):
        flash_plan(load_board("esp32c6"), tmp_path / "fw", tmp_path / "wide.bin", model_only=True)
    img = api.flash(b, tmp_path / "wide.bin", tmp_path / "fw")["flash_image"]
    with pytest.raises(DeviceError, match="model_architecture"):
        api.run_on_board(b, fw, wide, random_inputs(wide.graph, 1), flash_image=img, model_bin=tmp_path / "wide.bin")
    # a quantisation byte changed in the layer table (header CRC still valid): the SHA-256 check catches it
    data = bytearray(old.data)
    lt = struct.unpack_from("<I", data, 52)[0]
    data[lt + LAYER_OFFSETS["out_zp"]] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    img = api.flash(b, tmp_path / "bad.bin", tmp_path / "fw")["flash_image"]
    with pytest.raises(DeviceError, match="model_sha256"):
        api.run_on_board(b, fw, old, random_inputs(old.graph, 1), flash_image=img, model_bin=tmp_path / "bad.bin")
