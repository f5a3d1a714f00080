"""The fixed-point front end: its tolerance against the float front end (the numpy spec), and the C
front end in the firmware bit-exact with that spec, on the host and on the emulated board."""
import numpy as np
import pytest

from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.data.features import PRESETS, features
from hostside.data.fixed_frontend import features_q, tables
from hostside.device.build import build_firmware
from hostside.device.session import Session
from hostside.device.transport import ProcessTransport
from hostside.plan import make_plan
from hostside.reference import run_batch

from conftest import random_graph


def _clips(n=12, seed=0):
    """Speech-like test audio: tones with vibrato and noise at several levels, and near-silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    out = []
    for i in range(n):
        f0 = rng.uniform(100, 300)
        x = sum(np.sin(2 * np.pi * f0 * h * t + 3 * np.sin(2 * np.pi * 5 * t)) / h for h in range(1, 8))
        x = x * np.exp(-((t - rng.uniform(0.3, 0.7)) ** 2) / 0.02) + rng.normal(0, 10 ** rng.uniform(-4, -1.5), 16000)
        out.append(np.clip(x / np.abs(x).max() * rng.uniform(0.01, 0.9), -1, 0.99997))
    out.append(rng.normal(0, 1e-4, 16000))
    out.append(np.full(16000, 0.99))                            # full scale: no overflow
    return out


@pytest.mark.parametrize("preset,within1", [("logmel40", 0.995), ("logmel40-4k", 0.995), ("mfcc10", 0.995)])
def test_fixed_point_front_end_tracks_the_float_one(preset, within1):
    fe = PRESETS[preset]
    pcm = [np.round(a * 32768).astype(np.int16) for a in _clips()]
    F = np.stack([features(q / 32768.0, fe) for q in pcm])         # the same int16 audio the board gets
    scale = (F.max() - F.min()) / 255
    zp = int(round(-128 - F.min() / scale))
    t = tables(fe, scale, zp)
    d = []
    for a, f in zip(pcm, F):
        q = np.clip(np.sign(f / scale) * np.floor(np.abs(f / scale) + 0.5) + zp, -128, 127)
        qi = features_q(a, fe, t)
        d.append(np.abs(qi.astype(int) - q.astype(int)).ravel())
    d = np.concatenate(d)
    assert (d <= 1).mean() >= within1 and d.max() <= 2, (d.max(), (d <= 1).mean())


def test_telephone_band_preset_hears_a_line_as_the_microphone():
    """logmel40-4k reads nothing an 8 kHz line removes: a clip and its copy resampled 16 → 8 → 16 kHz (the line
    band_probe.py uses) give the same features (to the resampler's filter), where logmel40's upper bands change by
    orders of magnitude."""
    from hostside.data.corpus import resample
    narrow, wide = PRESETS["logmel40-4k"], PRESETS["logmel40"]
    assert narrow.shape == wide.shape and narrow.f_max == 4000.0
    for a in _clips(6, 2)[:-1]:                                 # not the constant clip: it has no upper band
        b = resample(resample(a, 16000, 8000), 8000, 16000)[: len(a)]
        assert np.abs(features(a, narrow) - features(b, narrow)).max() < 0.2
        assert np.abs(features(a, wide) - features(b, wide)).max() > 2.0


def _model_for(preset, seed=0):
    fe = PRESETS[preset]
    _, g, _ = random_graph(seed, input_shape=fe.shape, channels=6, blocks=1, stem_kernel=(10, 4),
                           stem_stride=(2, 2))
    return fe, g


@pytest.mark.parametrize("preset", ["logmel40", "logmel40-4k", "mfcc10"])
def test_c_front_end_is_bit_exact_on_host(tmp_path, preset):
    fe, g = _model_for(preset)
    board = load_board("host")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", frontend=fe.to_dict()))
    t = tables(fe, art.graph.input_scale, art.graph.input_zp)
    audio = [np.round(a * 32768).astype(np.int16) for a in _clips(6, 1)]
    want = run_batch(art.graph, np.stack([features_q(a, fe, t).reshape(art.graph.input_shape) for a in audio]))
    tr = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        res = Session(tr, art.model_sha256, 30).run(audio, audio=True)
    finally:
        tr.close()
    assert np.array_equal(np.array(res.outputs), want.astype(np.int64))
    assert res.ram["frontend"] > 0 and len(res.frontend_cycles) == len(audio)


@pytest.mark.emulator
def test_c_front_end_on_the_emulated_board(tmp_path):
    from hostside.device.qemu import QemuBoard, make_flash_image
    fe, g = _model_for("mfcc10", 3)
    board = load_board("rv32-virt")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", frontend=fe.to_dict()))
    img = make_flash_image(board, tmp_path / "model.bin", tmp_path / "flash.img")
    t = tables(fe, art.graph.input_scale, art.graph.input_zp)
    audio = [np.round(a * 32768).astype(np.int16) for a in _clips(3, 2)]
    want = run_batch(art.graph, np.stack([features_q(a, fe, t).reshape(art.graph.input_shape) for a in audio]))
    with QemuBoard(board, fw, img) as tr:
        res = Session(tr, art.model_sha256, 120).run(audio, audio=True)
    assert np.array_equal(np.array(res.outputs), want.astype(np.int64))
    assert all(i > 0 for i in res.frontend_instret)


@pytest.mark.emulator
def test_bench_with_raw_audio_through_the_board(tmp_path):
    """pqlr bench --audio: the board computes its own features; the reference runs the numpy spec."""
    from hostside import api
    fe, g = _model_for("mfcc10", 5)
    board = load_board("rv32-virt")
    write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    import json
    man = json.loads((tmp_path / "model.json").read_text())
    man["frontend"] = fe.to_dict()
    (tmp_path / "model.json").write_text(json.dumps(man))
    audio = np.stack([np.round(a * 32768).astype(np.int16) for a in _clips(4, 3)])
    np.savez(tmp_path / "testset.npz", inputs=np.zeros((4, *g.input_shape), np.int8), labels=np.zeros(4, int),
             fp32_pred=np.zeros(4, int), audio=audio)
    r = api.bench(board, tmp_path / "model.bin", tmp_path / "bench", runs=4, audio=True)["report"]
    assert r["bit_exact"] and r["input"].startswith("int16 audio")
    assert r["frontend_instructions_per_inference"]["value"] > 0
    assert r["peak_ram_bytes"]["parts"]["frontend_buffers"] > 0
