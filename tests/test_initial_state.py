"""WithInitialState: a layer that starts from a fixed state unless given one (ONNX's constant initial_h/c)."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, to_numpy
from xrnn.nn.initial_state import WithInitialState
from xrnn.nn.reversed import Reversed


def _state(kind, rows, n, h, seed=0):
    rng = np.random.default_rng(seed)
    h0 = rng.standard_normal((rows, n, h))
    return (h0, rng.standard_normal((rows, n, h))) if kind == "lstm" else h0


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_without_state_equals_the_layer_run_from_the_default_state(xp, kind, reverse):
    cls = {"rnn": xrnn.RNN, "lstm": xrnn.LSTM, "gru": xrnn.GRU}[kind]
    bidirectional = not reverse
    layer = cls(2, 3, num_layers=2, bidirectional=bidirectional, xp=xp, dtype="float64", seed=1)
    layer = Reversed(layer) if reverse else layer
    state = _state(kind, 4 if bidirectional else 2, 5, 3)
    wrapped = WithInitialState(layer, state)
    x = asarray(xp, np.random.default_rng(2).standard_normal((6, 5, 2)), "float64")
    y, final, _ = wrapped.forward(x, lengths=[6, 1, 3, 6, 2])
    y_ref, final_ref, _ = layer.forward(x, wrapped.state, [6, 1, 3, 6, 2])
    np.testing.assert_array_equal(to_numpy(y), to_numpy(y_ref))
    for a, b in zip(final if kind == "lstm" else [final], final_ref if kind == "lstm" else [final_ref]):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_the_default_state_is_stored_in_the_layers_namespace_and_dtype(xp):
    layer = xrnn.GRU(2, 3, xp=xp, dtype="float32")
    wrapped = WithInitialState(layer, np.ones((1, 4, 3)))
    weight = layer.params["weight_hh_l0"]
    assert type(wrapped.state) is type(weight)
    assert wrapped.state.dtype == weight.dtype
    np.testing.assert_array_equal(to_numpy(wrapped.state), np.ones((1, 4, 3)))


@pytest.mark.parametrize(
    ("layer", "state", "error", "message"),
    [
        (object(), np.zeros((1, 2, 3)), TypeError, "layer must be an xrnn RNN, LSTM, GRU or Reversed layer"),
        (xrnn.LSTM(2, 3, xp="numpy"), np.zeros((1, 2, 3)), TypeError, r"state must be a tuple \(h, c\)"),
        (xrnn.GRU(2, 3, xp="numpy"), np.zeros((2, 2, 3)), ValueError, r"state h must have shape \(1, N, 3\)"),
        (
            xrnn.LSTM(2, 3, xp="numpy"),
            (np.zeros((1, 2, 3)), np.zeros((1, 5, 3))),
            ValueError,
            "state h and c must have one batch size, got 2 and 5",
        ),
    ],
)
def test_a_bad_layer_or_state_is_refused_by_name(layer, state, error, message):
    with pytest.raises(error, match=message):
        WithInitialState(layer, state)
