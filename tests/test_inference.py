"""The inference path (``need_cache=False``, ``predict``) computes what the cached forward computes.

It runs other loops (no step cache written), prepares the weights once per set of weights
and checks each configuration once: these tests hold its results equal to the cached
forward pass on every cell, and its prepared weights renewed whenever the weights change
in a way the library can see (nn/inference.py says which ways it cannot).
"""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref

import numpy as np
import pytest

import xrnn
from helpers import asarray, to_numpy
from xrnn.backends.numba import infer_ops
from xrnn.engine import inference as engine_inference
from xrnn.engine.ops import Ops

T, N, IN, H = 7, 4, 3, 5
TOL = {"float32": 1e-6, "float64": 1e-12}

#: (name, layer class, options): every cell the layers offer.
CELLS = [
    ("rnn_tanh", xrnn.RNN, {}),
    ("rnn_relu", xrnn.RNN, {"nonlinearity": "relu"}),
    ("lstm", xrnn.LSTM, {}),
    ("lstm_proj", xrnn.LSTM, {"proj_size": 2}),
    ("lstm_peepholes", xrnn.LSTM, {"peepholes": True}),
    ("gru", xrnn.GRU, {}),
    ("gru_reset_before", xrnn.GRU, {"reset_after": False}),
    ("mingru", xrnn.MinGRU, {}),
    ("minlstm", xrnn.MinLSTM, {}),
]
SHAPES = [  # (num_layers, bidirectional, batch_first, lengths)
    (1, False, False, None),
    (2, True, False, [7, 3, 5, 1]),
    (2, False, True, [2, 7, 7, 4]),
]


def _states(out):
    return out if isinstance(out, tuple) else (out,)


def _assert_same(actual, expected, dtype):
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape and a.dtype == e.dtype
    scale = max(float(np.max(np.abs(e), initial=0.0)), 1.0)
    assert float(np.max(np.abs(a - e), initial=0.0)) <= TOL[dtype] * scale


@pytest.mark.parametrize(("name", "cls", "options"), CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "lengths"), SHAPES)
def test_inference_equals_the_cached_forward(
    xp, dtype, name, cls, options, layers, bidirectional, batch_first, lengths
):
    layer = cls(
        IN,
        H,
        layers,
        batch_first=batch_first,
        bidirectional=bidirectional,
        xp=xp,
        dtype=dtype,
        seed=0,
        **options,
    )
    shape = (N, T, IN) if batch_first else (T, N, IN)
    _assert_inference_equals_the_cached_forward(layer, shape, lengths, xp, dtype)


#: Layers with a loop of their own, and zoneout, which acts in evaluation mode too (its
#: expectation): each on one shape (the shapes reach the same code as above).
MORE_CELLS = [
    ("indrnn_relu", xrnn.IndRNN, {"nonlinearity": "relu"}),
    ("layernorm_lstm", xrnn.LayerNormLSTM, {}),
    ("layernorm_gru", xrnn.LayerNormGRU, {}),
    ("lstm_zoneout", xrnn.LSTM, {"zoneout": 0.3}),
    ("gru_zoneout", xrnn.GRU, {"zoneout": 0.3}),
]


@pytest.mark.parametrize(("name", "cls", "options"), MORE_CELLS, ids=[c[0] for c in MORE_CELLS])
def test_inference_in_evaluation_mode_equals_the_cached_forward(xp, dtype, name, cls, options):
    layer = cls(IN, H, 2, bidirectional=True, xp=xp, dtype=dtype, seed=0, **options).eval()
    _assert_inference_equals_the_cached_forward(layer, (T, N, IN), [7, 3, 5, 1], xp, dtype)


def _assert_inference_equals_the_cached_forward(layer, shape, lengths, xp, dtype):
    x = asarray(xp, np.random.default_rng(1).standard_normal(shape), dtype)
    y, state, cache = layer.forward(x, lengths=lengths)
    for _ in range(2):  # the second call runs on the prepared weights and the checked configuration
        y_inf, state_inf, none = layer.forward(x, lengths=lengths, need_cache=False)
        assert none is None
        _assert_same(y_inf, y, dtype)
        for a, b in zip(_states(state_inf), _states(state)):
            _assert_same(a, b, dtype)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_inference_of_a_given_state_equals_the_cached_forward(kind, dtype):
    cls, options = {"rnn_tanh": (xrnn.RNN, {}), "lstm": (xrnn.LSTM, {}), "gru": (xrnn.GRU, {})}[kind]
    layer = cls(IN, H, 2, xp="numpy", dtype=dtype, seed=0, **options)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, N, IN)).astype(dtype)
    state = tuple(rng.standard_normal((2, N, H)).astype(dtype) for _ in range(2 if kind == "lstm" else 1))
    state = state if kind == "lstm" else state[0]
    y, s, _ = layer.forward(x, state)
    y_inf, s_inf, _ = layer.forward(x, state, need_cache=False)
    _assert_same(y_inf, y, dtype)
    for a, b in zip(_states(s_inf), _states(s)):
        _assert_same(a, b, dtype)


