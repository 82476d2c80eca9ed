"""``layer.apply(params, x)`` is the forward pass of the layer with ``params``, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, make_layer, to_numpy

T, N, IN, H = 5, 3, 2, 4


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def test_apply_with_the_layers_params_is_its_forward(xp, kind, dtype):
    layer = make_layer(kind, IN, H, num_layers=2, bidirectional=True, xp=xp, dtype=dtype, seed=0)
    x = asarray(xp, np.random.default_rng(1).standard_normal((T, N, IN)), dtype)
    y, state = layer.apply(layer.params, x, lengths=[5, 2, 4])
    y_ref, state_ref, _ = layer.forward(x, lengths=[5, 2, 4])
    assert_close(y, y_ref, xp=xp, dtype=dtype)
    for got, expected in zip(_parts(state), _parts(state_ref), strict=True):
        assert_close(got, expected, xp=xp, dtype=dtype)


def test_apply_runs_the_params_given_and_changes_nothing(xp, kind):
    layer = make_layer(kind, IN, H, xp=xp, dtype="float64", seed=2)
    other = make_layer(kind, IN, H, xp=xp, dtype="float64", seed=3)
    before = {k: np.array(to_numpy(v), copy=True) for k, v in layer.params.items()}
    x = asarray(xp, np.random.default_rng(4).standard_normal((T, N, IN)), "float64")
    y, _ = layer.apply(other.params, x)
    assert_close(y, other.forward(x)[0], xp=xp, dtype="float64")
    for key, value in layer.params.items():
        np.testing.assert_array_equal(to_numpy(value), before[key])


def test_apply_takes_checkpoint_and_gives_the_same_result(xp):
    layer = make_layer("gru", IN, H, xp=xp, dtype="float64", seed=5)
    x = asarray(xp, np.random.default_rng(6).standard_normal((T, N, IN)), "float64")
    assert_close(layer.apply(layer.params, x, checkpoint="sqrt")[0], layer.apply(layer.params, x)[0])
    with pytest.raises(ValueError, match="checkpoint must be None, a positive int or 'sqrt'"):
        layer.apply(layer.params, x, checkpoint=0)


def test_apply_refuses_params_without_the_layers_keys():
    layer = xrnn.LSTM(IN, H, xp="numpy", seed=0)
    x = np.zeros((T, N, IN), np.float32)
    missing = {k: v for k, v in layer.params.items() if k != "bias_hh_l0"}
    with pytest.raises(ValueError, match=r"params is missing key\(s\) \['bias_hh_l0'\]"):
        layer.apply(missing, x)
    with pytest.raises(ValueError, match=r"params has key\(s\) \['extra'\]"):
        layer.apply({**layer.params, "extra": x}, x)
    with pytest.raises(TypeError, match="params must be a dict"):
        layer.apply([1, 2], x)


def test_apply_refuses_params_of_the_wrong_shape():
    layer = xrnn.GRU(IN, H, xp="numpy", seed=0)
    params = {**layer.params, "weight_hh_l0": np.zeros((3 * H, H + 1), np.float32)}
    with pytest.raises(ValueError, match=r"params\['weight_hh_l0'\] must have shape \(12, 4\)"):
        layer.apply(params, np.zeros((T, N, IN), np.float32))


def test_apply_runs_the_layer_options_bias_and_proj_size(xp):
    layer = xrnn.LSTM(IN, H, bias=False, proj_size=2, bidirectional=True, xp=xp, dtype="float64", seed=7)
    x = asarray(xp, np.random.default_rng(8).standard_normal((T, N, IN)), "float64")
    y, (h, c) = layer.apply(layer.params, x, lengths=[5, 2, 4])
    y_ref, (h_ref, c_ref), _ = layer.forward(x, lengths=[5, 2, 4])
    assert tuple(y.shape) == (T, N, 4)
    for got, expected in [(y, y_ref), (h, h_ref), (c, c_ref)]:
        assert_close(got, expected, xp=xp, dtype="float64")


def test_apply_refuses_dropout_in_training_mode_and_runs_in_eval_mode():
    layer = xrnn.GRU(IN, H, num_layers=2, dropout=0.5, xp="numpy", seed=0)
    x = np.ones((T, N, IN), np.float32)
    with pytest.raises(ValueError, match=r"draws no dropout masks.*dropout=0.5 in training mode"):
        layer.apply(layer.params, x)
    layer.eval()
    assert_close(layer.apply(layer.params, x)[0], layer.forward(x)[0], dtype="float32")
