"""Every backend's :class:`~xrnn.engine.ops.Ops` equals the generic one on the same inputs.

Each comparison runs the same layer twice on the same arrays, once with the generic loop and
once with an :class:`Ops` of :data:`IMPLEMENTATIONS` (the list that every new backend joins), on
random inputs whose pre-activations reach ``|z| = 1e4`` in places (saturated gates; pytest
turns any overflow warning into an error). The arrays are of the implementation's own
namespace (NumPy for Numba, JAX for the ``lax.scan`` one); the generic loop it is compared
with runs on NumPy with the same values (fast, where an eager loop on JAX would dispatch each
operation on its own), except where steps pass between the two, which share a namespace.
"""

from __future__ import annotations

import functools
import inspect
import sys

import numpy as np
import pytest
from array_api_compat import numpy as npx

import xrnn
from conftest import BACKENDS
from helpers import assert_close, make_layer, to_numpy
from xrnn import classic
from xrnn.backends import registry
from xrnn.backends.registry import ops_for
from xrnn.cells import CELLS, GRU_CELL, LSTM_CELL, RNN_TANH
from xrnn.engine.ops import Ops
from xrnn.engine.scan import Weights, scan

try:
    from xrnn.backends import numba as numba_backend
    from xrnn.backends.numba import buffers, kernels, loops, table
except ImportError:  # numba is not installed: the JAX Ops is still tested
    numba_backend = None

needs_numba = pytest.mark.skipif(numba_backend is None, reason="numba is not installed")


def _implementations() -> dict[str, Ops]:
    """Every backend ``Ops`` that runs on this machine, by name: the list new backends join."""
    found: dict[str, Ops] = {}
    if numba_backend is not None:
        found["numba-per-step"] = numba_backend.NumbaOps(npx, compiled=False)
        if loops.blas() is not None:
            found["numba-compiled"] = numba_backend.NumbaOps(npx, compiled=True)
    if "jax" in BACKENDS:  # installed, and not narrowed away by XRNN_BACKEND
        import jax.numpy as jnp

        from xrnn.backends.jax import JaxOps

        found["jax-scan"] = JaxOps(jnp)
    if numba_backend is not None:  # the bridges: other libraries' CPU arrays on the compiled loops
        from xrnn._util.namespaces import resolve_namespace
        from xrnn.backends.bridges import Bridge, JaxViews, Route, TorchViews

        inner = found.get("numba-compiled", found["numba-per-step"])
        for name, views in [("torch", TorchViews), ("jax", JaxViews)]:
            if name in BACKENDS:
                xp = resolve_namespace(name)
                fallback = found["jax-scan"] if name == "jax" else Ops(xp)
                found[f"{name}-bridge"] = Bridge(xp, {"cpu": Route(views("cpu"), lambda: inner)}, fallback)
    return found


IMPLEMENTATIONS = _implementations()
GENERIC = Ops(npx)


@pytest.fixture(params=list(IMPLEMENTATIONS))
def ops(request):
    """Each backend ``Ops`` under test."""
    return IMPLEMENTATIONS[request.param]


@functools.cache
def _generic(xp) -> Ops:
    """The generic ``Ops`` of namespace ``xp``."""
    return Ops(xp)


def _on(ops: Ops, *arrays):
    """NumPy ``arrays`` as arrays of the namespace ``ops`` runs on."""
    return tuple(ops.xp.asarray(a) for a in arrays)


def _use(monkeypatch, ops: Ops) -> None:
    """Run every scan of the test on ``ops``."""
    monkeypatch.setattr(registry, "ops_for", lambda xp, dtype: ops)


T, N, IN, H = 6, 5, 3, 7


def _inputs(dtype: str, extreme: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, IN))
    if extreme:  # some rows and steps far into saturation: |z| up to about 1e4
        x[:, 1, :] *= 3e3
        x[2:4, 3, :] *= -3e3
    return x.astype(dtype), rng.standard_normal((T, N, 2 * H)).astype(dtype)


