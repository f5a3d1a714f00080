"""The tuned RV32 kernels against the reference, bit for bit, over random shapes, bit widths and plans
(odd channel counts and pixel counts that are not multiples of the blocking), built for the host."""
import contextlib
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.codegen import render_firmware
from hostside.device.build import build_firmware
from hostside.device.session import Session
from hostside.device.transport import ProcessTransport
from hostside.errors import BudgetError
from hostside.plan import make_plan
from hostside.reference import run_batch

from conftest import run_firmware
from test_properties import build, stacks


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(p=stacks())
def test_rv32_kernels_equal_reference(p, tmp_path_factory):
    qn, x = build(p)
    g = qn.to_int_graph()
    board = dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=4096)
    try:
        plan = make_plan(g, board, mode=p["mode"], tile_budget=p["tile_budget"] if p["mode"] == "tiled" else None)
    except BudgetError:
        return
    d = tmp_path_factory.mktemp("k")
    art = write_model_bin(d / "model.bin", g, plan)
    xs = np.stack([g.quantize_input(f) for f in x[:4]])
    res = run_firmware(art, board, g, xs, d, timeout=30)
    assert res.first_mismatch is None
    assert np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64))


def _extreme_graph(seed: int, wbits: int = 8):
    """conv2d (K = 18) → pointwise (40 → 9, not a multiple of 4) → pointwise in place (9 → 8, odd K) → pointwise
    (8 → 8) → fc, with int8 (or, wbits = 4, int4 pointwise)
    weights drawn mostly from the extremes (−127 and 127: model.bin holds [−127, 127]) and shifts that saturate: the 16-bit lanes of the
    packed (SWAR) kernels see every product at its bounds, and some channels take the slow requantisation
    (shift ≤ 32) and take the portable requantisation: on RV32, pw1 runs wholly in assembly (K a multiple of 4,
    every shift in the fast range), pw3 runs the assembly loop with the C requantisation (one slow channel), conv
    the assembly loop with a C remainder (K = 18)."""
    from hostside.graph import IntGraph, Layer
    rng = np.random.default_rng(seed)

    def weights(shape, bits=8):
        if bits == 4:
            return rng.choice(np.array([-7, 7, -6, 0, 1], dtype=np.int8), size=shape, p=[.4, .4, .1, .05, .05])
        w = rng.choice(np.array([-127, -126, 127, 0, 1, -1], dtype=np.int16), size=shape, p=[.35, .1, .3, .1, .1, .05])
        return w.astype(np.int8)

    def quant(n, lo_shift, hi_shift):
        m = rng.integers(2 ** 30, 2 ** 31, size=n, dtype=np.int64).astype(np.int32)
        s = rng.integers(lo_shift, hi_shift, size=n).astype(np.int32)
        return m, s

    H, W, C = 7, 6, 3
    m0, s0 = quant(40, 40, 46)
    s0[9] = 24                                            # a slow (shift ≤ 32) channel in the last block
    m1, s1 = quant(9, 41, 47)
    m4, s4 = quant(8, 40, 46)
    s4[5] = 28
    m2, s2 = quant(8, 40, 46)
    m3, s3 = quant(4, 42, 48)
    layers = [
        Layer("conv", "conv2d", (H, W, C), (H, W, 40), -5, 7, -128, 127, 1.0, 1.0, m0, s0, kernel=(3, 2),
              stride=(1, 1), pad=(1, 0, 1, 1), weights=weights((40, 3, 2, C)),
              bias=rng.integers(-3000, 3000, 40).astype(np.int32)),
        Layer("pw1", "pwconv2d", (H, W, 40), (H, W, 9), 7, -128, -128, 127, 1.0, 1.0, m1, s1,
              weights=weights((9, 40), wbits), bias=rng.integers(-3000, 3000, 9).astype(np.int32), wbits=wbits),
        Layer("pw2", "pwconv2d", (H, W, 9), (H, W, 8), -128, 3, 3, 127, 1.0, 1.0, m2, s2,
              weights=weights((8, 9), wbits), bias=rng.integers(-3000, 3000, 8).astype(np.int32), wbits=wbits),
        Layer("pw3", "pwconv2d", (H, W, 8), (H, W, 8), 3, -2, -128, 127, 1.0, 1.0, m4, s4,
              weights=weights((8, 8), wbits), bias=rng.integers(-3000, 3000, 8).astype(np.int32), wbits=wbits),
        Layer("fc", "fc", (H, W, 8), (1, 1, 4), -2, 0, -128, 127, 1.0, 1.0, m3, s3,
              weights=weights((4, H * W * 8)), bias=rng.integers(-3000, 3000, 4).astype(np.int32)),
    ]
    g = IntGraph(input_shape=(H, W, C), input_scale=1.0, input_zp=-5, layers=layers)
    xs = rng.choice(np.array([-128, 127, -127, 0, 5], dtype=np.int16), size=(3, H, W, C), p=[.35, .35, .1, .1, .1])
    xs[0] = -128                                          # every product at its bound
    return g, xs.astype(np.int8)


