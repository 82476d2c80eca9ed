"""The bridges (:mod:`xrnn.backends.bridges`): torch and JAX CPU arrays on the compiled loops, by views.

tests/test_ops.py holds every bridge equal to the generic loop; here, what a bridge promises
besides: the registry chooses it, the caller's arrays are read and never written, the
results are the caller's kind on the backend's own memory, and arrays the bridge must not
take (autograd-recorded tensors, JAX tracers) run the namespace's own loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BACKENDS
from helpers import assert_close, to_numpy
from xrnn._util.namespaces import resolve_namespace
from xrnn.backends import registry
from xrnn.backends.bridges import Bridge, BridgedSteps
from xrnn.cells import CELLS
from xrnn.engine.ops import Ops

pytest.importorskip("numba")
BRIDGED = [name for name in ("torch", "jax") if name in BACKENDS]
pytestmark = pytest.mark.skipif(not BRIDGED, reason="neither torch nor JAX is under test")
T, N, H = 5, 3, 4


@pytest.fixture(params=BRIDGED)
def bxp(request):
    """The namespace of each bridged library under test."""
    return resolve_namespace(request.param)


def _bridge(xp, dtype: str) -> Bridge:
    ops = registry.ops_for(xp, getattr(xp, dtype))
    assert isinstance(ops, Bridge), repr(ops)
    return ops


def _arrays(cell, xp, dtype: str, seed: int = 0):
    """``gx (T, N, G*H)``, ``w_hh_t (H, G*H)`` (a diagonal cell's ``(G*H,)``), biases ``(G*H,)``, a state."""
    rng = np.random.default_rng(seed)
    width = cell.n_gates * H
    recurrent = (width,) if cell.diagonal else (H, width)
    host = [rng.standard_normal(shape).astype(dtype) for shape in ((T, N, width), recurrent, (width,))]
    states = [rng.standard_normal((N, H)).astype(dtype) for _ in range(cell.n_states)]
    gx, w_hh_t, b = (xp.asarray(a) for a in host)
    return gx, w_hh_t, (b, None), tuple(xp.asarray(s) for s in states)


def _vectors(cell, xp, dtype: str) -> dict:
    """A cell's per-unit vectors (``Cell.vectors``: the peepholes) as the loops take them, or nothing."""
    if not cell.vectors:
        return {}
    size = sum(blocks for _, blocks in cell.vectors) * H
    return {"vectors": xp.asarray(np.random.default_rng(9).standard_normal(size).astype(dtype))}


def _pointer(a) -> int:
    return a.data_ptr() if hasattr(a, "data_ptr") else a.unsafe_buffer_pointer()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_registry_gives_torch_and_jax_floats_a_bridge_over_numba(bxp, dtype):
    ops = _bridge(bxp, dtype)
    assert type(ops.routes["cpu"].inner).__name__ == "NumbaOps"
    assert ops is registry.ops_for(bxp, getattr(bxp, dtype))  # made once


def test_the_registry_gives_other_dtypes_and_a_switched_off_bridge_the_namespaces_own_ops(bxp, monkeypatch):
    assert not isinstance(registry.ops_for(bxp, bxp.float16), Bridge)
    monkeypatch.setenv("XRNN_BRIDGE", "0")
    assert not isinstance(registry.ops_for(bxp, bxp.float32), Bridge)


def test_without_numba_the_cpu_route_is_closed(bxp, monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "0")
    ops = registry.ops_for(bxp, bxp.float32)
    assert "cpu" not in getattr(ops, "routes", {})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(CELLS.values()), ids=lambda c: c.name)
def test_a_bridge_writes_no_input_and_returns_the_callers_kind(cell, bxp, dtype):
    ops = _bridge(bxp, dtype)
    gx, w_hh_t, biases, state0 = _arrays(cell, bxp, dtype)
    before = [to_numpy(a).copy() for a in (gx, w_hh_t, biases[0], *state0)]
    given = _vectors(cell, bxp, dtype)
    y, state, steps = ops.forward(cell, gx, w_hh_t, biases, state0, None, **given)
    dy = bxp.ones_like(y)
    dstate = tuple(bxp.ones_like(s) for s in state)
    w_hh = bxp.asarray(np.ascontiguousarray(to_numpy(w_hh_t).T))
    kept = [to_numpy(a).copy() for a in (dy, *dstate, w_hh)]
    dgx, dgh, dstate0 = ops.backward(cell, steps, dy, dstate, w_hh, None, **given)
    for was, now in zip(before + kept, (gx, w_hh_t, biases[0], *state0, dy, *dstate, w_hh), strict=True):
        np.testing.assert_array_equal(to_numpy(now), was)
    assert isinstance(steps, BridgedSteps)
    for a in (y, *state, dgx, *dstate0, *([] if dgh is None else [dgh])):
        assert type(a) is type(gx) and a.dtype == gx.dtype
        assert str(a.device).lower().startswith("cpu") or "cpu" in str(a.device).lower()


