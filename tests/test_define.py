"""xrnn.cells.define: derived backwards, a given one checked, compiled kernels, models, checkpoints."""

from __future__ import annotations

import pathlib
import pickle
import re

import numpy as np
import pytest

import xrnn
from define_cells import cifg, gru, lstm
from helpers import asarray, assert_close, numeric_gradient
from xrnn.backends.numba.defined import elementwise_kernels
from xrnn.cells import GRU_CELL, LSTM_CELL
from xrnn.cells.definition import DEFINED, define
from xrnn.nn.cell_layer import CellLayer

pytest.importorskip("sympy")

GRU_DEFINED = define("gru_defined", ("r", "z", "n"), ("h",), gru, separate=("n",))
LSTM_DEFINED = define("lstm_defined", ("i", "f", "g", "o"), ("h", "c"), lstm)
CIFG = define("cifg", ("f", "g", "o"), ("h", "c"), cifg)


@pytest.mark.parametrize(("defined", "builtin"), [(GRU_DEFINED, GRU_CELL), (LSTM_DEFINED, LSTM_CELL)])
def test_derived_backward_equals_the_hand_written_one(defined, builtin):
    rng = np.random.default_rng(0)
    n, hidden, g = 6, 5, builtin.n_gates
    gx, gh = rng.standard_normal((n, g * hidden)), rng.standard_normal((n, g * hidden))
    state = tuple(rng.standard_normal((n, hidden)) for _ in range(builtin.n_states))
    dstate = tuple(rng.standard_normal((n, hidden)) for _ in range(builtin.n_states))
    new, cache = defined.step(gx, gh, state, xp=np)
    new_ref, cache_ref = builtin.step(gx, gh, state, xp=np)
    for a, b in zip(new, new_ref):
        assert_close(a, b, dtype="float64", tol=1e-14)
    dgx, dgh, direct = defined.step_backward(dstate, cache, xp=np)
    dgx_ref, dgh_ref, direct_ref = builtin.step_backward(dstate, cache_ref, xp=np)
    assert_close(dgx, dgx_ref, dtype="float64", tol=1e-14)
    assert_close(
        dgx if dgh is None else dgh, dgx_ref if dgh_ref is None else dgh_ref, dtype="float64", tol=1e-14
    )
    for a, b in zip(direct, direct_ref):
        assert_close(a, np.zeros_like(a) if b is None else b, dtype="float64", tol=1e-14)


def test_a_defined_gru_layer_equals_xrnn_gru(xp, dtype):
    rng = np.random.default_rng(1)
    ref = xrnn.GRU(3, 4, bidirectional=True, dtype=dtype, xp=xp, seed=2)
    layer = CellLayer(GRU_DEFINED, 3, 4, bidirectional=True, dtype=dtype, xp=xp, seed=2)
    x = asarray(xp, rng.standard_normal((6, 2, 3)), dtype)
    y, h, cache = layer.forward(x, lengths=[6, 3])
    y_ref, h_ref, cache_ref = ref.forward(x, lengths=[6, 3])
    assert_close(y, y_ref, xp=xp, dtype=dtype)
    assert_close(h, h_ref, xp=xp, dtype=dtype)
    dx, dh0, grads = layer.backward(cache, y)
    dx_ref, dh0_ref, grads_ref = ref.backward(cache_ref, y_ref)
    assert_close(dx, dx_ref, xp=xp, dtype=dtype)
    assert_close(dh0, dh0_ref, xp=xp, dtype=dtype)
    for key, value in grads_ref.items():
        assert_close(grads[key], value, xp=xp, dtype=dtype)


def test_a_defined_cell_layer_has_the_gradients_of_finite_differences():
    rng = np.random.default_rng(3)
    layer = CellLayer(CIFG, 2, 3, bidirectional=True, dtype="float64", seed=4)
    x, dy = rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 2, 6))
    y, _, cache = layer.forward(x, lengths=[4, 2])
    dx, _, grads = layer.backward(cache, dy)
    w = layer.params["weight_hh_l0_reverse"]

    def loss():
        return float(np.sum(layer.forward(x, lengths=[4, 2])[0] * dy))

    assert_close(dx, numeric_gradient(loss, x), dtype="float64", tol=1e-7)
    assert_close(grads["weight_hh_l0_reverse"], numeric_gradient(loss, w), dtype="float64", tol=1e-7)


def test_a_wrong_given_backward_is_refused_naming_its_output():
    def backward(act, d_h, d_c, f, g, o, h, c):  # dg misses its factor (1 - f)
        fs, gs, os_ = act.sigmoid(f), act.tanh(g), act.sigmoid(o)
        c2 = fs * c + (1 - fs) * gs
        dc = d_c + d_h * os_ * (1 - act.tanh(c2) ** 2)
        return (
            dc * (c - gs) * fs * (1 - fs),
            dc * (1 - gs**2),
            d_h * act.tanh(c2) * os_ * (1 - os_),
            0,
            dc * fs,
        )

    with pytest.raises(ValueError, match=r"wrong for output 1 \(the gradient of 'g'\)"):
        define("cifg_wrong", ("f", "g", "o"), ("h", "c"), cifg, backward=backward, register=False)
    assert "cifg_wrong" not in DEFINED