def _layer(ops: Ops, kind: str, **kwargs):
    """A layer of ``kind`` with its parameters in the namespace of ``ops``."""
    return make_layer(kind, input_size=IN, hidden_size=H, xp=ops.xp, **kwargs)


def _reference(kind: str, **kwargs):
    """The NumPy layer with the same parameters as ``_layer`` (the same seed draws the same values)."""
    return make_layer(kind, input_size=IN, hidden_size=H, xp=npx, **kwargs)


def _run(layer, x, dy, lengths, ops, monkeypatch):
    _use(monkeypatch, ops)
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


def test_every_ops_has_the_signatures_of_the_base():
    public = [name for name, _ in inspect.getmembers(Ops, inspect.isfunction) if not name.startswith("_")]
    assert {"forward", "backward", "project"} <= set(public)
    for implementation in IMPLEMENTATIONS.values():
        for name in public:
            assert inspect.signature(getattr(type(implementation), name)) == inspect.signature(
                getattr(Ops, name)
            ), f"{type(implementation).__name__}.{name}"


@pytest.mark.parametrize("lengths", [None, [6, 2, 1, 5, 6]], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_every_ops_equals_the_generic_one(kind, dtype, extreme, lengths, ops, monkeypatch):
    options = {"num_layers": 2, "bidirectional": True, "dtype": dtype, "seed": 1}
    x, dy = _inputs(dtype, extreme)
    fast = _leaves(_run(_layer(ops, kind, **options), *_on(ops, x, dy), lengths, ops, monkeypatch))
    generic = _leaves(_run(_reference(kind, **options), x, dy, lengths, GENERIC, monkeypatch))
    for key, expected in generic.items():
        assert np.all(np.isfinite(to_numpy(fast[key]))), key
        assert_close(fast[key], expected, xp=ops.xp, dtype=dtype)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 1, 5, 6]], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_every_ops_equals_the_generic_one_with_a_projection(dtype, extreme, lengths, bias, ops, monkeypatch):
    options = {
        "num_layers": 2,
        "bias": bias,
        "bidirectional": True,
        "proj_size": 3,
        "dtype": dtype,
        "seed": 1,
    }
    x, dy = _inputs(dtype, extreme)
    dy = dy[..., :6]  # (T, N, D*P)
    fast = _leaves(_run(_layer(ops, "lstm", **options), *_on(ops, x, dy), lengths, ops, monkeypatch))
    generic = _leaves(_run(_reference("lstm", **options), x, dy, lengths, GENERIC, monkeypatch))
    assert "weight_hr_l1_reverse" in generic
    for key, expected in generic.items():
        assert np.all(np.isfinite(to_numpy(fast[key]))), key
        assert_close(fast[key], expected, xp=ops.xp, dtype=dtype)


def test_steps_of_either_ops_feed_either_backward_with_a_projection(dtype, ops, monkeypatch):
    layer = _layer(ops, "lstm", proj_size=2, dtype=dtype, seed=2)
    x, dy = _on(ops, *_inputs(dtype, extreme=False))
    results = []
    generic = _generic(ops.xp)
    for forward, backward in [(ops, generic), (generic, ops), (generic, generic)]:
        _use(monkeypatch, forward)
        _, _, cache = layer.forward(x, lengths=[6, 2, 1, 5, 6])
        _use(monkeypatch, backward)
        results.append(layer.backward(cache, dy[..., :2]))
    for dx, _, grads in results[:2]:
        assert_close(dx, results[2][0], dtype=dtype)
        for key, value in grads.items():
            assert_close(value, results[2][2][key], dtype=dtype)


def test_steps_of_either_ops_feed_either_backward(kind, dtype, ops, monkeypatch):
    layer = _layer(ops, kind, dtype=dtype, seed=2)
    x, dy = _on(ops, *_inputs(dtype, extreme=False))
    dy = dy[..., :H]
    results = []
    generic = _generic(ops.xp)
    for forward, backward in [(ops, generic), (generic, ops), (generic, generic)]:
        _use(monkeypatch, forward)
        _, _, cache = layer.forward(x)
        _use(monkeypatch, backward)
        results.append(layer.backward(cache, dy))
    for dx, _, grads in results[:2]:
        assert_close(dx, results[2][0], dtype=dtype)
        for key, value in grads.items():
            assert_close(value, results[2][2][key], dtype=dtype)


