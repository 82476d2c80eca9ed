"""Every layer, cell layer, Dense, SequenceModel, optimiser and History pickles and deep-copies.

On every backend: the copy holds the same namespace (stored by name, resolved again on
load), its arrays are the namespace's own with the same values, it computes what the
original computes, and a deep copy owns its arrays.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import assert_close, to_numpy

COPIES = {"pickle": lambda o: pickle.loads(pickle.dumps(o)), "deepcopy": copy.deepcopy}
MODELS = {
    "lstm": lambda xp: xrnn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, xp=xp, seed=0),
    "gru": lambda xp: xrnn.GRU(3, 4, dropout=0.5, num_layers=2, xp=xp, seed=0),
    "rnn": lambda xp: xrnn.RNN(3, 4, nonlinearity="relu", batch_first=True, xp=xp, seed=0),
    "lstm_cell": lambda xp: xrnn.LSTMCell(3, 4, xp=xp, seed=0),
    "gru_cell": lambda xp: xrnn.GRUCell(3, 4, xp=xp, seed=0),
    "rnn_cell": lambda xp: xrnn.RNNCell(3, 4, xp=xp, seed=0),
    "dense": lambda xp: xrnn.Dense(3, 2, xp=xp, seed=0),
    "sequence_model": lambda xp: xrnn.SequenceModel("gru", 3, 4, 2, xp=xp, seed=0),
}


def _input(name: str, xp, dtype="float32"):
    one_step = "cell" in name or name == "dense"
    x = np.random.default_rng(1).standard_normal((2, 3) if one_step else (5, 2, 3))
    return xp.asarray(x.astype(dtype))


def _output(model, x):
    """The first array that ``forward`` returns (``y``, or a cell's ``h``)."""
    out = model.forward(x)
    while isinstance(out, tuple):
        out = out[0]
    return out


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("name", list(MODELS))
def test_a_copy_holds_the_namespace_and_the_arrays_and_computes_the_same(name, how, xp):
    model = MODELS[name](xp)
    if hasattr(model, "eval"):
        model.eval()
    again = COPIES[how](model)
    assert type(again) is type(model)
    for key, value in model.params.items():
        assert array_namespace(again.params[key]) is xp
        np.testing.assert_array_equal(to_numpy(again.params[key]), to_numpy(value))
    x = _input(name, xp)
    assert_close(_output(again, x), _output(model, x), xp=xp, dtype="float32")


@pytest.mark.parametrize("name", ["lstm", "dense"])
def test_a_deep_copy_owns_its_parameters(name, xp):
    model = MODELS[name](xp)
    again = copy.deepcopy(model)
    key = next(iter(model.params))
    again.params[key] = again.params[key] + 1.0
    assert not np.array_equal(to_numpy(again.params[key]), to_numpy(model.params[key]))


def test_a_copied_layer_keeps_drawing_its_own_dropout_masks(xp):
    # the generator is part of the state: a copy draws what the original would have drawn next
    model = MODELS["gru"](xp)
    again = copy.deepcopy(model)
    x = _input("gru", xp)
    assert_close(_output(again, x), _output(model, x), xp=xp, dtype="float32")


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("optimiser", [lambda: xrnn.SGD(0.1, momentum=0.9), lambda: xrnn.Adam(0.01)])
def test_an_optimiser_copy_goes_on_as_the_original(optimiser, how, xp):
    params = {"w": xp.asarray(np.linspace(-1, 1, 6).reshape(2, 3))}
    grads = {"w": xp.asarray(np.ones((2, 3)))}
    opt = optimiser()
    params = opt.step(params, grads)
    again = COPIES[how](opt)
    assert again.hyperparameters() == opt.hyperparameters() and again.state["step"] == 1
    for slot in opt.slots:
        assert array_namespace(again.state[slot]["w"]) is xp
    assert_close(again.step(params, grads)["w"], opt.step(params, grads)["w"], xp=xp, dtype="float64")


@pytest.mark.parametrize("how", list(COPIES))
def test_a_history_copy_equals_the_original(how):
    history = xrnn.History(loss=[1.0, 0.5], val_loss=[1.1, 0.7], seconds=[0.1, 0.1], best_epoch=2)
    assert COPIES[how](history) == history


def test_a_namespace_is_stored_by_its_backend_name(xp):
    from xrnn._util.namespaces import BACKENDS

    state = MODELS["lstm"](xp).__getstate__()
    assert state["xp"] in BACKENDS
