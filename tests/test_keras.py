"""Keras 3 weights to and from xrnn: Keras -> xrnn -> Keras computes what Keras computes, refusals by name."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import xrnn

if "KERAS_BACKEND" not in os.environ:  # Keras reads it once, on import; torch (pinned here) or JAX
    os.environ["KERAS_BACKEND"] = "torch" if importlib.util.find_spec("torch") else "jax"
keras = pytest.importorskip("keras")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


# Keras's torch variables convert to NumPy through a deprecated __array__ (Keras's, not xrnn's)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
KINDS = [("LSTM", {}), ("GRU", {}), ("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu"})]
KINDS += [("GRU", {"reset_after": False})]


def _keras_layers(kind, options, *, layers, bidirectional, use_bias, sequences, dense):
    out = []
    for k in range(layers):
        layer = getattr(keras.layers, kind)(
            4, return_sequences=k < layers - 1 or sequences, use_bias=use_bias, **options
        )
        out.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
    return out + ([keras.layers.Dense(2)] if dense else [])


def _run(layers, x, weights=None, seed=0):
    model = keras.Sequential([keras.Input(x.shape[1:]), *layers])
    if weights is None:
        rng = np.random.default_rng(seed)
        model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in model.get_weights()])
    else:
        for layer, w in zip(model.layers, weights, strict=True):
            layer.set_weights(w)
    return keras.ops.convert_to_numpy(model(x))


def _xrnn_outputs(model, x):
    if isinstance(model, xrnn.SequenceModel):
        return model.predict(x)
    return model.eval().forward(x, need_cache=False)[0]


@hypothesis.settings(max_examples=12, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    kind=st.sampled_from(KINDS),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    use_bias=st.booleans(),
    sequences=st.booleans(),
    dense=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_keras_to_xrnn_to_keras_computes_what_keras_computes(
    kind, layers, bidirectional, use_bias, sequences, dense, seed
):
    hypothesis.assume(dense or sequences)  # a bare xrnn layer returns every step
    options = {"layers": layers, "bidirectional": bidirectional, "use_bias": use_bias, "sequences": sequences}
    built = _keras_layers(kind[0], kind[1], dense=dense, **options)
    x = np.random.default_rng(seed).standard_normal((3, 5, 2)).astype(np.float32)
    want = _run(built, x, seed=seed)
    model = xrnn.from_keras_weights(
        [c.get_config() for c in built], [c.get_weights() for c in built], xp="numpy"
    )
    np.testing.assert_allclose(_xrnn_outputs(model, x), want, rtol=1e-5, atol=1e-5)
    configs, weights = xrnn.to_keras_weights(model)
    again = [keras.layers.deserialize(c) for c in configs]
    np.testing.assert_allclose(_run(again, x, weights), want, rtol=1e-5, atol=1e-5)


def test_one_layer_config_and_its_weights_make_a_layer():
    (layer,) = _keras_layers(
        "GRU", {}, layers=1, bidirectional=True, use_bias=True, sequences=True, dense=False
    )
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    want = _run([layer], x)
    got = xrnn.from_keras_weights(layer.get_config(), layer.get_weights(), xp="numpy")
    assert isinstance(got, xrnn.GRU) and got.batch_first and got.bidirectional
    np.testing.assert_allclose(_xrnn_outputs(got, x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"units": 4, "return_sequences": True, "unit_forget_bias": True, "activation": "relu"},
            "activation='relu'",
        ),
        (
            {
                "units": 4,
                "return_sequences": True,
                "unit_forget_bias": True,
                "recurrent_activation": "hard_sigmoid",
            },
            "recurrent_activation='hard_sigmoid': xrnn's gates are sigmoid",
        ),
        (
            {"units": 4, "return_sequences": True, "unit_forget_bias": True, "go_backwards": True},
            "go_backwards=True",
        ),
        (
            {
                "layer": {"class_name": "LSTM", "config": {"units": 4, "return_sequences": True}},
                "merge_mode": "sum",
            },
            "merge_mode='concat'",
        ),
    ],
)
def test_what_xrnn_does_not_compute_is_refused_by_name(config, message):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((2, 16)), rng.standard_normal((4, 16)), rng.standard_normal(16)]
    with pytest.raises(ValueError, match=message):
        xrnn.from_keras_weights(config, weights)


def test_stacked_layers_of_different_sizes_are_refused():
    built = [keras.layers.LSTM(4, return_sequences=True), keras.layers.LSTM(3, return_sequences=True)]
    _run(built, np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="must share kind, units, use_bias and direction; layer 1 differs"):
        xrnn.from_keras_weights([b.get_config() for b in built], [b.get_weights() for b in built])


def test_a_projected_lstm_has_no_keras_twin():
    with pytest.raises(ValueError, match="Keras's LSTM has no projection"):
        xrnn.to_keras_weights(xrnn.LSTM(2, 4, proj_size=2, xp="numpy"))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_reset_before_keras_gru_goes_to_xrnn_and_back(bidirectional):
    built = _keras_layers("GRU", {"reset_after": False}, layers=2, bidirectional=bidirectional, use_bias=True,
                          sequences=True, dense=True)  # fmt: skip
    x = np.random.default_rng(1).standard_normal((3, 5, 2)).astype(np.float32)
    want = _run(built, x)
    model = xrnn.from_keras_weights(
        [c.get_config() for c in built], [c.get_weights() for c in built], xp="numpy"
    )
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-5)
    configs, weights = xrnn.to_keras_weights(model)
    np.testing.assert_allclose(
        _run([keras.layers.deserialize(c) for c in configs], x, weights), want, atol=1e-5
    )


def test_weights_must_hold_one_list_per_layer_config():
    built = _keras_layers(
        "LSTM", {}, layers=2, bidirectional=False, use_bias=True, sequences=True, dense=False
    )
    _run(built, np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"weights must hold one list per layer config \(2\), got 1"):
        xrnn.from_keras_weights([b.get_config() for b in built], [built[0].get_weights()])


def test_a_layer_with_too_few_weights_is_refused():
    (layer,) = _keras_layers(
        "SimpleRNN", {}, layers=1, bidirectional=False, use_bias=True, sequences=True, dense=False
    )
    _run([layer], np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="the Keras SimpleRNN with use_bias=True has 3 weights, got 2"):
        xrnn.from_keras_weights(layer.get_config(), layer.get_weights()[:2])


def test_something_that_is_not_a_model_has_no_keras_weights():
    with pytest.raises(TypeError, match="model must be an xrnn.SequenceModel or an xrnn.RNN, LSTM or GRU"):
        xrnn.to_keras_weights(xrnn.Dense(3, 2, xp="numpy"))