def _lane_bound_graph(wbits: int):
    """A pointwise layer straight on the input (K = 40 = a lane's worst case for int4: 40·128·7 > 2^15 if the
    words were not split every 32 inputs) whose first channel's weights are all −max and the second's all +max,
    inputs all −128 or all 127: every product in a lane at its bound with one sign."""
    from hostside.graph import IntGraph, Layer
    H, W, K = 3, 4, 40
    q = 7 if wbits == 4 else 127
    wts = np.random.default_rng(1).integers(-q, q + 1, size=(5, K)).astype(np.int8)
    wts[0], wts[1] = -q, q
    m, s = np.full(5, 2 ** 30 + 12345, np.int32), np.full(5, 45, np.int32)
    fm, fs = np.full(3, 2 ** 30 + 777, np.int32), np.full(3, 44, np.int32)
    layers = [Layer("pw", "pwconv2d", (H, W, K), (H, W, 5), 0, 0, -128, 127, 1.0, 1.0, m, s, weights=wts,
                    bias=np.zeros(5, np.int32), wbits=wbits),
              Layer("fc", "fc", (H, W, 5), (1, 1, 3), 0, 0, -128, 127, 1.0, 1.0, fm, fs,
                    weights=np.random.default_rng(2).integers(-127, 128, size=(3, H * W * 5)).astype(np.int8),
                    bias=np.zeros(3, np.int32))]
    g = IntGraph(input_shape=(H, W, K), input_scale=1.0, input_zp=0, layers=layers)
    return g, np.stack([np.full((H, W, K), -128, np.int8), np.full((H, W, K), 127, np.int8)])


def _every_layer_exact(board, fw, d, art, g, xs):
    """Run the firmware (host process or QEMU, stopped with the context) on model.bin in d and compare every
    layer of every input with the reference."""
    from hostside.device.qemu import QemuBoard, make_flash_image
    with contextlib.ExitStack() as stack:
        if board.name == "host":
            t = ProcessTransport([str(fw), str(d / "model.bin")])
            stack.callback(t.close)
        else:
            img = make_flash_image(board, d / "model.bin", d / "flash.img")
            t = stack.enter_context(QemuBoard(board, fw, img))
        s = Session(t, art.model_sha256, 60)
        s.hello()
        for x in xs:
            assert s.locate_mismatch(x, g) is None


@pytest.mark.parametrize("graph", ["layers", "lane_bound"])
@pytest.mark.parametrize("wbits", [8, 4])
@pytest.mark.parametrize("board_name", ["host", pytest.param("rv32-virt", marks=pytest.mark.emulator)])
def test_swar_kernels_exact_at_the_extremes(board_name, wbits, graph, tmp_path):
    """The packed-lane (SWAR) kernels, portable C on the host build and RV32 assembly on QEMU, equal the
    reference in every layer's every value at the extremes (−128 activations × ±127 int8 or ±7 int4 weights; int4
    layers with K = 40 split their lanes once on the way)."""
    g, xs = _extreme_graph(3, wbits) if graph == "layers" else _lane_bound_graph(wbits)
    board = load_board(board_name)
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board, packed="always"))
    from hostside.plan.planner import swar_scratch
    assert all(art.scratch_bytes[i] >= swar_scratch(L) for i, L in enumerate(g.layers)), "packed kernels everywhere"
    if graph == "layers":
        assert g.layers[2].in_shape[2] % 2 == 1 and g.layers[1].out_shape[2] % 4 == 1
        assert art.inplace[2], "the odd-K pointwise layer should run in place"
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels="rv32"))
    _every_layer_exact(board, fw, tmp_path, art, g, xs)


