"""The integer reference against independent computations."""
import numpy as np
import pytest
import torch

from hostside.graph import quantize_multiplier, requantize
from hostside.reference import run
from hostside.reference.interpreter import KERNELS

from conftest import random_graph, random_inputs


def test_requantize_matches_python_integers():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        acc = int(rng.integers(-2**31, 2**31))
        M = int(rng.integers(2**30, 2**31))
        s = int(rng.integers(1, 63))
        zp = int(rng.integers(-128, 128))
        want = max(-128, min(127, ((acc * M + (1 << (s - 1))) >> s) + zp))
        assert int(requantize(np.array([acc]), M, s, zp, -128, 127)[0]) == want


@pytest.mark.parametrize("real", [1e-9, 3.7e-5, 0.0123, 0.5, 0.999999, 1.0, 7.25, 1234.5])
def test_quantize_multiplier(real):
    M, s = quantize_multiplier(real)
    assert 2**30 <= M < 2**31 and 1 <= s <= 62
    assert abs(M / 2**s - real) <= real * 2**-30


def _conv_via_torch(x, L, groups):
    """Independent check: the integer conv computed by torch in float64 (exact for these magnitudes)."""
    xi = torch.from_numpy(x.astype(np.float64) - L.in_zp).permute(2, 0, 1)[None]
    t, l, b, r = L.pad
    xi = torch.nn.functional.pad(xi, (l, r, t, b))
    w = L.weights.astype(np.float64)
    w = w.transpose(0, 3, 1, 2) if L.op == "conv2d" else w[:, None]
    acc = torch.nn.functional.conv2d(xi, torch.from_numpy(w), stride=L.stride, groups=groups)[0].permute(1, 2, 0)
    acc = acc.numpy().astype(np.int64) + L.bias
    return requantize(acc, L.multiplier, L.shift, L.out_zp, L.act_min, L.act_max)


@pytest.mark.parametrize("seed", range(6))
def test_conv_layers_match_torch(seed):
    _, g, _ = random_graph(seed, input_shape=(9 + seed, 7 + seed % 3), channels=3 + seed, stem_kernel=(3, 2 + seed % 2),
                           stem_stride=(1 + seed % 2, 2 - seed % 2))
    x = random_inputs(g, 1, seed)[0]
    _, tensors = run(g, x, dump=True)
    for i, L in enumerate(g.layers):
        if L.op in ("conv2d", "dwconv2d"):
            want = _conv_via_torch(tensors[i], L, groups=1 if L.op == "conv2d" else L.in_shape[2])
            assert np.array_equal(tensors[i + 1], want), L.name


@pytest.mark.parametrize("seed", range(4))
def test_integer_model_tracks_float_model(seed):
    """PTQ sanity: the int8 graph's dequantised logits follow the folded float model."""
    model, g, calib = random_graph(seed, channels=8)
    with torch.no_grad():
        ref = model(torch.from_numpy(calib)).numpy()
    out = np.stack([run(g, g.quantize_input(c)) for c in calib]).astype(np.float64)
    L = g.output_layer
    deq = (out - L.out_zp) * L.out_scale
    span = ref.max() - ref.min()
    assert np.abs(deq - ref).max() < 0.15 * span + 4 * L.out_scale


def test_reference_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys; import hostside.reference, hostside.artifact, hostside.graph, hostside.plan; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_all_ops_have_kernels():
    from hostside.graph import OPS
    assert set(OPS) == set(KERNELS)


def test_relu6_is_a_clamp_at_six():
    """ReLU6 lowers to act_max = zp + round(6/s): the QAT model and the reference agree, and outputs saturate."""
    import torch
    from hostside.models.ops import float_ops
    from hostside.compress.quant import build_quantnet
    from hostside.export import quantize_ptq
    from hostside.models import build_model
    from hostside.reference import run
    torch.manual_seed(0)
    m = build_model("dscnn", (12, 8), 3, channels=6, blocks=1, stem_kernel=(3, 3), stem_stride=(1, 1),
                    activation="relu6").eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.bias.fill_(4.0)                # push pre-activations past 6
    x = np.random.default_rng(0).normal(0, 3, size=(8, 12, 8)).astype(np.float32)
    qn = build_quantnet(float_ops(m), (12, 8), 8, 8, 8, calib=x)
    with torch.no_grad():
        qn.weighted()[0].aq.step.fill_(10 / 255)           # a range wider than 6: the cap must bite
    g = qn.to_int_graph()
    relu = [L for L in g.layers if L.op != "avgpool" and L.act_min == L.out_zp]
    assert len(relu) == 3 and all(L.act_max == min(127, L.out_zp + round(6 / L.out_scale)) for L in relu)
    assert g.layers[0].act_max < 127
    with torch.no_grad():
        y, _, _ = qn.forward_int(torch.from_numpy(x))
    _, ts = run(g, g.quantize_input(x[0]), dump=True)
    assert np.array_equal(y.numpy().astype(np.int64), np.stack([run(g, g.quantize_input(f)) for f in x]))
    first = g.layers[0]
    assert ts[1].max() == first.act_max                     # saturated at 6
    ptq = quantize_ptq(m, x, ("a", "b", "c"))
    assert ptq.layers[0].act_max == min(127, ptq.layers[0].out_zp + round(6 / ptq.layers[0].out_scale))


@pytest.mark.parametrize("k", [1, 64, 513, 514, 518, 519, 2000])
def test_integer_matmul_is_exact_at_the_float_limits(k):
    """_imatmul's float32 path (partial sums below 2^24) and float64 path give Python's integers, at and around K
    where the bound moves between them (with the float32 limit raised to 2^26, K = 2000 is rounded and fails), with the
    extreme operands an int8 tensor less a zero point can hold, int8 weights of −128 included."""
    from hostside.reference.interpreter import _imatmul
    rng = np.random.default_rng(k)
    a = rng.choice(np.array([-255, 255, -254, 1, 0], np.int32), size=(5, k))
    b = rng.choice(np.array([-128, 127, -127, 3], np.int8), size=(k, 4))
    a[0], b[:, 0] = 255, -128                             # one row·column at the largest |sum| the operands allow
    want = [[sum(int(a[i, t]) * int(b[t, j]) for t in range(k)) for j in range(4)] for i in range(5)]
    assert _imatmul(a, b).tolist() == want


def test_run_batch_gives_the_same_integers_at_any_chunk():
    """run_batch's default chunk (batch_chunk) and any other give run's integers input by input (the speed of each:
    benchmarks/reference; a stream's state carried over chunks: tests/test_ctc_op.py)."""
    from hostside.reference import run_batch
    from hostside.reference.interpreter import batch_chunk
    _, g, _ = random_graph(3, channels=6, blocks=2)
    xs = random_inputs(g, 37, 3)
    want = np.stack([run(g, x) for x in xs])
    assert 1 <= batch_chunk(g) <= 256
    for chunk in (None, 1, 5, 16, 64):
        assert np.array_equal(run_batch(g, xs, chunk=chunk), want), chunk