@functools.cache
def _defined_cells():
    """A cell of one state part with a separate gate, and one of two parts, through ``xrnn.cells.define``."""
    pytest.importorskip("sympy")
    from define_cells import cifg, gru
    from xrnn.cells.definition import define

    return {
        "gru": define("gru_ops", ("r", "z", "n"), ("h",), gru, separate=("n",), register=False),
        "cifg": define("cifg_ops", ("f", "g", "o"), ("h", "c"), cifg, register=False),
    }


@pytest.mark.parametrize("defined", ["gru", "cifg"])
def test_every_ops_runs_a_defined_cell_as_the_generic_one(defined, dtype, ops, monkeypatch):
    from xrnn.nn.cell_layer import CellLayer

    cell = _defined_cells()[defined]
    x, dy = _inputs(dtype, extreme=True)
    layer = CellLayer(cell, IN, H, bidirectional=True, dtype=dtype, xp=npx, seed=2)
    generic = _leaves(_run(layer, x, dy, [6, 2, 1, 5, 6], GENERIC, monkeypatch))
    layer = CellLayer(cell, IN, H, bidirectional=True, dtype=dtype, xp=ops.xp, seed=2)
    fast = _leaves(_run(layer, *_on(ops, x, dy), [6, 2, 1, 5, 6], ops, monkeypatch))
    for key, expected in generic.items():
        assert_close(to_numpy(fast[key]), expected, dtype=dtype)


@pytest.mark.parametrize("defined", ["gru", "cifg"])
def test_steps_of_a_defined_cell_feed_either_backward(defined, ops, monkeypatch):
    from xrnn.nn.cell_layer import CellLayer

    layer = CellLayer(_defined_cells()[defined], IN, H, dtype="float64", xp=ops.xp, seed=2)
    x, dy = _on(ops, *_inputs("float64", extreme=False))
    dy = dy[..., :H]
    results, generic = [], _generic(ops.xp)
    for forward, backward in [(ops, generic), (generic, ops), (generic, generic)]:
        _use(monkeypatch, forward)
        _, _, cache = layer.forward(x, lengths=[6, 2, 1, 5, 6])
        _use(monkeypatch, backward)
        results.append(layer.backward(cache, dy))
    for dx, _, grads in results[:2]:
        assert_close(dx, results[2][0], dtype="float64")
        for key, value in grads.items():
            assert_close(value, results[2][2][key], dtype="float64")


def test_classic_api_is_the_same_on_every_ops(dtype, ops, monkeypatch):
    rng = np.random.default_rng(4)
    n_x, n_a, m, t_x = 3, 5, 4, 6
    p = {f"W{g}": rng.standard_normal((n_a, n_a + n_x)) for g in "fico"}
    p |= {f"b{g}": rng.standard_normal((n_a, 1)) for g in "fico"}
    p |= {"Wy": rng.standard_normal((2, n_a)), "by": rng.standard_normal((2, 1))}
    p = {k: v.astype(dtype) for k, v in p.items()}
    x, a0 = rng.standard_normal((n_x, m, t_x)).astype(dtype), rng.standard_normal((n_a, m)).astype(dtype)
    da = rng.standard_normal((n_a, m, t_x)).astype(dtype)
    outs = []
    for each, arrays in [(ops, _on(ops, x, a0, da, *p.values())), (GENERIC, (x, a0, da, *p.values()))]:
        _use(monkeypatch, each)
        a, y, c, caches = classic.lstm_forward(*arrays[:2], dict(zip(p, arrays[3:])))
        outs.append((a, y, c, classic.lstm_backward(arrays[2], caches)))
    for got, expected in zip(outs[0][:3], outs[1][:3]):
        assert_close(got, expected, dtype=dtype)
    for key, expected in outs[1][3].items():
        assert_close(outs[0][3][key], expected, dtype=dtype)


