"""pqlr's own DS-CNN as a streaming model: `dscnn-stream` (unpadded temporal convs) exported one frame per step.

The window model on frames [t − T + 1, t] and the streaming model at step t must agree bit for bit once T frames
have passed — on the numpy reference and in the C firmware."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hostside.compress.quant import build_quantnet
from hostside.errors import PqlrError
from hostside.export.streaming import to_streaming
from hostside.models import build_model
from hostside.models.ops import float_ops
from hostside.reference import run
from hostside.reference.interpreter import Streamer


def _graphs(seed=0, frames=49, feats=10, channels=16, blocks=2):
    torch.manual_seed(seed)
    m = build_model("dscnn-stream", (frames, feats), 3, channels=channels, blocks=blocks).eval()
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(32, frames, feats)).astype(np.float32)
    with torch.no_grad():
        assert m(torch.from_numpy(x)).shape == (32, 3)          # trains like any DS-CNN
    g = build_quantnet(float_ops(m), (frames, feats), 8, 8, 8, calib=x).to_int_graph()
    return g, to_streaming(g)


def test_streaming_equals_the_window_model_bit_for_bit():
    g, gs = _graphs()
    T = g.input_shape[0]
    assert gs.streaming and gs.input_shape == (1,) + g.input_shape[1:]
    assert [L.op for L in gs.layers][:2] == ["stream", "conv2d"]
    rng = np.random.default_rng(1)
    frames = rng.integers(-128, 128, size=(T + 80,) + g.input_shape[1:]).astype(np.int8)
    s = Streamer(gs)
    outs = [s.step(f.reshape(gs.input_shape)) for f in frames]
    for t in range(T - 1, len(frames)):
        assert np.array_equal(outs[t], run(g, frames[t - T + 1: t + 1])), f"step {t}"
    # before T frames it differs from nothing in particular, but it is defined (silence before the stream)
    assert len({tuple(o) for o in outs[T - 1:]}) > 5


def test_a_padded_or_strided_model_is_refused_with_what_to_do():
    torch.manual_seed(0)
    m = build_model("dscnn", (49, 10), 3, channels=8, blocks=1).eval()
    x = np.random.default_rng(0).normal(0, 2, size=(8, 49, 10)).astype(np.float32)
    g = build_quantnet(float_ops(m), (49, 10), 8, 8, 8, calib=x).to_int_graph()
    with pytest.raises(PqlrError, match="dscnn-stream"):
        to_streaming(g)


def test_streaming_dscnn_on_host_firmware(tmp_path):
    from hostside.artifact import write_model_bin
    from hostside.boards import load_board
    from hostside.codegen import render_firmware
    from hostside.device.build import build_firmware
    from hostside.device.session import Session
    from hostside.device.transport import ProcessTransport
    from hostside.plan import make_plan
    g, gs = _graphs(seed=2)
    board = load_board("host")
    art = write_model_bin(tmp_path / "model.bin", gs, make_plan(gs, board))
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels="rv32"))
    rng = np.random.default_rng(3)
    xs = rng.integers(-128, 128, size=(150,) + gs.input_shape).astype(np.int8)
    t = ProcessTransport([str(fw), str(tmp_path / "model.bin")])
    try:
        got = np.array(Session(t, art.model_sha256, timeout=30).run(xs).outputs)
    finally:
        t.close()
    s = Streamer(gs)
    assert np.array_equal(got, np.stack([s.step(x) for x in xs]))
    T = g.input_shape[0]
    frames = xs.reshape(len(xs), *g.input_shape[1:])
    assert np.array_equal(got[-1], run(g, frames[-T:]))


def test_train_and_export_streaming_through_the_api(trained_pipeline, tmp_path):
    """`pqlr train --model dscnn-stream` then `pqlr export --streaming` on the real data path (the session's tiny
    espeak-ng corpus): a streaming model.bin whose input is one feature frame."""
    from hostside import api
    corpus = trained_pipeline["corpus"]
    api.train(corpus, tmp_path / "s.pt", model="dscnn-stream", epochs=1, seed=0, channels=8, blocks=2,
              progress=False)
    art = api.export(tmp_path / "s.pt", corpus, "rv32-virt", tmp_path / "model.bin", calib_size=30, streaming=True)
    g = art.graph
    assert g.streaming and g.input_shape[0] == 1
    assert sum(L.op == "stream" for L in g.layers) == 4        # stem, two depthwise convs, the average pool
