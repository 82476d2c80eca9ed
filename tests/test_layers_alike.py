"""Layers, cell layers and models behave alike: set_params, torch's call, torch's positional arguments."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import xrnn
from helpers import to_numpy

LAYERS = {
    "LSTM": lambda xp: xrnn.LSTM(3, 4, 2, xp=xp, seed=0),
    "GRU": lambda xp: xrnn.GRU(3, 4, bidirectional=True, xp=xp, seed=0),
    "RNN": lambda xp: xrnn.RNN(3, 4, xp=xp, seed=0),
    "LSTMCell": lambda xp: xrnn.LSTMCell(3, 4, xp=xp, seed=0),
    "GRUCell": lambda xp: xrnn.GRUCell(3, 4, xp=xp, seed=0),
    "RNNCell": lambda xp: xrnn.RNNCell(3, 4, xp=xp, seed=0),
    "Dense": lambda xp: xrnn.Dense(3, 4, xp=xp, seed=0),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_takes_new_parameters_with_set_params(xp, name):
    layer = LAYERS[name](xp)
    new = {key: value * 2 for key, value in layer.params.items()}
    layer.set_params(new)
    assert layer.params == new and layer.params is not new
    assert layer.param_shapes() == {key: tuple(value.shape) for key, value in new.items()}


@pytest.mark.parametrize("name", list(LAYERS))
def test_set_params_refuses_the_parameters_of_another_layer(name):
    layer, other = LAYERS[name]("numpy"), xrnn.LSTM(5, 6, 3)
    before = dict(layer.params)
    with pytest.raises(ValueError, match=f"params must have the keys of this {name}"):
        layer.set_params(other.params)
    key = next(iter(layer.params))
    with pytest.raises(ValueError, match=rf"params\['{key}'\] must have shape"):
        layer.set_params({**layer.params, key: layer.params[key][:1]})
    assert layer.params == before


def test_an_lstm_call_unpacks_as_torchs_and_matches_torch():
    torch = pytest.importorskip("torch")
    layer = xrnn.LSTM(3, 4, 2, xp="torch", dtype="float64", seed=0)
    reference = torch.nn.LSTM(3, 4, 2, dtype=torch.float64)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, (h, c) = layer(x)
    with torch.no_grad():
        want_out, (want_h, want_c) = reference(x)
    for got, want in ((out, want_out), (h, want_h), (c, want_c)):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["GRU", "RNN"])
def test_a_layer_call_is_forward_without_the_cache(xp, name):
    layer = LAYERS[name](xp)
    x = xp.asarray(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    out, state = layer(x)
    y, final, _ = layer.forward(x)
    assert np.array_equal(to_numpy(out), to_numpy(y)) and np.array_equal(to_numpy(state), to_numpy(final))


def test_a_cell_call_returns_the_new_state_as_torchs():
    x = np.ones((2, 3), np.float32)
    h, c = LAYERS["LSTMCell"]("numpy")(x)
    assert h.shape == c.shape == (2, 4)
    assert LAYERS["GRUCell"]("numpy")(x).shape == (2, 4)
    assert LAYERS["Dense"]("numpy")(x).shape == (2, 4)


def test_a_model_call_returns_the_outputs_and_the_state():
    model = xrnn.SequenceModel("lstm", 3, 4, 2, head="last", seed=0)
    x = np.ones((5, 2, 3), np.float32)
    z, (h, c) = model(x)
    assert np.array_equal(z, model.forward(x)[0]) and h.shape == (1, 2, 4)


def test_num_layers_is_positional_on_the_model_as_on_the_layers():
    model = xrnn.SequenceModel("gru", 3, 4, 2, 3)
    assert model.rnn.num_layers == 3 and model.config["num_layers"] == 3


def _positional(function):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds][1:]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("LSTM", None),
        ("GRU", None),
        ("RNN", None),
        ("LSTMCell", "LSTMCell"),
        ("GRUCell", "GRUCell"),
        ("RNNCell", "RNNCell"),
    ],
)
def test_positional_arguments_are_torchs(ours, theirs):
    torch = pytest.importorskip("torch")
    if theirs is None:  # torch's recurrent layers take RNNBase's arguments after its mode
        reference = _positional(torch.nn.RNNBase.__init__)[1:]
        if ours == "RNN":  # torch.nn.RNN reads a fourth positional argument as nonlinearity
            reference.insert(3, "nonlinearity")
    else:
        reference = _positional(getattr(torch.nn, theirs).__init__)
    reference = [name for name in reference if name not in ("device", "dtype")]
    positional = _positional(getattr(xrnn, ours).__init__)
    assert positional == reference[: len(positional)] and len(positional) >= len(reference) - 1


@pytest.mark.parametrize("name", list(LAYERS))
def test_set_params_of_every_layer_owns_what_it_keeps_as_the_model_does(name):
    torch = pytest.importorskip("torch")
    layer = LAYERS[name]("torch")
    layer.set_params({k: v.clone().requires_grad_(True) for k, v in layer.params.items()})
    assert not any(v.requires_grad for v in layer.params.values())
    key = next(iter(layer.params))
    with pytest.raises(
        TypeError, match=rf"params\['{key}'\] must have the model's dtype float32, got float64"
    ):
        layer.set_params({**layer.params, key: layer.params[key].to(torch.float64)})