def test_a_sequence_longer_than_one_segment_runs_in_segments_with_the_same_results(monkeypatch):
    layer = xrnn.LSTM(IN, H, bidirectional=True, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((T, N, IN))
    lengths = [7, 2, 5, 6]
    y, (h, c), _ = layer.forward(x, lengths=lengths)
    monkeypatch.setattr(engine_inference, "SEGMENT_BYTES", 3 * N * 4 * H * 8)  # 3 steps a segment
    y_inf, (h_inf, c_inf), _ = layer.forward(x, lengths=lengths, need_cache=False)
    for a, b in ((y_inf, y), (h_inf, h), (c_inf, c)):
        _assert_same(a, b, "float64")


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "threaded"])
def test_numba_inference_loop_equals_the_generic_ops(kind, threaded, dtype, monkeypatch):
    from xrnn.backends import ops_for
    from xrnn.cells import CELLS as CELL_TABLE

    cell = CELL_TABLE[kind]
    n = 33 if threaded else 3
    monkeypatch.setattr(infer_ops, "PARALLEL_ROWS", 32 if threaded else None)
    from array_api_compat import numpy as xp

    rng = np.random.default_rng(3)
    width = cell.n_gates * H
    gx = rng.standard_normal((T, n, width)).astype(dtype)
    w_hh_t = (rng.standard_normal((H, width)) / 2).astype(dtype)
    biases = tuple(rng.standard_normal(width).astype(dtype) for _ in range(2))
    state0 = tuple(rng.standard_normal((n, H)).astype(dtype) for _ in range(cell.n_states))
    lengths = np.asarray(rng.integers(1, T + 1, n), dtype=np.int64)
    fast = ops_for(xp, np.dtype(dtype))
    assert fast.name == "numba"
    y, state = fast.infer(cell, gx, w_hh_t, biases, state0, lengths)
    y_ref, state_ref = Ops(xp).infer(cell, gx, w_hh_t, biases, state0, lengths)
    mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # rows past their length are the caller's
    _assert_same(np.where(mask, y, 0), np.where(mask, y_ref, 0), dtype)
    for a, b in zip(state, state_ref):
        _assert_same(a, b, dtype)


# ------------------------------------------------------------------ prepared weights renewed


def _fresh_y(layer, x):
    """What a layer that never ran inference computes with the same parameters (cached forward)."""
    return layer.forward(x)[0]


def _layer_and_x(**options):
    layer = xrnn.LSTM(IN, H, dtype="float64", seed=0, **options)
    return layer, np.random.default_rng(1).standard_normal((T, N, IN))


def test_set_params_with_new_arrays_renews_the_prepared_weights():
    layer, x = _layer_and_x()
    before = layer.forward(x, need_cache=False)[0]
    layer.set_params({k: v * 0.5 for k, v in layer.params.items()})
    after = layer.forward(x, need_cache=False)[0]
    assert not np.allclose(after, before)
    _assert_same(after, _fresh_y(layer, x), "float64")


@pytest.mark.parametrize("key", ["weight_hh_l0", "bias_hh_l0"])
def test_a_write_in_place_into_a_numpy_parameter_shows_at_the_next_call(key):
    layer, x = _layer_and_x()
    layer.forward(x, need_cache=False)
    layer.params[key][...] *= -1  # no new array, no version counter: the weights are prepared again
    _assert_same(layer.forward(x, need_cache=False)[0], _fresh_y(layer, x), "float64")


def test_set_params_of_the_same_arrays_renews_the_prepared_weights_after_a_write_in_place():
    layer, x = _layer_and_x()
    layer.forward(x, need_cache=False)
    layer.params["weight_hh_l0"][...] *= -1
    layer.set_params(layer.params)
    _assert_same(layer.forward(x, need_cache=False)[0], _fresh_y(layer, x), "float64")


def test_assigning_one_parameter_renews_the_prepared_weights():
    layer, x = _layer_and_x()
    layer.forward(x, need_cache=False)
    layer.params["bias_hh_l0"] = layer.params["bias_hh_l0"] + 1.0
    _assert_same(layer.forward(x, need_cache=False)[0], _fresh_y(layer, x), "float64")


def test_an_optimiser_step_renews_the_prepared_weights():
    model = xrnn.SequenceModel("gru", IN, H, 2, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((T, N, IN))
    before = model.predict(x)
    z, _, cache = model.forward(x)
    _, grads = model.backward(cache, np.ones_like(z))
    model.set_params(xrnn.SGD(lr=0.5).step(model.params, grads))
    after = model.predict(x)
    assert not np.allclose(after, before)
    _assert_same(after, model.forward(x)[0], "float64")


def test_a_torch_change_in_place_renews_the_prepared_weights():
    torch = pytest.importorskip("torch")
    layer = xrnn.LSTM(IN, H, xp="torch", dtype="float64", seed=0)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((T, N, IN)))
    layer.forward(x, need_cache=False)
    with torch.no_grad():
        layer.params["weight_hh_l0"].mul_(-1)  # bumps the tensor's version counter
    _assert_same(layer.forward(x, need_cache=False)[0], _fresh_y(layer, x), "float64")