def _conv_first_graph(seed: int, stride=(2, 2), pad=(2, 1, 1, 1), kernel=(4, 3)):
    """A first conv2d (strided, padded, 3 input channels, 24 outputs) and an fc: the planner writes the conv's
    output over its consumed input (conv_overlap)."""
    from hostside.graph import IntGraph, Layer
    rng = np.random.default_rng(seed)
    H, W, C, CO = 13, 7, 3, 24
    oh = (H + pad[0] + pad[2] - kernel[0]) // stride[0] + 1
    ow = (W + pad[1] + pad[3] - kernel[1]) // stride[1] + 1
    m = rng.integers(2 ** 30, 2 ** 31, size=CO, dtype=np.int64).astype(np.int32)
    s = rng.integers(40, 44, size=CO).astype(np.int32)
    fm, fs = np.full(5, 2 ** 30 + 99, np.int32), np.full(5, 44, np.int32)
    layers = [Layer("conv", "conv2d", (H, W, C), (oh, ow, CO), 3, -7, -128, 127, 1.0, 1.0, m, s, kernel=kernel,
                    stride=stride, pad=pad, weights=rng.integers(-127, 128, (CO, *kernel, C)).astype(np.int8),
                    bias=rng.integers(-3000, 3000, CO).astype(np.int32)),
              Layer("fc", "fc", (oh, ow, CO), (1, 1, 5), -7, 0, -128, 127, 1.0, 1.0, fm, fs,
                    weights=rng.integers(-127, 128, (5, oh * ow * CO)).astype(np.int8),
                    bias=rng.integers(-3000, 3000, 5).astype(np.int32))]
    g = IntGraph(input_shape=(H, W, C), input_scale=1.0, input_zp=3, layers=layers)
    return g, rng.integers(-128, 128, size=(2, H, W, C)).astype(np.int8)


@pytest.mark.parametrize("kernels,board_name", [("ref", "host"), ("rv32", "host"),
                                                pytest.param("rv32", "rv32-virt", marks=pytest.mark.emulator)])
def test_conv_writes_over_its_consumed_input_exactly(kernels, board_name, tmp_path):
    """A first conv2d whose output overlaps its input by as much as conv_lead allows (every conv kernel, plain,
    packed and reference, computes pixels in order and reads a pixel before writing it): every layer equals the
    reference; a plan whose input sits 4 bytes closer is refused by model.bin's checker; a conv cut into several
    tiles (each re-reads the whole input) never overlaps."""
    from hostside.errors import ArtifactError
    from hostside.plan.planner import conv_lead
    board = load_board(board_name)
    for case, (stride, pad, kernel) in enumerate([((2, 2), (2, 1, 1, 1), (4, 3)), ((1, 1), (1, 1, 1, 1), (3, 3))]):
        g, xs = _conv_first_graph(case, stride, pad, kernel)
        plan = make_plan(g, board)
        lead = conv_lead(g.layers[0])
        out_bytes = int(np.prod(g.layers[0].out_shape))
        assert plan.tensor_offsets[0] - plan.tensor_offsets[1] == lead < out_bytes, "the conv should overlap"
        d = tmp_path / str(case)
        art = write_model_bin(d / "model.bin", g, plan)
        closer = dataclasses.replace(plan, tensor_offsets=[plan.tensor_offsets[0] - 4] + plan.tensor_offsets[1:])
        with pytest.raises(ArtifactError, match="overlap"):
            write_model_bin(d / "bad.bin", g, closer)
        fw = build_firmware(board, render_firmware(art, board, d / "fw", kernels=kernels))
        _every_layer_exact(board, fw, d, art, g, xs)
    conv_only = dataclasses.replace(g, layers=g.layers[:1])
    tiled = make_plan(conv_only, dataclasses.replace(board, tile_buffer_budget_bytes=400), tile_budget=400)
    assert len([t for t in tiled.tiles if t.layer == 0]) > 1
    in_off, out_off = tiled.tensor_offsets[0], tiled.tensor_offsets[1]
    assert in_off + int(np.prod(g.input_shape)) <= out_off or out_off + out_bytes <= in_off


