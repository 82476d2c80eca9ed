"""SequenceModel (a recurrent layer and a dense head), the training loop, and gradient_by_step."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, to_numpy
from test_gradcheck import numeric_gradient


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_model_gradients_agree_with_finite_differences(cell):
    model = xrnn.SequenceModel(cell, 2, 3, 2, num_layers=2, xp="numpy", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, dz = rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 2, 2))
    params = model.params

    def loss():
        model.set_params(params)
        return float(np.sum(model.forward(x)[0] * dz))

    z, _, cache = model.forward(x)
    dx, grads = model.backward(cache, dz)
    assert set(grads) == set(params)
    assert np.allclose(dx, numeric_gradient(loss, x), atol=1e-7)
    for key, value in params.items():
        assert np.allclose(grads[key], numeric_gradient(loss, value), atol=1e-7), key


def test_params_are_the_layer_and_head_parameters_under_prefixes():
    model = xrnn.SequenceModel("gru", 3, 4, 5, xp="numpy", seed=0)
    assert model.param_shapes() == {
        "rnn.weight_ih_l0": (12, 3),
        "rnn.weight_hh_l0": (12, 4),
        "rnn.bias_ih_l0": (12,),
        "rnn.bias_hh_l0": (12,),
        "head.weight": (5, 4),
        "head.bias": (5,),
    }
    assert model.params["head.weight"] is model.head.params["weight"]
    assert model.config == {
        "cell": "gru",
        "input_size": 3,
        "hidden_size": 4,
        "output_size": 5,
        "num_layers": 1,
        "bidirectional": False,
        "batch_first": False,
        "head": "every",
        "bias": True,
        "dropout": 0.0,
        "reset_after": True,
        "weight_drop": 0.0,
        "zoneout": 0.0,
    }


def test_the_same_seed_gives_the_same_model_on_every_backend(xp):
    ref = xrnn.SequenceModel("lstm", 2, 3, 1, xp="numpy", dtype="float64", seed=7)
    model = xrnn.SequenceModel("lstm", 2, 3, 1, xp=xp, dtype="float64", seed=7)
    for key, value in model.params.items():
        assert array_namespace(value) is xp
        assert np.array_equal(to_numpy(value), ref.params[key])


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"head.weight": np.zeros((1, 3))}, r"missing \['head.bias'"),
        ("not a dict", "params must be a dict of arrays, got str"),
    ],
)
def test_set_params_refuses_other_keys(params, pattern):
    model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0)
    with pytest.raises((ValueError, TypeError), match=pattern):
        model.set_params(params)


def test_set_params_refuses_other_shapes():
    model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0)
    params = model.params | {"head.bias": np.zeros((2,), dtype=np.float32)}
    with pytest.raises(ValueError, match=r"params\['head.bias'\] must have shape \(1,\), got \(2,\)"):
        model.set_params(params)


def test_unknown_cell_is_a_clear_error():
    expected = (
        "cell must be one of rnn, lstm, gru, mingru, minlstm, indrnn, layernorm_lstm, layernorm_gru "
        "or a cell of "
        "xrnn.cells.define, got 'tr"
    )
    with pytest.raises(ValueError, match=expected):
        xrnn.SequenceModel("transformer", 2, 3, 1)


def test_training_lowers_the_loss_on_every_backend(xp):
    task = xrnn.AddingTask(seq_len=6, batch_size=16, eval_size=64, xp=xp)
    model = xrnn.SequenceModel("rnn", 2, 8, 1, xp=xp, seed=0)
    before = task.evaluate(model).value
    losses = xrnn.train(model, task, xrnn.Adam(0.05), steps=20, seed=0)
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert task.evaluate(model).value < 0.5 * before
    assert all(array_namespace(v) is xp for v in model.params.values())


def test_training_calls_back_after_every_step():
    seen = []
    task = xrnn.AddingTask(seq_len=4, batch_size=2, xp="numpy")
    model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0)
    losses = xrnn.train(
        model, task, xrnn.SGD(0.1), steps=3, clip=None, callback=lambda s, v: seen.append((s, v))
    )
    assert seen == list(zip([1, 2, 3], losses))


def test_training_with_the_same_seed_is_reproducible():
    def run():
        task = xrnn.AddingTask(seq_len=5, batch_size=4, xp="numpy")
        model = xrnn.SequenceModel("lstm", 2, 3, 1, xp="numpy", seed=1)
        return xrnn.train(model, task, xrnn.Adam(0.01), steps=3, seed=2)

    assert run() == run()


def test_gradient_by_step_is_the_mean_norm_of_the_input_gradient(xp):
    model = xrnn.SequenceModel("rnn", 2, 3, 2, xp=xp, dtype="float64", seed=0)
    x = asarray(xp, np.random.default_rng(0).standard_normal((5, 4, 2)), "float64")
    norms = xrnn.gradient_by_step(model, x)
    z, _, cache = model.forward(x)
    dz = np.zeros((5, 4, 2))
    dz[-1] = 1.0
    dx, _ = model.backward(cache, asarray(xp, dz, "float64"))
    expected = np.linalg.norm(to_numpy(dx), axis=-1).mean(axis=1)
    assert tuple(norms.shape) == (5,)
    assert np.allclose(to_numpy(norms), expected)


def test_a_trained_vanilla_rnn_gradient_vanishes_over_the_steps():
    model = xrnn.SequenceModel("rnn", 2, 8, 1, xp="numpy", dtype="float64", seed=0)
    x, _ = xrnn.data.adding_problem(64, 40, seed=0, xp="numpy", dtype="float64")
    norms = to_numpy(xrnn.gradient_by_step(model, x))
    assert norms[0] < 1e-6 * norms[-1]