def test_a_right_given_backward_is_taken():
    def backward(act, d_h, d_c, f, g, o, h, c):
        fs, gs, os_ = act.sigmoid(f), act.tanh(g), act.sigmoid(o)
        c2 = fs * c + (1 - fs) * gs
        dc = d_c + d_h * os_ * (1 - act.tanh(c2) ** 2)
        return (
            dc * (c - gs) * fs * (1 - fs),
            dc * (1 - fs) * (1 - gs**2),
            d_h * act.tanh(c2) * os_ * (1 - os_),
            0,
            dc * fs,
        )

    cell = define("cifg_given", ("f", "g", "o"), ("h", "c"), cifg, backward=backward, register=False)
    assert cell.equations == CIFG.equations and "def backward" in cell.source


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", [GRU_DEFINED, CIFG])
def test_numba_kernels_of_a_defined_cell_equal_its_array_step(cell, dtype):
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((3, 7)).astype(dtype) for _ in cell.inputs]
    d = [rng.standard_normal((3, 7)).astype(dtype) for _ in cell.states]
    forward, backward = elementwise_kernels(cell, dtype)
    gx = np.concatenate([inputs[k] for k in range(cell.n_gates)], axis=1) if not cell.separate else None
    if gx is not None:
        new, cache = cell.step(gx, np.zeros_like(gx), tuple(inputs[cell.n_gates :]), xp=np)
        grads = cell.step_backward(tuple(d), cache, xp=np)
        got = forward(*inputs)
        for a, b in zip(got, new):
            assert_close(a, b, dtype=dtype)
        got_grads = backward(*d, *inputs)
        assert_close(np.concatenate(got_grads[: cell.n_gates], axis=1), grads[0], dtype=dtype)
    else:
        x, h = inputs[2], inputs[3]  # n_x, n_h of the GRU
        gx = np.concatenate([inputs[0], inputs[1], x], axis=1)
        gh = np.concatenate([np.zeros_like(x), np.zeros_like(x), h], axis=1)
        new, cache = cell.step(gx, gh, (inputs[4],), xp=np)
        assert_close(forward(*inputs)[0], new[0], dtype=dtype)
        dgx, dgh, direct = cell.step_backward(tuple(d), cache, xp=np)
        got = backward(*d, *inputs)
        assert_close(np.concatenate(got[:3], axis=1), dgx, dtype=dtype)
        assert_close(got[3], dgh[:, 14:], dtype=dtype)
        assert_close(got[4], direct[0], dtype=dtype)


def test_a_sequence_model_of_a_defined_cell_trains_and_its_checkpoint_holds_the_reference(tmp_path):
    rng = np.random.default_rng(6)
    model = xrnn.SequenceModel(CIFG, 3, 6, 2, head="last", dtype="float64", seed=0)
    x, y = rng.standard_normal((10, 32, 3)), rng.standard_normal((32, 2))
    history = xrnn.fit(model, xrnn.Adam(lr=0.02), x, y, loss="mse", epochs=10, batch_size=16, verbose=False)
    assert history.loss[-1] < history.loss[0]
    assert model.config["cell"] == f"cifg@{CIFG.fingerprint}"
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    loaded = xrnn.load_checkpoint(tmp_path / "m.npz").model
    assert_close(loaded.predict(x), model.predict(x), dtype="float64", tol=1e-15)


def test_a_checkpoint_of_a_defined_cell_needs_the_same_definition_registered(tmp_path, monkeypatch):
    model = xrnn.SequenceModel(CIFG, 3, 4, 2, dtype="float64", seed=0)
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    monkeypatch.delitem(DEFINED, "cifg")
    with pytest.raises(xrnn.CheckpointError, match="defined cell that is not registered here"):
        xrnn.load_checkpoint(tmp_path / "m.npz")
    define("cifg", ("f", "g", "o"), ("h", "c"), _no_coupling)
    with pytest.raises(xrnn.CheckpointError, match="registered with other equations"):
        xrnn.load_checkpoint(tmp_path / "m.npz")


def _no_coupling(act, f, g, o, h, c):
    c_next = act.sigmoid(f) * c + act.tanh(g)
    return act.sigmoid(o) * act.tanh(c_next), c_next


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "no good"}, "name must be a Python identifier"),
        ({"separate": ("q",)}, "separate must name gates"),
        ({"gates": ("f", "g", "one")}, "names must be identifiers other than"),
        ({"step": lambda act, f, g, o, h, c: (h**0.5, c)}, "only integer powers"),
        ({"step": lambda act, f, g, o, h, c: h}, "must return 2 value"),
    ],
)
def test_a_bad_definition_is_refused_with_a_clear_message(kwargs, message):
    args = {"name": "bad", "gates": ("f", "g", "o"), "states": ("h", "c"), "step": cifg, "register": False}
    with pytest.raises(ValueError, match=message):
        define(**(args | kwargs))