def _double_rounding_graph(seed: int, wbits: int = 8):
    """TFLite's double rounding (an imported model's rule) at the extremes: conv (3×3 'same', K = 36, 12 channels)
    → depthwise 3×3 in place → pointwise (12 → 8) → pointwise (8 → 8) → fc; ±127 weights, −128/127 inputs. The
    conv and the first pointwise have every channel in the prepared range (shifts 32..53, the ends included): on
    RV32 they run wholly in the packed block's assembly. The depthwise and the second pointwise mix channels
    outside it (shifts 24, 30, 31: a left shift; 54; a bias so large that |b| + K·128·127 < 2^30 fails), which take
    the general rule beside the others."""
    from hostside.graph import IntGraph, Layer
    rng = np.random.default_rng(seed)

    def w(shape):
        return rng.choice(np.array([-127, 127, -126, 0, 3], dtype=np.int16), size=shape,
                          p=[.35, .35, .1, .1, .1]).astype(np.int8)

    def quant(n, special):
        m = rng.integers(2 ** 30, 2 ** 31, size=n, dtype=np.int64).astype(np.int32)
        s = rng.integers(41, 50, size=n).astype(np.int32)   # right shifts 10..18: most outputs inside int8, so
        for j, v in special.items():                        # the rounding shows after the clamp
            s[j] = v
        return m, s

    H, W, C = 7, 6, 4
    m0, s0 = quant(12, {4: 32, 5: 53})
    m1, s1 = quant(12, {0: 31, 1: 24, 6: 54, 7: 32, 8: 53})
    m2, s2 = quant(8, {2: 32, 5: 53})
    m4, s4 = quant(8, {2: 30, 6: 54})
    m3, s3 = quant(4, {})
    b0 = rng.integers(-3000, 3000, 12).astype(np.int32)
    b1 = rng.integers(-3000, 3000, 12).astype(np.int32)
    b1[9] = 2 ** 30 - 1000                    # past the prepared rule's accumulator bound
    b2 = rng.integers(-3000, 3000, 8).astype(np.int32)
    b4 = rng.integers(-3000, 3000, 8).astype(np.int32)
    b4[3] = -(2 ** 30 - 5000)
    # a right shift of 1 with small weights and multipliers 2^27 / 2^28: outputs inside int8 and half of them
    # exact ties, where TFLite rounds away from zero (the [hi < 0] term)
    w0, w1, w2 = w((12, 3, 3, C)), w((12, 3, 3)), w((8, 12))
    w0[4] = rng.integers(-1, 2, size=w0[4].shape)
    w1[7] = rng.integers(-1, 2, size=w1[7].shape)
    w2[2] = rng.integers(-1, 2, size=w2[2].shape)
    m0[4], m1[7], m2[2] = 2 ** 27, 2 ** 28, 2 ** 28
    b0[4], b1[7], b2[2] = 3, -5, 1
    layers = [
        Layer("conv", "conv2d", (H, W, C), (H, W, 12), -5, 7, -128, 127, 1.0, 1.0, m0, s0, kernel=(3, 3),
              stride=(1, 1), pad=(1, 1, 1, 1), weights=w0, bias=b0),
        Layer("dw", "dwconv2d", (H, W, 12), (H, W, 12), 7, -3, -128, 127, 1.0, 1.0, m1, s1, kernel=(3, 3),
              stride=(1, 1), pad=(1, 1, 1, 1), weights=w1, bias=b1),
        Layer("pw", "pwconv2d", (H, W, 12), (H, W, 8), -3, 2, -128, 127, 1.0, 1.0, m2, s2, wbits=wbits,
              weights=w2 if wbits == 8 else np.clip(w2, -7, 7).astype(np.int8), bias=b2),
        Layer("pw2", "pwconv2d", (H, W, 8), (H, W, 8), 2, -1, -128, 127, 1.0, 1.0, m4, s4, wbits=wbits,
              weights=w((8, 8)) if wbits == 8 else np.clip(w((8, 8)), -7, 7).astype(np.int8), bias=b4),
        Layer("fc", "fc", (H, W, 8), (1, 1, 4), -1, 0, -128, 127, 1.0, 1.0, m3, s3, weights=w((4, H * W * 8)),
              bias=rng.integers(-3000, 3000, 4).astype(np.int32)),
    ]
    g = IntGraph(input_shape=(H, W, C), input_scale=1.0, input_zp=-5, layers=layers, rounding="double")
    xs = rng.choice(np.array([-128, 127, -127, 0, 5], dtype=np.int16), size=(3, H, W, C), p=[.35, .35, .1, .1, .1])
    xs[0] = 127
    return g, xs.astype(np.int8)


@pytest.mark.parametrize("wbits", [8, 4])
@pytest.mark.parametrize("board_name", ["host", pytest.param("rv32-virt", marks=pytest.mark.emulator)])
def test_double_rounding_fast_paths_exact_at_the_extremes(board_name, wbits, tmp_path):
    """TFLite's double rounding prepared per channel (rq2_prep: C on the host, the packed block's assembly
    epilogue on QEMU, int8 and int4 pointwise weights; the depthwise rows on both) equals the reference in every
    layer, channels in and out of its range side by side."""
    g, xs = _double_rounding_graph(5, wbits)
    board = load_board(board_name)
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board, packed="always"))
    assert art.inplace[1], "the depthwise layer should run in place"
    fw = build_firmware(board, render_firmware(art, board, tmp_path / "fw", kernels="rv32"))
    _every_layer_exact(board, fw, tmp_path, art, g, xs)