@pytest.mark.parametrize("cell", list(CELLS.values()), ids=lambda c: c.name)
def test_a_bridge_equals_the_namespaces_own_loop(cell, bxp):
    ops = _bridge(bxp, "float64")
    arrays = _arrays(cell, bxp, "float64", seed=1)
    lengths = bxp.asarray([5, 2, 1])
    given = _vectors(cell, bxp, "float64")
    y, state, steps = ops.forward(cell, *arrays, lengths, **given)
    y_ref, state_ref, steps_ref = ops.fallback.forward(cell, *arrays, lengths, **given)
    for got, expected in zip((y, *state), (y_ref, *state_ref), strict=True):
        assert_close(got, expected, dtype="float64")
    w_hh = bxp.asarray(np.ascontiguousarray(to_numpy(arrays[1]).T))
    dy = bxp.asarray(np.random.default_rng(2).standard_normal(tuple(y.shape)))
    got = ops.backward(cell, steps, dy, state, w_hh, lengths, **given)
    expected = ops.fallback.backward(cell, steps_ref, dy, state_ref, w_hh, lengths, **given)
    for g, e in zip((got[0], *got[2]), (expected[0], *expected[2]), strict=True):
        assert_close(g, e, dtype="float64")


def test_a_bridges_outputs_are_views_of_the_kernels_buffers(bxp):
    cell = CELLS["lstm"]
    ops = _bridge(bxp, "float32")
    rng = np.random.default_rng(0)
    t, n, h = 64, 32, 32  # y of 256 KiB: JAX takes small outputs as copies (JaxViews.back)
    gx, w_hh_t, b = (
        bxp.asarray(rng.standard_normal(s).astype("float32")) for s in ((t, n, 4 * h), (h, 4 * h), (4 * h,))
    )
    state0 = tuple(bxp.asarray(np.zeros((n, h), "float32")) for _ in range(2))
    y, _, steps = ops.forward(cell, gx, w_hh_t, (b, None), state0, None)
    assert _pointer(y) == steps.steps.y.ctypes.data  # no copy on the way back


def test_jax_gets_small_unaligned_and_aligned_outputs_back_unchanged_and_aligned():
    jax = pytest.importorskip("jax")
    if "jax" not in BACKENDS:
        pytest.skip("jax is not under test")
    from xrnn.backends.views import JaxViews

    views = JaxViews("cpu")
    raw = np.arange(2**16 + 1, dtype="float32")  # 256 KiB, then the same one element on
    for a in (raw[:16], raw[1:], raw[: 2**16]):
        got = views.back(a)
        assert isinstance(got, jax.Array)
        np.testing.assert_array_equal(np.asarray(got), a)
    assert _pointer(views.back(raw[: 2**16])) % 64 == 0


def test_a_bridge_reads_torch_tensors_in_place():
    torch = pytest.importorskip("torch")
    if "torch" not in BACKENDS:
        pytest.skip("torch is not under test")
    from xrnn.backends.bridges import TorchViews

    t = torch.arange(6.0).reshape(2, 3)
    assert TorchViews("cpu").view(t).ctypes.data == t.data_ptr()
    assert TorchViews("cpu").view(t[:, 1:]).ctypes.data == t[:, 1:].data_ptr()  # strided: still a view


def test_tensors_that_autograd_records_run_the_generic_loop_and_keep_their_graph():
    torch = pytest.importorskip("torch")
    if "torch" not in BACKENDS:
        pytest.skip("torch is not under test")
    txp = resolve_namespace("torch")
    cell = CELLS["gru"]
    ops = _bridge(txp, "float64")
    gx, w_hh_t, biases, state0 = _arrays(cell, txp, "float64")
    gx.requires_grad_(True)
    y, _, steps = ops.forward(cell, gx, w_hh_t, biases, state0, None)
    assert y.grad_fn is not None and not isinstance(steps, BridgedSteps)
    with torch.no_grad():
        y_bridged, _, steps = ops.forward(cell, gx, w_hh_t, biases, state0, None)
    assert isinstance(steps, BridgedSteps)
    assert_close(y_bridged, y.detach(), dtype="float64")


def test_jax_tracers_run_the_scan_under_jit():
    if "jax" not in BACKENDS:
        pytest.skip("JAX is not under test")
    import jax

    jxp = resolve_namespace("jax")
    cell = CELLS["lstm"]
    ops = _bridge(jxp, "float32")
    gx, w_hh_t, biases, state0 = _arrays(cell, jxp, "float32")
    jitted = jax.jit(lambda g: ops.forward(cell, g, w_hh_t, biases, state0, None)[0])
    assert_close(jitted(gx), ops.forward(cell, gx, w_hh_t, biases, state0, None)[0], dtype="float32")