@pytest.mark.parametrize("change", ["load_state_dict", "optimizer_step"])
def test_the_torch_module_sees_load_state_dict_and_optimiser_steps(change):
    torch = pytest.importorskip("torch")
    import xrnn.torch as xtorch

    module = xtorch.LSTM(IN, H, dtype=torch.float64)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((T, N, IN)))
    with torch.inference_mode():
        before = module(x)[0]
    if change == "load_state_dict":
        module.load_state_dict({k: v * 0.5 for k, v in module.state_dict().items()})
    else:
        module(x)[0].sum().backward()
        torch.optim.SGD(module.parameters(), lr=0.5).step()
    with torch.inference_mode():
        after = module(x)[0]
    twin = xtorch.LSTM(IN, H, dtype=torch.float64)
    twin.load_state_dict(module.state_dict())
    with torch.inference_mode():
        expected = twin(x)[0]
    assert not torch.allclose(after, before)
    _assert_same(after, expected, "float64")


# ------------------------------------------------------------------ memory, copies, threads


def test_the_layer_keeps_no_earlier_set_of_weights_alive():
    layer, x = _layer_and_x()
    layer.forward(x, need_cache=False)
    old = weakref.ref(layer.params["weight_hh_l0"])
    for _ in range(3):
        layer.set_params({k: v + 0.0 for k, v in layer.params.items()})
        layer.forward(x, need_cache=False)
    gc.collect()
    assert old() is None


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_after_inference_predicts_alike_and_renews_its_own_weights(how):
    layer, x = _layer_and_x()
    expected = layer.forward(x, need_cache=False)[0]
    twin = pickle.loads(pickle.dumps(layer)) if how == "pickle" else copy.deepcopy(layer)
    _assert_same(twin.forward(x, need_cache=False)[0], expected, "float64")
    twin.set_params({k: v * 2.0 for k, v in twin.params.items()})
    _assert_same(twin.forward(x, need_cache=False)[0], _fresh_y(twin, x), "float64")
    _assert_same(layer.forward(x, need_cache=False)[0], expected, "float64")


@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "threaded"])
def test_eight_threads_predicting_at_once_get_identical_results(threaded, monkeypatch):
    monkeypatch.setattr(infer_ops, "PARALLEL_ROWS", 32 if threaded else None)
    n = 40 if threaded else 3
    model = xrnn.SequenceModel("lstm", IN, H, 2, num_layers=2, seed=0).eval()
    xs = [np.random.default_rng(j).standard_normal((T, n, IN)).astype("float32") for j in range(8)]
    expected = [model.predict(x) for x in xs]
    fresh = copy.deepcopy(model)  # nothing prepared: the threads race to prepare and check
    got: list = [None] * 8
    start = threading.Barrier(8)

    def work(j):
        start.wait()
        for _ in range(5):
            got[j] = fresh.predict(xs[j])

    threads = [threading.Thread(target=work, args=(j,)) for j in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ checks once per configuration


def test_a_new_configuration_is_checked_after_a_good_call():
    layer, x = _layer_and_x()
    layer.forward(x, need_cache=False)
    with pytest.raises(ValueError, match="x must have shape"):
        layer.forward(x[:, :, :2], need_cache=False)
    with pytest.raises(TypeError, match="x"):
        layer.forward(x.astype("float32"), need_cache=False)
    with pytest.raises(ValueError, match="lengths"):
        layer.forward(x, lengths=[T + 1] * N, need_cache=False)


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "lengths"), SHAPES[1:2])
def test_inference_of_a_defined_cell_equals_the_cached_forward(
    dtype, layers, bidirectional, batch_first, lengths
):
    pytest.importorskip("sympy")
    from define_cells import cifg
    from xrnn.cells import define

    cell = define("cifg_inference", ("f", "g", "o"), ("h", "c"), cifg, register=False)
    layer = xrnn.CellLayer(cell, IN, H, layers, bidirectional=bidirectional, dtype=dtype, seed=0)
    x = np.random.default_rng(1).standard_normal((T, N, IN)).astype(dtype)
    y, (h, c), _ = layer.forward(x, lengths=lengths)
    for _ in range(2):
        y_inf, (h_inf, c_inf), _ = layer.forward(x, lengths=lengths, need_cache=False)
        for a, b in ((y_inf, y), (h_inf, h), (c_inf, c)):
            _assert_same(a, b, dtype)


def test_a_model_renews_its_layer_after_set_params_of_its_own_arrays_written_in_place():
    model = xrnn.SequenceModel("lstm", IN, H, 2, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((T, N, IN))
    model.predict(x)
    model.params["rnn.weight_hh_l0"][...] *= -1
    model.set_params(model.params)
    _assert_same(model.predict(x), model.forward(x)[0], "float64")


def test_a_model_sees_a_write_in_place_into_its_own_arrays():
    model = xrnn.SequenceModel("lstm", IN, H, 2, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((T, N, IN))
    model.predict(x)
    model.params["rnn.weight_hh_l0"][...] *= -1
    _assert_same(model.predict(x), model.forward(x)[0], "float64")
