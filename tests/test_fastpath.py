"""The NumPy fast path (fused Numba kernels, :mod:`xrnn._numpy_numba`) equals the generic path.

Every comparison runs the same layer twice on the same NumPy arrays, once with the fused
kernels and once with ``XRNN_NUMBA=0``, on random inputs whose pre-activations reach
``|z| = 1e4`` in places (saturated gates; pytest turns any overflow warning into an error).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import xrnn
from helpers import assert_close
from xrnn import _scan, classic
from xrnn.gru import GRU_CELL
from xrnn.lstm import LSTM_CELL
from xrnn.rnn import RNN_RELU, RNN_TANH

pytest.importorskip("numba")
if os.environ.get("XRNN_BACKEND", "numpy") != "numpy":
    pytest.skip("the fast path is NumPy's; it runs in the numpy leg of the matrix", allow_module_level=True)

from xrnn import _numpy_numba as _numba  # noqa: E402  (needs numba)

CELLS = {
    "rnn_tanh": lambda **kw: xrnn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: xrnn.RNN(nonlinearity="relu", **kw),
    "lstm": lambda **kw: xrnn.LSTM(**kw),
    "gru": lambda **kw: xrnn.GRU(**kw),
}
T, N, IN, H = 6, 5, 3, 7


def _inputs(dtype: str, extreme: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, IN))
    if extreme:  # some rows and steps far into saturation: |z| up to about 1e4
        x[:, 1, :] *= 3e3
        x[2:4, 3, :] *= -3e3
    return x.astype(dtype), rng.standard_normal((T, N, 2 * H)).astype(dtype)


def _run(layer, x, dy, lengths, *, fast: bool, monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "1" if fast else "0")
    y, state, cache = layer.forward(x, lengths=lengths)
    dx, dstate, grads = layer.backward(cache, dy, dstate=state)
    return y, state, dx, dstate, grads


def _leaves(out):
    y, state, dx, dstate, grads = out
    states = state if isinstance(state, tuple) else (state,)
    dstates = dstate if isinstance(dstate, tuple) else (dstate,)
    return {
        "y": y,
        "dx": dx,
        **dict(enumerate(states)),
        **{f"d{k}": v for k, v in enumerate(dstates)},
        **grads,
    }


@pytest.fixture(params=["compiled", "per-step"])
def loop(request, monkeypatch):
    """Either loop of the fast path: compiled with NumPy's BLAS, or the scan's own per step."""
    if request.param == "compiled" and _numba._blas() is None:
        pytest.skip("NumPy's BLAS gemm was not found in this build")
    if request.param == "per-step":
        monkeypatch.setattr(_numba, "_blas", lambda: None)
    return request.param


@pytest.mark.parametrize("lengths", [None, [6, 2, 1, 5, 6]], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_fast_path_equals_generic_path(cell, dtype, extreme, lengths, loop, monkeypatch):
    layer = CELLS[cell](input_size=IN, hidden_size=H, num_layers=2, bidirectional=True, dtype=dtype, seed=1)
    x, dy = _inputs(dtype, extreme)
    fast = _leaves(_run(layer, x, dy, lengths, fast=True, monkeypatch=monkeypatch))
    generic = _leaves(_run(layer, x, dy, lengths, fast=False, monkeypatch=monkeypatch))
    for key, expected in generic.items():
        assert np.all(np.isfinite(fast[key])), key
        assert_close(fast[key], expected, dtype=dtype)


@pytest.mark.parametrize("cell", list(CELLS))
def test_caches_of_either_path_feed_either_backward(cell, dtype, loop, monkeypatch):
    layer = CELLS[cell](input_size=IN, hidden_size=H, dtype=dtype, seed=2)
    x, dy = _inputs(dtype, extreme=False)
    dy = dy[..., :H]
    results = []
    for forward_fast, backward_fast in [(True, False), (False, True), (False, False)]:
        monkeypatch.setenv("XRNN_NUMBA", "1" if forward_fast else "0")
        _, _, cache = layer.forward(x)
        monkeypatch.setenv("XRNN_NUMBA", "1" if backward_fast else "0")
        results.append(layer.backward(cache, dy))
    for dx, _, grads in results[:2]:
        assert_close(dx, results[2][0], dtype=dtype)
        for key, value in grads.items():
            assert_close(value, results[2][2][key], dtype=dtype)


def test_classic_api_is_the_same_on_both_paths(dtype, loop, monkeypatch):
    rng = np.random.default_rng(4)
    n_x, n_a, m, t_x = 3, 5, 4, 6
    p = {f"W{g}": rng.standard_normal((n_a, n_a + n_x)) for g in "fico"}
    p |= {f"b{g}": rng.standard_normal((n_a, 1)) for g in "fico"}
    p |= {"Wy": rng.standard_normal((2, n_a)), "by": rng.standard_normal((2, 1))}
    p = {k: v.astype(dtype) for k, v in p.items()}
    x, a0 = rng.standard_normal((n_x, m, t_x)).astype(dtype), rng.standard_normal((n_a, m)).astype(dtype)
    da = rng.standard_normal((n_a, m, t_x)).astype(dtype)
    outs = []
    for fast in ("1", "0"):
        monkeypatch.setenv("XRNN_NUMBA", fast)
        a, y, c, caches = classic.lstm_forward(x, a0, p)
        outs.append((a, y, c, classic.lstm_backward(da, caches)))
    for got, expected in zip(outs[0][:3], outs[1][:3]):
        assert_close(got, expected, dtype=dtype)
    for key, expected in outs[1][3].items():
        assert_close(outs[0][3][key], expected, dtype=dtype)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_kernel_activations_are_accurate_and_finite_for_any_finite_input(dtype_name):
    dtype = np.dtype(dtype_name)
    big = float(np.finfo(dtype).max)
    z = np.concatenate(
        [
            np.linspace(-40, 40, 4001),
            np.geomspace(1e-30, 1e4, 500),
            -np.geomspace(1e-30, 1e4, 500),
            [0.0, -0.0, 88.0, -88.0, 710.0, -710.0, big, -big, float(np.finfo(dtype).tiny)],
        ]
    )
    z = z[np.abs(z) <= big].astype(dtype)[None, :]  # one batch row, H = len(z)
    zeros = np.zeros_like(z)
    tanh = np.empty_like(z)
    _numba._rnn_tanh_forward(z, zeros, zeros[0], zeros[0], tanh)
    # the LSTM kernel with gates i = f = o = z, g = 0 and c_prev = 0 gives i = sigmoid(z)
    out, h = np.empty((6, *z.shape), dtype=dtype), np.empty_like(z)
    wide = np.zeros((1, 4 * z.shape[1]), dtype)
    _numba._lstm_forward(np.concatenate([z, z, zeros, z], axis=1), wide, wide[0], zeros, h, out)
    sigmoid = out[0]

    z64 = z.astype(np.float64)
    e = np.exp(-np.abs(z64))
    sigmoid_ref = np.where(z64 >= 0, 1 / (1 + e), e / (1 + e))
    eps = float(np.finfo(dtype).eps)
    floor = 2e-38 if dtype == np.float32 else 4e-308  # exp(-|z|) is taken at -87 or -708 below that
    for got, ref in ((tanh, np.tanh(z64)), (sigmoid, sigmoid_ref)):
        assert np.all(np.isfinite(got))
        err = np.abs(got - ref)
        assert np.all(err <= 4 * eps * np.abs(ref) + floor), float(np.max(err / (np.abs(ref) + floor)))


def test_fast_cell_is_chosen_for_numpy_floats_only(monkeypatch):
    x32 = np.zeros((1, 1, 1), dtype=np.float32)
    monkeypatch.delenv("XRNN_NUMBA", raising=False)
    for cell in (RNN_TANH, RNN_RELU, LSTM_CELL, GRU_CELL):
        fast = _scan.fast_cell(cell, x32, xp=np)
        assert fast.step is not cell.step and fast.step_backward is not cell.step_backward
        assert (fast.name, fast.n_gates, fast.n_states, fast.fold_bias) == (
            cell.name,
            cell.n_gates,
            cell.n_states,
            cell.fold_bias,
        )
        assert _scan.fast_cell(cell, x32.astype(np.float16), xp=np) is cell
    monkeypatch.setenv("XRNN_NUMBA", "0")
    assert _scan.fast_cell(LSTM_CELL, x32, xp=np) is LSTM_CELL
    strict = pytest.importorskip("array_api_strict")
    monkeypatch.delenv("XRNN_NUMBA")
    assert _scan.fast_cell(LSTM_CELL, strict.asarray(x32), xp=strict) is LSTM_CELL


def test_the_engine_runs_without_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    monkeypatch.delitem(sys.modules, "xrnn._numpy_numba")
    monkeypatch.delattr(xrnn, "_numpy_numba")
    assert _scan._numba_module.__wrapped__() is None
    monkeypatch.setattr(_scan, "_numba_module", lambda: None)
    layer = xrnn.GRU(IN, H, seed=0)
    x, dy = _inputs("float32", extreme=False)
    y, _, cache = layer.forward(x)
    dx, _, _ = layer.backward(cache, dy[..., :H])
    assert y.shape == (T, N, H) and dx.shape == x.shape


def test_recycled_buffers_are_reused_only_when_nothing_refers_to_them():
    recycler = _numba._Recycler(keep=2)
    a = recycler.empty((3, 4), np.float32)
    b = recycler.empty((3, 4), np.float32)
    assert not np.shares_memory(a, b)
    view = a[1]
    del a
    c = recycler.empty((3, 4), np.float32)  # a's buffer is still referred to through view
    assert not np.shares_memory(c, view) and not np.shares_memory(c, b)
    del view
    d = recycler.empty((2, 5), np.float64)
    assert d.shape == (2, 5) and d.dtype == np.float64 and d.flags.c_contiguous
    recycler.release()
    assert len(recycler.raw) == 3  # b, c and d are in use


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_kept_cache_survives_later_calls(cell, monkeypatch):
    monkeypatch.delenv("XRNN_NUMBA", raising=False)
    layer = CELLS[cell](input_size=IN, hidden_size=H, seed=5, dtype="float64")
    x, dy = _inputs("float64", extreme=False)
    dy = dy[..., :H]
    y, _, cache = layer.forward(x)
    y_copy = y.copy()
    expected = layer.backward(cache, dy)
    for k in range(3):  # forward and backward passes that could reuse the buffers of cache
        _, _, other = layer.forward(x * (k + 2))
        layer.backward(other, dy)
    again = layer.backward(cache, dy)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(again[0], expected[0])
    for key, value in expected[2].items():
        np.testing.assert_array_equal(again[2][key], value)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_compiled_gemm_is_numpys_matmul(dtype_name, beta):
    numba = pytest.importorskip("numba")
    if _numba._blas() is None:
        pytest.skip("NumPy's BLAS gemm was not found in this build")

    @numba.njit
    def gemm(address, a, b, beta, c):
        _numba._gemm(address, a, b, beta, c)

    rng = np.random.default_rng(6)
    a, b, c = (rng.standard_normal(shape).astype(dtype_name) for shape in ((5, 7), (7, 3), (5, 3)))
    expected = a @ b + beta * c
    gemm(_numba._gemm_of(a.dtype), a, b, beta, c)
    assert_close(c, expected, dtype=dtype_name)


@pytest.mark.parametrize("cell", list(CELLS))
def test_compiled_loop_keeps_the_cells_own_step_caches(cell, dtype, monkeypatch):
    if _numba._blas() is None:
        pytest.skip("NumPy's BLAS gemm was not found in this build")
    monkeypatch.delenv("XRNN_NUMBA", raising=False)
    layer = CELLS[cell](input_size=IN, hidden_size=H, dtype=dtype, seed=7)
    x, _ = _inputs(dtype, extreme=False)
    compiled = layer.forward(x)[2].scans[0].steps
    monkeypatch.setattr(_numba, "_blas", lambda: None)
    per_step = layer.forward(x)[2].scans[0].steps
    assert isinstance(compiled, _numba._SequenceSteps) and len(compiled) == len(per_step) == T

    def fields(step):  # the RNN's cache is h itself, the others' a NamedTuple of arrays
        return (step,) if isinstance(step, np.ndarray) else tuple(step)

    for got, expected in [(compiled[t], per_step[t]) for t in range(T)] + [(compiled[-1], per_step[-1])]:
        assert type(got) is type(expected)
        for g, e in zip(fields(got), fields(expected), strict=True):
            assert_close(g, e, dtype=dtype)
    assert [type(s) for s in compiled[1:3]] == [type(s) for s in per_step[1:3]]
    with pytest.raises(IndexError):
        compiled[T]


@pytest.mark.parametrize("cell", list(CELLS))
def test_fast_path_equals_generic_path_from_the_final_state_alone(cell, dtype, loop, monkeypatch):
    # no dy: the gradient enters through the final state only, and must be carried past each length
    layer = CELLS[cell](input_size=IN, hidden_size=H, bidirectional=True, dtype=dtype, seed=8)
    x, _ = _inputs(dtype, extreme=False)
    results = []
    for fast in ("1", "0"):
        monkeypatch.setenv("XRNN_NUMBA", fast)
        _, state, cache = layer.forward(x, lengths=[6, 2, 1, 5, 6])
        results.append(layer.backward(cache, None, dstate=state))
    (dx, dstate, grads), (dx_ref, dstate_ref, grads_ref) = results
    assert_close(dx, dx_ref, dtype=dtype)
    for got, expected in zip(
        *(s if isinstance(s, tuple) else (s,) for s in (dstate, dstate_ref)), strict=True
    ):
        assert_close(got, expected, dtype=dtype)
    for key, expected in grads_ref.items():
        assert_close(grads[key], expected, dtype=dtype)


@pytest.mark.parametrize("cell", [RNN_TANH, LSTM_CELL, GRU_CELL], ids=lambda c: c.name)
def test_compiled_loop_refuses_weights_that_do_not_fit_before_running(cell, monkeypatch):
    # the compiled code has no bounds checks: a wrong size must stop it, not be read past
    if _numba._blas() is None:
        pytest.skip("NumPy's BLAS gemm was not found in this build")
    monkeypatch.delenv("XRNN_NUMBA", raising=False)
    gates = cell.n_gates * H
    x = np.ones((T, N, IN), np.float32)
    state = tuple(np.zeros((N, H), np.float32) for _ in range(cell.n_states))
    for w_hh, b_hh in [(np.ones((gates, H + 2)), np.ones(gates)), (np.ones((gates, H)), np.ones(gates + 1))]:
        weights = _scan.Weights(
            np.ones((gates, IN), np.float32), w_hh.astype(np.float32), None, b_hh.astype(np.float32)
        )
        with pytest.raises(ValueError, match=r"must have shape"):
            _scan.scan(cell, x, state, weights, xp=np)