@needs_numba
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
    kernels.rnn_tanh_forward(z, zeros, zeros[0], zeros[0], tanh)
    # the LSTM kernel with gates i = f = o = z, g = 0 and c_prev = 0 gives i = sigmoid(z)
    out, h = np.empty((6, *z.shape), dtype=dtype), np.empty_like(z)
    wide = np.zeros((1, 4 * z.shape[1]), dtype)
    kernels.lstm_forward(np.concatenate([z, z, zeros, z], axis=1), wide, wide[0], zeros, h, out)
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


@needs_numba
def test_ops_for_gives_numba_to_numpy_floats_only(monkeypatch):
    monkeypatch.delenv("XRNN_NUMBA", raising=False)
    x32 = np.zeros(1, np.float32)
    assert isinstance(ops_for(npx, x32.dtype), numba_backend.NumbaOps)
    assert isinstance(ops_for(npx, np.zeros(1, np.float64).dtype), numba_backend.NumbaOps)
    assert type(ops_for(npx, x32.astype(np.float16).dtype)) is Ops
    assert ops_for(npx, x32.dtype) is ops_for(npx, x32.dtype)  # made once
    monkeypatch.setenv("XRNN_NUMBA", "0")
    assert type(ops_for(npx, x32.dtype)) is Ops
    strict = pytest.importorskip("array_api_strict")
    monkeypatch.delenv("XRNN_NUMBA")
    assert type(ops_for(strict, strict.asarray(x32).dtype)) is Ops


def test_ops_for_gives_jax_arrays_the_scan(monkeypatch):
    # behind the bridge (tests/test_bridges.py) for concrete CPU arrays, and alone when it is off
    jnp = pytest.importorskip("jax.numpy")
    from xrnn.backends.jax import JaxOps

    for dtype in (jnp.float32, jnp.float64):
        assert isinstance(getattr(ops_for(jnp, jnp.zeros(1, dtype).dtype), "fallback", None), JaxOps)
    monkeypatch.setenv("XRNN_BRIDGE", "0")
    for dtype in (jnp.float32, jnp.float64):
        assert isinstance(ops_for(jnp, jnp.zeros(1, dtype).dtype), JaxOps)


@needs_numba
def test_numba_ops_leave_cells_without_kernels_to_the_generic_loop():
    renamed = xrnn.cells.Cell("lstm_variant", 4, 2, True, LSTM_CELL.step, LSTM_CELL.step_backward)
    x, state = np.ones((T, N, IN), np.float64), (np.zeros((N, H)), np.zeros((N, H)))
    rng = np.random.default_rng(0)
    w = Weights(rng.standard_normal((4 * H, IN)), rng.standard_normal((4 * H, H)), None, None)
    for implementation in IMPLEMENTATIONS.values():
        if not isinstance(implementation, numba_backend.NumbaOps):
            continue
        _, _, steps = implementation.forward(
            renamed,
            implementation.project(x, w.w_ih),
            w.w_hh.T.copy(),
            (None, None),
            state,
            None,
        )
        assert isinstance(steps, list) and len(steps) == T


