"""Round trip: whatever ``fit`` or ``train`` can leave behind, a checkpoint restores exactly.

A property test (hypothesis): for every model kind (a SequenceModel of each cell and head,
each layer class, a Dense), every set of layer options (layers, directions, bias, dropout,
projection, layout, nonlinearity), both dtypes, and every optimiser state an update can
produce (none, SGD with and without momentum, Adam, after 0 to 2 steps),
``load_checkpoint(save_checkpoint(...))`` gives the same class, configuration, parameters
(bit for bit, of the same dtype) and optimiser (hyperparameters, step and every state array).
Tiny sizes keep the 200 examples to a few seconds.
"""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xrnn

KINDS = ["model-rnn", "model-lstm", "model-gru", "RNN", "LSTM", "GRU", "Dense"]


@st.composite
def saved_things(draw):
    kind = draw(st.sampled_from(KINDS))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    place = {"xp": "numpy", "dtype": dtype, "seed": draw(st.integers(0, 2**16))}
    if kind == "Dense":
        model = xrnn.Dense(draw(st.integers(1, 3)), draw(st.integers(1, 3)), **place)
    else:
        cell = kind.removeprefix("model-").lower()
        layers = draw(st.integers(1, 2))
        options = {
            "num_layers": layers,
            "bidirectional": draw(st.booleans()),
            "batch_first": draw(st.booleans()),
            "bias": draw(st.booleans()),
            "dropout": draw(st.sampled_from([0.0, 0.25])) if layers > 1 else 0.0,
        }
        hidden = draw(st.integers(2, 3))
        if cell == "lstm":
            options["proj_size"] = draw(st.integers(0, hidden - 1))
        if cell == "rnn":
            options["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
        if kind.startswith("model-"):
            head = draw(st.sampled_from(["every", "last"]))
            model = xrnn.SequenceModel(
                cell, 2, hidden, draw(st.integers(1, 3)), head=head, **options, **place
            )
        else:
            model = {"rnn": xrnn.RNN, "lstm": xrnn.LSTM, "gru": xrnn.GRU}[cell](2, hidden, **options, **place)
        if not draw(st.booleans()):
            model.eval()
    optimizer = draw(
        st.sampled_from([None, "sgd", "sgd-momentum", "adam"]).map(
            lambda name: (
                None
                if name is None
                else {"sgd": lambda: xrnn.SGD(0.1), "sgd-momentum": lambda: xrnn.SGD(0.1, momentum=0.9)}.get(
                    name, lambda: xrnn.Adam(1e-2, betas=(0.8, 0.9))
                )()
            )
        )
    )
    if optimizer is not None:
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        params = model.params
        for _ in range(draw(st.integers(0, 2))):  # what fit and train do: step, then take the result
            grads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
            params = optimizer.step(params, grads)
        if hasattr(model, "set_params"):
            model.set_params(params)
        else:
            model.params = params
    return model, optimizer


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saved_things())
def test_a_checkpoint_restores_what_training_leaves_exactly(thing):
    model, optimizer = thing
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "m.npz"
        xrnn.save_checkpoint(path, model, optimizer, metadata={"note": "round trip"})
        loaded, restored, metadata = xrnn.load_checkpoint(path, xp="numpy")
    assert type(loaded) is type(model) and metadata == {"note": "round trip"}
    config = model.config if isinstance(model, xrnn.SequenceModel) else None
    assert config is None or loaded.config == config
    assert set(loaded.params) == set(model.params)
    for key, value in model.params.items():
        assert loaded.params[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded.params[key], value, err_msg=key)
    if optimizer is None:
        assert restored is None
        return
    assert type(restored) is type(optimizer) and restored.hyperparameters() == optimizer.hyperparameters()
    assert restored.state["step"] == optimizer.state["step"]
    mine, theirs = optimizer.state_arrays(), restored.state_arrays()
    assert set(theirs) == set(mine)
    for name, value in mine.items():
        assert theirs[name].dtype == value.dtype, name
        np.testing.assert_array_equal(theirs[name], value, err_msg=name)
