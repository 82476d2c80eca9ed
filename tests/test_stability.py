"""Numerical stability at the extremes, and NaN/infinity reported when asked for."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, make_layer, to_numpy
from xrnn import classic


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_huge_pre_activations_give_finite_outputs_and_gradients(xp, dtype, kind, scale):
    layer = make_layer(kind, 3, 4, bidirectional=True, xp=xp, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    layer.params = {k: asarray(xp, to_numpy(v) * scale * 4, dtype) for k, v in layer.params.items()}
    x = asarray(xp, rng.choice([-1.0, 1.0], size=(6, 3, 3)), dtype)
    y, _, cache = layer.forward(x, lengths=[6, 2, 4])
    dx, _, grads = layer.backward(cache, xp.ones_like(y))
    for a in (y, dx, *grads.values()):
        assert np.all(np.isfinite(to_numpy(a)))


def test_classic_lstm_is_finite_for_pre_activations_of_1e4(xp, dtype):
    rng = np.random.default_rng(0)
    p = {f"W{g}": rng.choice([-1e4, 1e4], size=(4, 7)) for g in "fico"}
    p |= {f"b{g}": np.zeros((4, 1)) for g in "fico"} | {
        "Wy": rng.standard_normal((2, 4)) * 1e4,
        "by": np.zeros((2, 1)),
    }
    p = {k: asarray(xp, v, dtype) for k, v in p.items()}
    x, a0 = asarray(xp, rng.standard_normal((3, 2, 5)), dtype), asarray(xp, np.zeros((4, 2)), dtype)
    a, y, c, caches = classic.lstm_forward(x, a0, p)
    g = classic.lstm_backward(xp.ones_like(a), caches)
    for arr in (a, y, c, *g.values()):
        assert np.all(np.isfinite(to_numpy(arr)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_reports_nan_and_infinity_in_x(xp, bad):
    layer = xrnn.LSTM(3, 4, xp=xp, dtype="float64", seed=0)
    x = np.zeros((5, 2, 3))
    x[2, 1, 0] = bad
    with pytest.raises(
        ValueError, match=r"x must be finite \(check_finite=True\), got 1 NaN or infinite value"
    ):
        layer.forward(asarray(xp, x, "float64"), check_finite=True)


def test_check_finite_reports_a_non_finite_parameter_state_and_gradient():
    layer = xrnn.GRU(3, 4, xp="numpy", dtype="float64", seed=0)
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"state must be finite"):
        layer.forward(x, np.full((1, 2, 4), np.nan), check_finite=True)
    y, _, cache = layer.forward(x, check_finite=True)
    with pytest.raises(ValueError, match=r"dy must be finite"):
        layer.backward(cache, np.full(y.shape, np.inf), check_finite=True)
    layer.params = {**layer.params, "bias_hh_l0": np.full(12, np.nan)}
    with pytest.raises(ValueError, match=r"params\['bias_hh_l0'\] must be finite"):
        layer.forward(x, check_finite=True)


def test_classic_check_finite_names_the_argument():
    rng = np.random.default_rng(0)
    p = {
        "Wax": rng.standard_normal((4, 3)),
        "Waa": np.full((4, 4), np.nan),
        "Wya": np.ones((2, 4)),
        "ba": np.zeros((4, 1)),
        "by": np.zeros((2, 1)),
    }
    with pytest.raises(ValueError, match=r"parameters\['Waa'\] must be finite"):
        classic.rnn_forward(np.zeros((3, 2, 5)), np.zeros((4, 2)), p, check_finite=True)


def test_without_check_finite_nan_propagates_rather_than_vanishing():
    layer = xrnn.RNN(3, 4, xp="numpy", dtype="float64", seed=0)
    x = np.zeros((5, 2, 3))
    x[1, 0, 0] = np.nan
    y, _, _ = layer.forward(x)
    assert np.all(np.isnan(y[1:, 0])) and np.all(np.isfinite(y[:, 1]))
