"""``backward(..., need_dx=False)``: no gradient of the input, every other gradient unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy
from xrnn.nn.initial_state import WithInitialState
from xrnn.nn.reversed import Reversed

LAYERS = {
    "rnn_tanh": lambda **kw: xrnn.RNN(3, 5, **kw),
    "lstm": lambda **kw: xrnn.LSTM(3, 5, **kw),
    "gru": lambda **kw: xrnn.GRU(3, 5, **kw),
    "lstm_peepholes": lambda **kw: xrnn.LSTM(3, 5, peepholes=True, **kw),
    "layernorm_lstm": lambda **kw: xrnn.LayerNormLSTM(3, 5, **kw),
    "layernorm_gru": lambda **kw: xrnn.LayerNormGRU(3, 5, **kw),
    "indrnn": lambda **kw: xrnn.IndRNN(3, 5, **kw),
    "mingru": lambda **kw: xrnn.MinGRU(3, 5, **kw),
}


def _inputs(xp, dtype, batch_first=False):
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 10))
    if batch_first:
        x, dy = x.transpose(1, 0, 2), dy.transpose(1, 0, 2)
    return asarray(xp, x, dtype), asarray(xp, dy, dtype)


def _assert_same_gradients(without, with_dx, xp, dtype):
    _, d0, grads = without
    _, d0_ref, grads_ref = with_dx
    for got, ref in zip(
        d0 if isinstance(d0, tuple) else (d0,), d0_ref if isinstance(d0_ref, tuple) else (d0_ref,)
    ):
        assert_close(got, to_numpy(ref), xp=xp, dtype=dtype)
    assert list(grads) == list(grads_ref)
    for key in grads_ref:
        assert_close(grads[key], to_numpy(grads_ref[key]), xp=xp, dtype=dtype)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_without_dx_a_stacked_bidirectional_layer_returns_none_and_the_same_other_gradients(xp, dtype, kind):
    layer = LAYERS[kind](num_layers=2, bidirectional=True, xp=xp, dtype=dtype, seed=0)
    x, dy = _inputs(xp, dtype)
    _, _, cache = layer.forward(x, lengths=[6, 2, 5, 1])
    with_dx = layer.backward(cache, dy)
    without = layer.backward(cache, dy, need_dx=False)
    assert without[0] is None
    _assert_same_gradients(without, with_dx, xp, dtype)


@pytest.mark.parametrize("kind", ["lstm", "layernorm_lstm"])
def test_without_dx_the_recomputed_segments_of_checkpoint_give_the_same_gradients(xp, kind):
    layer = LAYERS[kind](xp=xp, dtype="float64", seed=1)
    x, dy = _inputs(xp, "float64")
    _, _, cache = layer.forward(x, checkpoint=2)
    without = layer.backward(cache, dy[:, :, :5], need_dx=False)
    assert without[0] is None
    _assert_same_gradients(without, layer.backward(cache, dy[:, :, :5]), xp, "float64")


def test_without_dx_a_batch_first_layer_returns_none(xp):
    layer = xrnn.GRU(3, 5, batch_first=True, bidirectional=True, xp=xp, dtype="float64", seed=2)
    x, dy = _inputs(xp, "float64", batch_first=True)
    _, _, cache = layer.forward(x)
    without = layer.backward(cache, dy, need_dx=False)
    assert without[0] is None
    _assert_same_gradients(without, layer.backward(cache, dy), xp, "float64")


@pytest.mark.parametrize("wrap", [Reversed, lambda layer: WithInitialState(layer, np.zeros((1, 4, 5)))])
def test_the_layer_wrappers_pass_need_dx_to_the_layer(wrap):
    layer = wrap(xrnn.RNN(3, 5, xp="numpy", dtype="float64", seed=3))
    x, dy = _inputs(np, "float64")
    _, _, cache = layer.forward(x)
    without = layer.backward(cache, dy[:, :, :5], need_dx=False)
    assert without[0] is None
    _assert_same_gradients(without, layer.backward(cache, dy[:, :, :5]), None, "float64")


def test_without_dx_a_model_returns_none_and_the_same_parameter_gradients():
    model = xrnn.SequenceModel(
        "lstm", input_size=3, hidden_size=5, output_size=2, num_layers=2, dtype="float64", seed=0
    )
    x = np.random.default_rng(5).standard_normal((6, 4, 3))
    z, _, cache = model.forward(x)
    dx, grads = model.backward(cache, np.ones_like(z), need_dx=False)
    _, grads_ref = model.backward(cache, np.ones_like(z))
    assert dx is None
    for key in grads_ref:
        np.testing.assert_allclose(grads[key], grads_ref[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("flag", [0, 1, None, "no"])
def test_need_dx_that_is_not_a_bool_is_a_type_error_naming_it(flag):
    layer = xrnn.LSTM(3, 5, dtype="float64", seed=0)
    _, _, cache = layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(TypeError, match="need_dx must be True or False"):
        layer.backward(cache, None, need_dx=flag)
    model = xrnn.SequenceModel("gru", input_size=3, hidden_size=5, output_size=1, dtype="float64", seed=0)
    z, _, model_cache = model.forward(np.zeros((2, 1, 3)))
    with pytest.raises(TypeError, match="need_dx must be True or False"):
        model.backward(model_cache, np.ones_like(z), need_dx=flag)


def test_torch_autograd_skips_dx_for_an_input_without_grad_and_keeps_the_parameter_gradients():
    torch = pytest.importorskip("torch")
    layer = xrnn.LSTM(3, 5, num_layers=2, xp=torch, dtype="float64", seed=0)
    x = torch.randn(6, 4, 3, dtype=torch.float64)

    def parameter_grads(x_in):
        params = {k: v.detach().clone().requires_grad_() for k, v in layer.params.items()}
        y, _ = layer.apply(params, x_in)
        (y * y).sum().backward()
        return {k: v.grad for k, v in params.items()}

    without = parameter_grads(x)
    x_grad = x.clone().requires_grad_()
    with_dx = parameter_grads(x_grad)
    assert x_grad.grad is not None and x_grad.grad.shape == x.shape
    for key in with_dx:
        torch.testing.assert_close(without[key], with_dx[key], rtol=1e-12, atol=1e-14)
