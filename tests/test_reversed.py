"""xrnn.nn.reversed.Reversed (ONNX's direction="reverse"): a bidirectional layer's reverse half, alone."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from xrnn.nn.reversed import Reversed

LAYERS = {"lstm": xrnn.LSTM, "gru": xrnn.GRU, "rnn": xrnn.RNN}


def _pair(cell, batch_first):
    """A bidirectional layer and a Reversed layer holding its reverse direction's weights."""
    both = LAYERS[cell](
        3, 4, bidirectional=True, batch_first=batch_first, dtype="float64", seed=0, xp="numpy"
    )
    one = LAYERS[cell](3, 4, batch_first=batch_first, dtype="float64", seed=1, xp="numpy")
    one.params = {k: both.params[k + "_reverse"] for k in one.params}
    return both, Reversed(one)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]])
def test_reversed_computes_and_differentiates_the_reverse_half_of_a_bidirectional_layer(
    cell, batch_first, lengths
):
    both, reverse = _pair(cell, batch_first)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 3) if batch_first else (5, 3, 3))
    y2, state2, cache2 = both.forward(x, None, lengths)
    y1, state1, cache1 = reverse.forward(x, None, lengths)
    np.testing.assert_allclose(y1, y2[..., 4:], rtol=1e-12, atol=1e-12)
    for s1, s2 in zip(
        state1 if isinstance(state1, tuple) else (state1,), state2 if isinstance(state2, tuple) else (state2,)
    ):
        np.testing.assert_allclose(s1, s2[1:], rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y1.shape)
    dx1, _, grads1 = reverse.backward(cache1, dy)
    dx2, _, grads2 = both.backward(cache2, np.concatenate([np.zeros_like(dy), dy], axis=-1))
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-12)
    for key, grad in grads1.items():
        np.testing.assert_allclose(grad, grads2[key + "_reverse"], rtol=1e-12, atol=1e-12)


def test_a_bidirectional_layer_cannot_be_reversed():
    with pytest.raises(ValueError, match="layer must have bidirectional=False"):
        Reversed(xrnn.GRU(2, 3, bidirectional=True, xp="numpy"))