def test_the_tutorial_trains_a_cifg_lstm_that_beats_persistence_on_sunspots():
    pytest.importorskip("statsmodels")
    text = (pathlib.Path(__file__).parents[1] / "docs" / "custom-cells.rst").read_text(encoding="utf-8")
    block = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text).group(1)
    code = "".join(line[3:] + "\n" for line in block.splitlines())
    assert "sunspots" in code
    done: dict = {}
    exec(compile(code, "docs/custom-cells.rst", "exec"), done)
    assert done["mae"] < 0.85 * done["persistence"]


def test_numba_runs_a_defined_cell_as_the_generic_loop_does(monkeypatch):
    rng = np.random.default_rng(9)
    layer = CellLayer(CIFG, 3, 4, dtype="float64", seed=1)
    x, dy = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 4))
    y, _, cache = layer.forward(x)
    dx, _, grads = layer.backward(cache, dy)
    monkeypatch.setenv("XRNN_NUMBA", "0")
    y_ref, _, cache_ref = layer.forward(x)
    dx_ref, _, grads_ref = layer.backward(cache_ref, dy)
    assert_close(y, y_ref, dtype="float64", tol=1e-14)
    assert_close(dx, dx_ref, dtype="float64", tol=1e-14)
    for key, value in grads_ref.items():
        assert_close(grads[key], value, dtype="float64", tol=1e-14)


def test_a_defined_cell_pickles_as_its_registered_name():
    layer = CellLayer(CIFG, 3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(12).standard_normal((4, 2, 3))
    restored = pickle.loads(pickle.dumps(layer))
    # by name: the cell registered under it now, with the same equations
    assert restored._cell is DEFINED["cifg"] and restored._cell.fingerprint == CIFG.fingerprint
    assert_close(restored.forward(x)[0], layer.forward(x)[0], dtype="float64", tol=1e-15)


@pytest.mark.parametrize("need_cache", [True, False], ids=["training_loops", "inference_loops"])
def test_a_defined_cell_named_as_a_built_in_one_runs_its_own_equations(need_cache):
    # the compiled backends key their built-in kernels by name: a user's "lstm" must not reach them
    namesake = define("lstm", ("f", "g", "o"), ("h", "c"), cifg, register=False)
    x = np.random.default_rng(13).standard_normal((4, 2, 3))
    y, _, _ = CellLayer(namesake, 3, 4, dtype="float64", seed=0).forward(x, need_cache=need_cache)
    y_ref, _, _ = CellLayer(CIFG, 3, 4, dtype="float64", seed=0).forward(x)
    assert_close(y, y_ref, dtype="float64", tol=1e-15)


def test_a_sequence_model_of_a_defined_cell_pickles_as_data_and_unpickles_to_the_registered_cell(monkeypatch):
    model = xrnn.SequenceModel(CIFG, 3, 4, 2, dtype="float64", seed=0)
    x = np.random.default_rng(14).standard_normal((5, 2, 3))
    data = pickle.dumps(model)
    assert CIFG.source.encode() not in data and b"def forward" not in data  # no code, only the reference
    restored = pickle.loads(data)
    assert restored.rnn._cell is DEFINED["cifg"] and restored.config == model.config
    assert_close(restored.predict(x), model.predict(x), dtype="float64", tol=1e-15)
    monkeypatch.delitem(DEFINED, "cifg")
    with pytest.raises(ValueError, match=r"cell 'cifg' is not registered with the equations it was saved"):
        pickle.loads(data)


@pytest.mark.parametrize("given", ["cell", "reference", "name"])
def test_from_state_dict_takes_a_defined_cell_as_the_cell_its_reference_or_its_registered_name(given):
    model = xrnn.SequenceModel(CIFG, 3, 4, 2, head="last", dtype="float64", seed=0)
    cell = {"cell": CIFG, "reference": model.config["cell"], "name": "cifg"}[given]
    loaded = xrnn.SequenceModel.from_state_dict(model.state_dict(), cell, head="last")
    x = np.random.default_rng(15).standard_normal((5, 2, 3))
    assert loaded.config["cell"] == f"cifg@{CIFG.fingerprint}"
    assert_close(loaded.predict(x), model.predict(x), dtype="float64", tol=1e-15)


def test_a_checkpoint_loads_into_a_model_built_on_the_registered_name(tmp_path):
    model = xrnn.SequenceModel(CIFG, 3, 4, 2, dtype="float64", seed=0)
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    target = xrnn.SequenceModel("cifg", 3, 4, 2, dtype="float64", seed=1)
    xrnn.load_checkpoint(tmp_path / "m.npz", model=target)
    x = np.random.default_rng(16).standard_normal((5, 2, 3))
    assert_close(target.predict(x), model.predict(x), dtype="float64", tol=1e-15)
