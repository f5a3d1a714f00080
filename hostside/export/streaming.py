"""A window model → the same model run one frame at a time (stream layers holding the past frames).

A graph whose ops look along time only through unpadded, stride-1 windows (a stem of k frames, depthwise convs of
3 frames, an average pool over all remaining frames, per-frame pointwise convs and a classifier on the pooled
vector: `dscnn-stream`) computes, for the window of frames [t − T + 1, t], exactly what the streaming graph
computes at step t once it has seen T frames: every layer that needs k > 1 rows of its input gets a stream layer in
front that keeps the k − 1 previous rows, and sees one new row per step. The arithmetic is the same, so the outputs
are identical (tests/test_streaming_export.py checks it bit for bit). Before T frames have passed the stream layers
hold their initial rows: the input zero point of each layer (real 0), as if silence preceded the stream.
"""
from __future__ import annotations

import numpy as np

from ..errors import PqlrError
from ..graph import IntGraph, Layer

TEMPORAL_OPS = ("conv2d", "dwconv2d", "avgpool")


def _stream(name: str, rows_needed: int, row_shape: tuple[int, int], zp: int, scale: float) -> Layer:
    w, c = row_shape
    state = rows_needed - 1
    return Layer(name=f"{name}_stream", op="stream", in_shape=(1, w, c), out_shape=(rows_needed, w, c), in_zp=zp,
                 out_zp=zp, act_min=-128, act_max=127, in_scale=scale, out_scale=scale,
                 multiplier=np.zeros(1, np.int32), shift=np.ones(1, np.int32),
                 weights=np.full((state * w, c), zp, np.int8))


def to_streaming(graph: IntGraph) -> IntGraph:
    """The step-by-step form of `graph` (see the module docstring); PqlrError if it cannot stream."""
    if graph.streaming:
        raise PqlrError("the model already streams")
    layers: list[Layer] = []
    rows = graph.input_shape[0]                      # rows of the window graph's current tensor
    for L in graph.layers:
        h, w, c = L.in_shape
        why = None
        if L.op in ("conv2d", "dwconv2d"):
            kh = L.kernel[0]
            if L.stride[0] != 1 or L.pad[0] or L.pad[2]:
                why = f"its time stride is {L.stride[0]} and its time padding {L.pad[0]}+{L.pad[2]} (needs 1 and 0)"
            elif L.out_shape[0] != h - kh + 1:
                why = "its output rows do not follow from an unpadded window"
            else:
                if kh > 1:
                    layers.append(_stream(L.name, kh, (w, c), L.in_zp, L.in_scale))
                new = _copy(L, in_shape=(kh, w, c), out_shape=(1,) + L.out_shape[1:])
        elif L.op == "avgpool":
            if h > 1:
                layers.append(_stream(L.name, h, (w, c), L.in_zp, L.in_scale))
            new = _copy(L, in_shape=L.in_shape, out_shape=L.out_shape)
        elif L.op in ("pwconv2d",) or (L.op == "fc" and h == 1):
            new = _copy(L, in_shape=(1,) + L.in_shape[1:], out_shape=(1,) + L.out_shape[1:] if L.op != "fc"
                        else L.out_shape)
        else:
            why = f"a {L.op} over {h} rows mixes time in a way pqlr does not stream"
        if why:
            raise PqlrError(f"layer {L.name} ({L.op}): cannot stream: {why}. Train a streamable model "
                            f"(`pqlr train --model dscnn-stream`) to export it with --streaming")
        layers.append(new)
        rows = new.out_shape[0]
    g = IntGraph(input_shape=(1,) + graph.input_shape[1:], input_scale=graph.input_scale, input_zp=graph.input_zp,
                 layers=layers, classes=graph.classes, frontend=dict(graph.frontend), rounding=graph.rounding)
    g.frontend["streaming"] = {"window_frames": graph.input_shape[0], "frames_per_step": 1}
    return g


def _copy(L: Layer, in_shape, out_shape) -> Layer:
    from dataclasses import replace
    return replace(L, in_shape=tuple(in_shape), out_shape=tuple(out_shape))
