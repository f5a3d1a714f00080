"""The integer-only transformer primitives (I-BERT style) against their float definitions. These are the
specification for the transformer export (issue #5); nothing in the pipeline uses them yet."""
import math

import numpy as np
import pytest

from hostside.reference.ibert import i_exp, i_gelu, i_layernorm, i_softmax, i_sqrt

ERF = np.vectorize(math.erf)


def test_i_sqrt_is_exact():
    n = np.concatenate([np.arange(0, 5000), np.random.default_rng(0).integers(0, 2**40, 2000)])
    r = i_sqrt(n)
    assert np.all(r * r <= n) and np.all((r + 1) * (r + 1) > n)


@pytest.mark.parametrize("s", [0.001, 0.005, 0.01])
def test_i_exp_tracks_exp(s):
    q = np.arange(-int(8 / s), 1)
    e, so = i_exp(q, s)
    want = np.exp(q * s)
    assert np.abs(e * so - want).max() < 0.005


def test_i_exp_refuses_coarse_scales():
    with pytest.raises(ValueError, match="too coarse"):
        i_exp(np.array([-3]), 0.1)


@pytest.mark.parametrize("s", [0.002, 0.01])
def test_i_softmax_tracks_softmax(s):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, size=(64, 49))
    q = np.round(x / s).astype(np.int64)
    p, so = i_softmax(q, s)
    ref = np.exp(q * s - (q * s).max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.abs(p * so - ref).max() < 0.01
    assert np.mean(p.argmax(1) == ref.argmax(1)) > 0.95


@pytest.mark.parametrize("s", [0.01, 0.05])
def test_i_gelu_tracks_gelu(s):
    q = np.arange(int(-5 / s), int(5 / s))
    g, so = i_gelu(q, s)
    x = q * s
    want = x * 0.5 * (1 + ERF(x / math.sqrt(2)))
    assert np.abs(g * so - want).max() < 0.03


def test_i_layernorm_tracks_layernorm():
    rng = np.random.default_rng(2)
    q = rng.integers(-2000, 2000, size=(32, 128))
    y, so = i_layernorm(q)
    x = q.astype(np.float64)
    want = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    assert np.abs(y * so - want).max() < 0.1