def test_a_bridge_without_routes_is_its_fallback(bxp):
    ops = Bridge(bxp, {}, Ops(bxp))
    cell = CELLS["rnn_tanh"]
    _, _, steps = ops.forward(cell, *_arrays(cell, bxp, "float64"), None)
    assert isinstance(steps, list)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_projection_and_the_gradients_run_on_the_route_in_the_callers_kind(bxp, dtype, monkeypatch):
    ops = _bridge(bxp, dtype)
    inner = ops.routes["cpu"].inner
    monkeypatch.setattr(type(ops.routes["cpu"].views), "worth", lambda self, work: True)  # tiny here
    seen = []
    for name in ("project", "gradients"):
        method = getattr(inner, name)
        monkeypatch.setattr(inner, name, lambda *a, m=method, n=name, **k: seen.append(n) or m(*a, **k))
    t, n, i, h = 3, 2, 3, 2
    rng = np.random.default_rng(3)
    shapes = ((t, n, i), (4 * h, i), (t, n, 4 * h), (n, h), (t, n, h))
    x, w, dg, h0, y = (rng.standard_normal(shape).astype(dtype) for shape in shapes)
    dgs, xs, h0s, ys, ws = (bxp.asarray(a) for a in (dg, x, h0, y, w))
    projected = ops.project(xs, ws)
    got = ops.gradients(CELLS["lstm"], dgs, None, xs, h0s, ys, ws, biases=(True, True))
    assert seen == ["project", "gradients"]
    assert all(type(a) is type(xs) for a in (projected, *got))
    flat, h_prev = dg.reshape(t * n, 4 * h), np.concatenate([h0[None], y[:-1]]).reshape(t * n, h)
    dx = (flat @ w).reshape(t, n, i)
    expected = (flat.T @ x.reshape(t * n, i), flat.T @ h_prev, flat.sum(0), flat.sum(0), dx)
    assert_close(projected, x @ w.T, dtype=dtype)
    for a, b in zip(got, expected):
        assert_close(a, b, dtype=dtype)


def test_torch_products_take_the_route_on_one_thread_or_when_large():
    torch = pytest.importorskip("torch")
    from xrnn.backends.bridges import TorchViews

    views, threads = TorchViews("cpu"), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert views.worth(64 * 64 * 64)
        torch.set_num_threads(2)  # torch's pool and the inner BLAS's would take turns
        assert not views.worth(64 * 64 * 64) and views.worth(2**29)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def two_threads():
    """torch and NumPy's BLAS on two threads for the test, then as they were; ``(torch, blas)``."""
    torch = pytest.importorskip("torch")
    from xrnn.backends.numba.loops import blas_threads

    found = blas_threads()
    if found is None:
        pytest.skip("NumPy's BLAS gives no thread count here")
    get, put = found
    before = torch.get_num_threads(), get()
    torch.set_num_threads(2)
    put(2)
    if get() != 2:
        put(before[1])
        torch.set_num_threads(before[0])
        pytest.skip("NumPy's BLAS cannot run two threads here")
    yield torch, get
    torch.set_num_threads(before[0])
    put(before[1])


def test_a_small_layer_call_on_torch_cpu_tensors_runs_torch_and_blas_on_one_thread(two_threads, monkeypatch):
    torch, blas = two_threads
    import xrnn

    layer = xrnn.LSTM(3, H, xp="torch", seed=0)
    ops = _bridge(resolve_namespace("torch"), "float32")
    seen = []
    for name in ("forward", "backward", "infer"):
        method = getattr(ops, name)
        spy = lambda *a, m=method, **k: seen.append((torch.get_num_threads(), blas())) or m(*a, **k)  # noqa: E731
        monkeypatch.setattr(ops, name, spy)
    x = torch.randn(T, N, 3)
    y, _, cache = layer.forward(x)
    layer.backward(cache, torch.ones_like(y))
    layer.forward(x, need_cache=False)
    assert seen == [(1, 1)] * 3
    assert (torch.get_num_threads(), blas()) == (2, 2)


def test_a_large_layer_call_leaves_the_blas_its_threads(two_threads):
    torch, blas = two_threads
    from xrnn.backends.bridges import TorchViews

    with TorchViews("cpu").running(2**24):
        assert (torch.get_num_threads(), blas()) == (1, 2)
    assert (torch.get_num_threads(), blas()) == (2, 2)


def test_torch_and_blas_get_their_threads_back_when_a_layer_call_raises_inside(two_threads):
    torch, blas = two_threads
    from xrnn.backends.bridges import TorchViews

    with pytest.raises(RuntimeError, match="inside"), TorchViews("cpu").running(1):
        assert (torch.get_num_threads(), blas()) == (1, 1)
        raise RuntimeError("inside")
    assert (torch.get_num_threads(), blas()) == (2, 2)


def test_jax_arrays_and_torch_cuda_tensors_leave_the_threads_as_they_are(two_threads):
    torch, blas = two_threads
    from xrnn.backends.bridges import JaxViews, TorchViews

    for views in (TorchViews("cuda"), JaxViews("cpu")):
        with views.running(1):
            assert (torch.get_num_threads(), blas()) == (2, 2)