@needs_numba
def test_the_engine_runs_without_numba(monkeypatch):
    import xrnn.backends

    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    for name in [m for m in sys.modules if m.startswith("xrnn.backends.numba")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(xrnn.backends, "numba")
    assert registry.numba_ops.__wrapped__(npx) is None
    monkeypatch.setattr(registry, "_ops", registry._ops.__wrapped__)
    monkeypatch.setattr(registry, "numba_ops", registry.numba_ops.__wrapped__)
    assert type(ops_for(npx, np.zeros(1, np.float32).dtype)) is Ops
    layer = xrnn.GRU(IN, H, seed=0, xp="numpy")
    x, dy = _inputs("float32", extreme=False)
    y, _, cache = layer.forward(x)
    dx, _, _ = layer.backward(cache, dy[..., :H])
    assert y.shape == (T, N, H) and dx.shape == x.shape


@needs_numba
def test_kernels_compile_without_a_disk_cache_where_none_can_be_written(monkeypatch):
    from xrnn.backends.numba import compile as compile_module

    real = compile_module.numba.njit

    def refuse_cache(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kwargs)

    monkeypatch.setattr(compile_module.numba, "njit", refuse_cache)

    def double(a):
        return a * 2.0

    assert compile_module.jit(double)(np.float64(1.5)) == 3.0


@needs_numba
def test_recycled_buffers_are_reused_only_when_nothing_refers_to_them():
    recycler = buffers.Recycler(keep=2)
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


def test_a_kept_cache_survives_later_calls(kind, ops, monkeypatch):
    _use(monkeypatch, ops)
    layer = _layer(ops, kind, seed=5, dtype="float64")
    x, dy = _on(ops, *_inputs("float64", extreme=False))
    dy = dy[..., :H]
    y, _, cache = layer.forward(x)
    y_copy = np.array(to_numpy(y), copy=True)
    expected = layer.backward(cache, dy)
    for k in range(3):  # forward and backward passes that could reuse the buffers of cache
        _, _, other = layer.forward(x * (k + 2))
        layer.backward(other, dy)
    again = layer.backward(cache, dy)
    np.testing.assert_array_equal(to_numpy(y), y_copy)
    np.testing.assert_array_equal(to_numpy(again[0]), to_numpy(expected[0]))
    for key, value in expected[2].items():
        np.testing.assert_array_equal(to_numpy(again[2][key]), to_numpy(value))


@needs_numba
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_compiled_gemm_is_numpys_matmul(dtype_name, beta):
    numba = pytest.importorskip("numba")
    if loops.blas() is None:
        pytest.skip("NumPy's BLAS gemm was not found in this build")

    @numba.njit
    def gemm(address, a, b, beta, c):
        loops.call_gemm(address, a, b, beta, c)

    rng = np.random.default_rng(6)
    a, b, c = (rng.standard_normal(shape).astype(dtype_name) for shape in ((5, 7), (7, 3), (5, 3)))
    expected = a @ b + beta * c
    gemm(loops.blas()[a.dtype], a, b, beta, c)
    assert_close(c, expected, dtype=dtype_name)


def test_every_ops_steps_are_the_cells_own_step_caches(kind, dtype, ops, monkeypatch):
    x = _inputs(dtype, extreme=False)[0]
    _use(monkeypatch, ops)
    fast = _layer(ops, kind, dtype=dtype, seed=7).forward(*_on(ops, x))[2].scans[0].steps
    _use(monkeypatch, GENERIC)
    generic = _reference(kind, dtype=dtype, seed=7).forward(x)[2].scans[0].steps
    assert not isinstance(fast, list) and len(fast) == len(generic) == T  # the backend's own layout

    def fields(step):  # the RNN's cache is h itself, the others' a NamedTuple of arrays
        return tuple(step) if isinstance(step, tuple) else (step,)

    for got, expected in [(fast[t], generic[t]) for t in range(T)] + [(fast[-1], generic[-1])]:
        assert isinstance(got, tuple) == isinstance(expected, tuple)
        assert not isinstance(got, tuple) or type(got) is type(expected)
        for g, e in zip(fields(got), fields(expected), strict=True):
            assert_close(g, e, dtype=dtype)
    assert [type(s) for s in fast[1:3]] == [type(fast[1]), type(fast[2])]
    with pytest.raises(IndexError):
        fast[T]


def test_every_ops_equals_the_generic_one_from_the_final_state_alone(kind, dtype, ops, monkeypatch):
    # no dy: the gradient enters through the final state only, and must be carried past each length
    x = _inputs(dtype, extreme=False)[0]
    results = []
    for each, layer, arrays in [
        (ops, _layer(ops, kind, bidirectional=True, dtype=dtype, seed=8), _on(ops, x)),
        (GENERIC, _reference(kind, bidirectional=True, dtype=dtype, seed=8), (x,)),
    ]:
        _use(monkeypatch, each)
        _, state, cache = layer.forward(*arrays, lengths=[6, 2, 1, 5, 6])
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
def test_every_ops_refuses_weights_that_do_not_fit_before_running(cell, ops, monkeypatch):
    # compiled code has no bounds checks, a traced loop fails deep inside: a wrong size stops first
    _use(monkeypatch, ops)
    gates = cell.n_gates * H
    (x,) = _on(ops, np.ones((T, N, IN), np.float32))
    state = _on(ops, *(np.zeros((N, H), np.float32) for _ in range(cell.n_states)))
    for w_hh, b_hh in [(np.ones((gates, H + 2)), np.ones(gates)), (np.ones((gates, H)), np.ones(gates + 1))]:
        w_ih, w_hh, b_hh = _on(ops, *(a.astype(np.float32) for a in (np.ones((gates, IN)), w_hh, b_hh)))
        weights = Weights(w_ih, w_hh, None, b_hh)
        with pytest.raises(ValueError, match=r"must have shape"):
            scan(cell, x, state, weights, ops=ops, xp=ops.xp)


@needs_numba
def test_the_cell_table_names_every_cell_the_kernels_serve():
    # a cell that reduces over rows runs the loop built from its RowStep (backends/numba/rows.py)
    assert set(table.KERNELS) == {name for name, cell in CELLS.items() if cell.row_step is None}


@pytest.mark.parametrize("cell", [LSTM_CELL, GRU_CELL, RNN_TANH], ids=lambda c: c.name)
def test_every_ops_adds_a_recurrent_bias_given_apart(cell, ops):
    # the scan folds b_hh into b_x where the cell allows; an Ops given it apart must still add it
    rng = np.random.default_rng(9)
    gates = cell.n_gates * H
    gx = rng.standard_normal((T, N, gates))
    w_hh_t = rng.standard_normal((H, gates))
    b_h = rng.standard_normal(gates)
    state = tuple(rng.standard_normal((N, H)) for _ in range(cell.n_states))
    y_ref, _, _ = GENERIC.forward(cell, gx, w_hh_t, (None, b_h), state, None)
    gx, w_hh_t, b_h, *state = _on(ops, gx, w_hh_t, b_h, *state)
    y, _, _ = ops.forward(cell, gx, w_hh_t, (None, b_h), tuple(state), None)
    assert_close(y, y_ref, dtype="float64")


def _states(state):
    return state if isinstance(state, tuple) else (state,)


#: The cells beyond torch.nn, as layer constructors: every Ops runs them as the generic loop does.
BEYOND_TORCH = {
    "gru_reset_before": lambda xp, **kw: xrnn.GRU(IN, H, reset_after=False, xp=xp, **kw),
    "lstm_peephole": lambda xp, **kw: xrnn.LSTM(IN, H, peepholes=True, xp=xp, **kw),
    "indrnn_tanh": lambda xp, **kw: xrnn.IndRNN(IN, H, xp=xp, **kw),
    "indrnn_relu": lambda xp, **kw: xrnn.IndRNN(IN, H, nonlinearity="relu", xp=xp, **kw),
    "layernorm_lstm": lambda xp, **kw: xrnn.LayerNormLSTM(IN, H, xp=xp, **kw),
    "layernorm_gru": lambda xp, **kw: xrnn.LayerNormGRU(IN, H, xp=xp, **kw),
}


@pytest.mark.parametrize("cell", list(BEYOND_TORCH))
@pytest.mark.parametrize("lengths", [None, [6, 2, 1, 5, 6]], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_every_ops_equals_the_generic_one_on_the_cells_beyond_torch(
    cell, dtype, extreme, lengths, ops, monkeypatch
):
    options = {"num_layers": 2, "bidirectional": True, "dtype": dtype, "seed": 1}
    x, dy = _inputs(dtype, extreme)
    layer = BEYOND_TORCH[cell](ops.xp, **options)
    fast = _leaves(_run(layer, *_on(ops, x, dy), lengths, ops, monkeypatch))
    generic = _leaves(_run(BEYOND_TORCH[cell](npx, **options), x, dy, lengths, GENERIC, monkeypatch))
    for key, expected in generic.items():
        assert np.all(np.isfinite(to_numpy(fast[key]))), key
        assert_close(fast[key], expected, xp=ops.xp, dtype=dtype)


@needs_numba
@pytest.mark.parametrize("cell", list(BEYOND_TORCH))
def test_steps_of_either_ops_feed_either_backward_on_the_cells_beyond_torch(cell, monkeypatch):
    compiled = IMPLEMENTATIONS.get("numba-compiled")
    if compiled is None:
        pytest.skip("NumPy's BLAS gemm was not found: there is no compiled loop")
    x, dy = _inputs("float64", False)
    layer = BEYOND_TORCH[cell](npx, dtype="float64", seed=2)
    results = []
    for forward_ops, backward_ops in [(compiled, GENERIC), (GENERIC, compiled), (compiled, compiled)]:
        _use(monkeypatch, forward_ops)
        y, state, cache = layer.forward(x, lengths=[6, 2, 1, 5, 6])
        _use(monkeypatch, backward_ops)
        results.append(layer.backward(cache, dy[:, :, :H], dstate=state))
    for dx, dstate, grads in results[1:]:
        assert_close(dx, results[0][0], dtype="float64")
        for got, expected in zip(_states(dstate), _states(results[0][1]), strict=True):
            assert_close(got, expected, dtype="float64")
        for key, value in grads.items():
            assert_close(value, results[0][2][key], dtype="float64")


#: Zoneout on every state part: every Ops runs the masks as the generic loop does.
ZONED = {
    "lstm": lambda xp, **kw: xrnn.LSTM(IN, H, zoneout=(0.3, 0.6), xp=xp, **kw),
    "gru": lambda xp, **kw: xrnn.GRU(IN, H, zoneout=0.4, xp=xp, **kw),
}


@pytest.mark.parametrize(  # each mode in one dtype: the suite stays short
    ("training", "precision"), [(True, "float32"), (False, "float64")], ids=["training", "evaluation"]
)
@pytest.mark.parametrize("cell", list(ZONED))
def test_every_ops_equals_the_generic_one_with_zoneout(cell, training, precision, ops, monkeypatch):
    # two layers of the same seed draw the same masks (training) or use p itself (evaluation)
    dtype = precision
    options = {"num_layers": 2, "bidirectional": True, "dtype": dtype, "seed": 1}
    x, dy = _inputs(dtype, extreme=True)
    layers = [ZONED[cell](ops.xp, **options), ZONED[cell](npx, **options)]
    for layer in layers:
        layer.train(training)
    fast = _leaves(_run(layers[0], *_on(ops, x, dy), [6, 2, 1, 5, 6], ops, monkeypatch))
    generic = _leaves(_run(layers[1], x, dy, [6, 2, 1, 5, 6], GENERIC, monkeypatch))
    for key, expected in generic.items():
        assert np.all(np.isfinite(to_numpy(fast[key]))), key
        assert_close(fast[key], expected, xp=ops.xp, dtype=dtype)


@needs_numba
@pytest.mark.parametrize("cell", list(ZONED))
def test_steps_of_either_ops_feed_either_backward_with_zoneout(cell, monkeypatch):
    compiled = IMPLEMENTATIONS.get("numba-compiled")
    if compiled is None:
        pytest.skip("NumPy's BLAS gemm was not found: there is no compiled loop")
    x, dy = _inputs("float64", False)
    results = []
    for forward_ops, backward_ops in [(compiled, GENERIC), (GENERIC, compiled), (compiled, compiled)]:
        layer = ZONED[cell](npx, dtype="float64", seed=2)  # the same masks every time
        _use(monkeypatch, forward_ops)
        y, state, cache = layer.forward(x, lengths=[6, 2, 1, 5, 6])
        _use(monkeypatch, backward_ops)
        results.append(layer.backward(cache, dy[:, :, :H], dstate=state))
    for dx, dstate, grads in results[1:]:
        assert_close(dx, results[0][0], dtype="float64")
        for got, expected in zip(_states(dstate), _states(results[0][1]), strict=True):
            assert_close(got, expected, dtype="float64")
        for key, value in grads.items():
            assert_close(value, results[0][2][key], dtype="float64")
