"""The CUDA kernels (:mod:`xrnn.backends.cuda`) equal the generic loop, on every cell, dtype and case.

Two ways to run this module, and ``ci/test.sh`` and ``ci/gpu.sh`` each take one:

- ``NUMBA_ENABLE_CUDASIM=1 pytest tests/test_cuda_sim.py``, in a process of its own (the
  variable must be set before numba-cuda is imported): numba-cuda's simulator runs the
  kernels on the CPU, over NumPy arrays, through the same launch code (grid, block
  indexing, gate columns, strides) as on a GPU, with few threads per block so that every
  launch spans several blocks and a partial last one;
- on a machine with a GPU and CuPy, the same tests on CuPy arrays and real kernels.

Anywhere else the module is skipped as a whole (the main test run has neither). Every
comparison runs one layer twice on the same inputs, once on :class:`CudaOps` and once on
the generic :class:`~xrnn.engine.ops.Ops`, with pre-activations up to ``|z| = 1e4``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if SIMULATED:  # numba-cuda must be there: an ImportError fails the run, it does not skip it
    from array_api_compat import numpy as XP
    from numba import cuda

    assert cuda.simulator_init is not None  # the simulator, not a GPU
    THREADS = [7]  # N*H = 15 elements: three blocks, the last one partial
else:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no GPU")
        import numba.cuda  # noqa: F401
    except Exception as exc:  # noqa: BLE001  (no CuPy, no GPU, no numba-cuda: not this machine)
        pytest.skip(
            f"needs NUMBA_ENABLE_CUDASIM=1 (ci/test.sh runs it so) or a GPU with CuPy and numba-cuda: {exc}",
            allow_module_level=True,
        )
    from array_api_compat import cupy as XP

    THREADS = [7, 256]

import xrnn  # noqa: E402
from helpers import assert_close, make_layer, to_numpy  # noqa: E402
from xrnn import classic  # noqa: E402
from xrnn.backends import registry  # noqa: E402
from xrnn.backends.cuda import CudaOps  # noqa: E402
from xrnn.cells import CELLS, GRU_CELL, LSTM_CELL, RNN_RELU, RNN_TANH  # noqa: E402
from xrnn.engine.ops import Ops  # noqa: E402
from xrnn.engine.scan import Weights, scan  # noqa: E402

GENERIC = Ops(XP)
T, N, IN, H = 5, 3, 2, 5
LENGTHS = [5, 2, 1]


@pytest.fixture(params=THREADS, ids=lambda t: f"threads{t}")
def ops(request):
    """The CUDA ``Ops`` under test."""
    return CudaOps(XP, threads=request.param)


def _use(monkeypatch, ops: Ops) -> None:
    monkeypatch.setattr(registry, "ops_for", lambda xp, dtype: ops)


def _array(a: np.ndarray, dtype: str):
    return XP.asarray(np.asarray(a, dtype=dtype))


def _inputs(dtype: str, extreme: bool):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, IN))
    if extreme:  # rows and steps far into saturation: |z| up to about 1e4
        x[:, 1, :] *= 3e3
        x[2:4, 2, :] *= -3e3
    return _array(x, dtype), _array(rng.standard_normal((T, N, 2 * H)), dtype)


def _layer(kind: str, dtype: str, **kwargs):
    layer = make_layer(kind, input_size=IN, hidden_size=H, dtype=dtype, seed=1, xp="numpy", **kwargs)
    layer.params = {k: _array(v, dtype) for k, v in layer.params.items()}
    return layer


def _run(layer, x, dy, lengths, ops, monkeypatch, **forward):
    _use(monkeypatch, ops)
    y, state, cache = layer.forward(x, lengths=lengths, **forward)
    dx, dstate, grads = layer.backward(cache, dy, dstate=state)
    states = state if isinstance(state, tuple) else (state,)
    dstates = dstate if isinstance(dstate, tuple) else (dstate,)
    return {
        "y": y,
        "dx": dx,
        **dict(enumerate(states)),
        **{f"d{k}": v for k, v in enumerate(dstates)},
        **grads,
    }


def _assert_same(fast, generic, dtype):
    for key, expected in generic.items():
        assert np.all(np.isfinite(to_numpy(fast[key]))), key
        assert_close(fast[key], expected, xp=XP, dtype=dtype)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_cuda_kernels_equal_the_generic_loop(kind, dtype, extreme, lengths, ops, monkeypatch):
    # both directions: the reverse one runs each sequence from its own last step
    layer = _layer(kind, dtype, bidirectional=True)
    x, dy = _inputs(dtype, extreme)
    fast = _run(layer, x, dy, lengths, ops, monkeypatch)
    _assert_same(fast, _run(layer, x, dy, lengths, GENERIC, monkeypatch), dtype)


def test_cuda_kernels_equal_the_generic_loop_from_the_final_state_alone(kind, dtype, ops, monkeypatch):
    # no dy: the gradient enters through the final state and is carried past each length
    layer = _layer(kind, dtype, bidirectional=True)
    x, _ = _inputs(dtype, extreme=False)
    fast = _run(layer, x, None, LENGTHS, ops, monkeypatch)
    _assert_same(fast, _run(layer, x, None, LENGTHS, GENERIC, monkeypatch), dtype)


def test_cuda_kernels_equal_the_generic_loop_from_a_given_initial_state(kind, dtype, ops, monkeypatch):
    # h0 (and c0) enter the first step's kernel, and their gradients come back from it
    layer = _layer(kind, dtype, bidirectional=True)
    x, dy = _inputs(dtype, extreme=False)
    rng = np.random.default_rng(5)
    parts = tuple(_array(rng.standard_normal((2, N, H)), dtype) for _ in range(2 if kind == "lstm" else 1))
    state = parts if kind == "lstm" else parts[0]
    fast = _run(layer, x, dy, LENGTHS, ops, monkeypatch, state=state)
    _assert_same(fast, _run(layer, x, dy, LENGTHS, GENERIC, monkeypatch, state=state), dtype)


def test_cuda_kernels_equal_the_generic_loop_in_checkpoint_segments(kind, ops, monkeypatch):
    # segments of 2 steps: a sequence may have no step at all inside a segment (length 0)
    layer = _layer(kind, "float64")
    x, dy = _inputs("float64", extreme=False)
    dy = dy[..., :H]
    fast = _run(layer, x, dy, LENGTHS, ops, monkeypatch, checkpoint=2)
    _assert_same(fast, _run(layer, x, dy, LENGTHS, GENERIC, monkeypatch, checkpoint=2), "float64")


def test_steps_of_the_cuda_forward_and_the_generic_one_feed_either_backward(kind, dtype, ops, monkeypatch):
    layer = _layer(kind, dtype)
    x, dy = _inputs(dtype, extreme=False)
    dy = dy[..., :H]
    results = []
    for forward, backward in [(ops, GENERIC), (GENERIC, ops), (GENERIC, GENERIC)]:
        _use(monkeypatch, forward)
        _, _, cache = layer.forward(x, lengths=LENGTHS)
        _use(monkeypatch, backward)
        results.append(layer.backward(cache, dy))
    for dx, _, grads in results[:2]:
        assert_close(dx, results[2][0], xp=XP, dtype=dtype)
        for key, value in grads.items():
            assert_close(value, results[2][2][key], xp=XP, dtype=dtype)


def test_cuda_steps_are_the_cells_own_step_caches(kind, dtype, ops, monkeypatch):
    layer = _layer(kind, dtype)
    x, _ = _inputs(dtype, extreme=True)
    _use(monkeypatch, ops)
    fast = layer.forward(x)[2].scans[0].steps
    _use(monkeypatch, GENERIC)
    generic = layer.forward(x)[2].scans[0].steps
    assert len(fast) == len(generic) == T

    def fields(step):  # the RNN's cache is h itself, the others' a NamedTuple of arrays
        return tuple(step) if isinstance(step, tuple) else (step,)

    for t in [*range(T), -1]:
        assert type(fast[t]) is type(generic[t])
        for got, expected in zip(fields(fast[t]), fields(generic[t]), strict=True):
            assert_close(got, expected, xp=XP, dtype=dtype)
    with pytest.raises(IndexError):
        fast[T]


@pytest.mark.parametrize("cell", [RNN_TANH, RNN_RELU, LSTM_CELL, GRU_CELL], ids=lambda c: c.name)
def test_cuda_kernels_add_a_recurrent_bias_given_apart(cell, dtype, ops):
    # the scan folds b_hh into b_x where the cell allows; given apart, the kernels must add it
    rng = np.random.default_rng(9)
    gates = cell.n_gates * H
    gx = _array(rng.standard_normal((T, N, gates)) * np.array([1, 1e4, -1e4])[None, :, None], dtype)
    w_hh_t = _array(rng.standard_normal((H, gates)), dtype)
    b_h = _array(rng.standard_normal(gates), dtype)
    state = tuple(_array(rng.standard_normal((N, H)), dtype) for _ in range(cell.n_states))
    y, _, _ = ops.forward(cell, gx, w_hh_t, (None, b_h), state, None)
    y_ref, _, _ = GENERIC.forward(cell, gx, w_hh_t, (None, b_h), state, None)
    assert_close(y, y_ref, xp=XP, dtype=dtype)


def test_the_classic_api_is_the_same_on_cuda_kernels(dtype, ops, monkeypatch):
    rng = np.random.default_rng(4)
    n_x, n_a, m, t_x = 3, 4, 3, 4
    p = {f"W{g}": rng.standard_normal((n_a, n_a + n_x)) for g in "fico"}
    p |= {f"b{g}": rng.standard_normal((n_a, 1)) for g in "fico"}
    p |= {"Wy": rng.standard_normal((2, n_a)), "by": rng.standard_normal((2, 1))}
    p = {k: _array(v, dtype) for k, v in p.items()}
    x, a0 = _array(rng.standard_normal((n_x, m, t_x)), dtype), _array(rng.standard_normal((n_a, m)), dtype)
    da = _array(rng.standard_normal((n_a, m, t_x)), dtype)
    outs = []
    for each in (ops, GENERIC):
        _use(monkeypatch, each)
        a, y, c, caches = classic.lstm_forward(x, a0, p)
        outs.append((a, y, c, classic.lstm_backward(da, caches)))
    for got, expected in zip(outs[0][:3], outs[1][:3]):
        assert_close(got, expected, xp=XP, dtype=dtype)
    for key, expected in outs[1][3].items():
        assert_close(outs[0][3][key], expected, xp=XP, dtype=dtype)


@pytest.mark.parametrize("cell", [RNN_TANH, LSTM_CELL, GRU_CELL], ids=lambda c: c.name)
def test_cuda_ops_refuse_weights_that_do_not_fit_before_launching(cell, ops, monkeypatch):
    # the kernels index without bounds checks: a wrong size must stop them, not be read past
    _use(monkeypatch, ops)
    gates = cell.n_gates * H
    x = XP.ones((T, N, IN), dtype=XP.float32)
    state = tuple(XP.zeros((N, H), dtype=XP.float32) for _ in range(cell.n_states))
    for w_hh, b_hh in [((gates, H + 2), (gates,)), ((gates, H), (gates + 1,))]:
        weights = Weights(
            XP.ones((gates, IN), dtype=XP.float32),
            XP.ones(w_hh, dtype=XP.float32),
            None,
            XP.ones(b_hh, dtype=XP.float32),
        )
        with pytest.raises(ValueError, match=r"must have shape"):
            scan(cell, x, state, weights, ops=ops, xp=XP)


def test_cuda_ops_leave_other_cells_and_dtypes_to_the_generic_loop(ops):
    renamed = xrnn.cells.Cell("lstm_variant", 4, 2, True, LSTM_CELL.step, LSTM_CELL.step_backward)
    rng = np.random.default_rng(0)
    gx = _array(rng.standard_normal((T, N, 4 * H)), "float64")
    w_hh_t = _array(rng.standard_normal((H, 4 * H)), "float64")
    for cell, dtype in [(renamed, XP.float64), (LSTM_CELL, XP.float16)]:
        state = (XP.zeros((N, H), dtype=dtype),) * 2
        args = (XP.astype(gx, dtype), XP.astype(w_hh_t, dtype), (None, None), state, None)
        _, _, steps = ops.forward(cell, *args)
        assert isinstance(steps, list) and len(steps) == T  # the generic loop's steps


def test_cuda_ops_take_a_block_size_within_cuda_limits():
    for bad in (0, 1025, 2.5, True):
        with pytest.raises(ValueError, match="threads must be an int in 1..1024"):
            CudaOps(XP, threads=bad)


def test_every_cell_has_cuda_kernels():
    from xrnn.backends.cuda.layout import LAYOUTS

    # a cell that reduces over rows runs the row kernels built from its RowStep (backends/cuda/rows.py)
    by_element = {name for name, cell in CELLS.items() if cell.row_step is None}
    assert set(LAYOUTS) == by_element
    assert {name for name, cell in CELLS.items() if cell.row_step is not None} == {
        "layernorm_lstm",
        "layernorm_gru",
    }


def _states(state):
    return state if isinstance(state, tuple) else (state,)


#: The cells beyond torch.nn, as layer constructors on NumPy (the simulator's arrays).
BEYOND_TORCH = {
    "gru_reset_before": lambda **kw: xrnn.GRU(IN, H, reset_after=False, xp="numpy", **kw),
    "lstm_peephole": lambda **kw: xrnn.LSTM(IN, H, peepholes=True, xp="numpy", **kw),
    "indrnn_tanh": lambda **kw: xrnn.IndRNN(IN, H, xp="numpy", **kw),
    "indrnn_relu": lambda **kw: xrnn.IndRNN(IN, H, nonlinearity="relu", xp="numpy", **kw),
    "layernorm_lstm": lambda **kw: xrnn.LayerNormLSTM(IN, H, xp="numpy", **kw),
    "layernorm_gru": lambda **kw: xrnn.LayerNormGRU(IN, H, xp="numpy", **kw),
}


def _beyond(cell: str, dtype: str, **kwargs):
    layer = BEYOND_TORCH[cell](dtype=dtype, seed=1, **kwargs)
    layer.params = {k: _array(v, dtype) for k, v in layer.params.items()}
    return layer


@pytest.mark.parametrize("cell", list(BEYOND_TORCH))
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_cuda_kernels_equal_the_generic_loop_on_the_cells_beyond_torch(
    cell, dtype, extreme, lengths, ops, monkeypatch
):
    layer = _beyond(cell, dtype, bidirectional=True)
    x, dy = _inputs(dtype, extreme)
    fast = _run(layer, x, dy, lengths, ops, monkeypatch)
    _assert_same(fast, _run(layer, x, dy, lengths, GENERIC, monkeypatch), dtype)


@pytest.mark.parametrize("cell", list(BEYOND_TORCH))
def test_cuda_steps_and_generic_steps_feed_either_backward_on_the_cells_beyond_torch(cell, ops, monkeypatch):
    layer = _beyond(cell, "float64")
    x, dy = _inputs("float64", False)
    h0 = _array(np.random.default_rng(5).standard_normal((1, N, H)), "float64")
    results = []
    for forward_ops, backward_ops in [(ops, GENERIC), (GENERIC, ops), (ops, ops)]:
        _use(monkeypatch, forward_ops)
        y, state, cache = layer.forward(x, h0 if layer._cell.n_states == 1 else (h0, -h0), lengths=LENGTHS)
        _use(monkeypatch, backward_ops)
        results.append(layer.backward(cache, dy[:, :, :H], dstate=state))
    for dx, dstate, grads in results[1:]:
        assert_close(dx, results[0][0], dtype="float64")
        for got, expected in zip(_states(dstate), _states(results[0][1]), strict=True):
            assert_close(got, expected, dtype="float64")
        for key, value in grads.items():
            assert_close(value, results[0][2][key], dtype="float64")


def _library(name: str):
    """``(namespace, views class, from NumPy)`` of a bridged library, or a skip where it is missing."""
    pytest.importorskip(name)
    from xrnn._util.namespaces import resolve_namespace
    from xrnn.backends.bridges import JaxViews, TorchViews

    if name == "torch":
        import torch

        return resolve_namespace("torch"), TorchViews, torch.from_numpy
    import jax.numpy as jnp

    return resolve_namespace("jax"), JaxViews, jnp.asarray


def _gpu_libraries() -> list[str]:
    """The libraries whose GPU arrays this machine has: torch with CUDA, JAX with a GPU."""
    found = []
    try:
        import torch

        if torch.cuda.is_available():
            found.append("torch")
    except ImportError:
        pass
    try:
        import jax

        if jax.devices()[0].platform == "gpu":
            found.append("jax")
    except Exception:  # noqa: BLE001  (no JAX, or JAX without a GPU plugin: nothing to bridge)
        pass
    return found


def _to_gpu(library: str, a: np.ndarray):
    if library == "torch":
        import torch

        return torch.from_numpy(a).to("cuda")
    import jax

    return jax.device_put(a, jax.devices("gpu")[0])


# The bridge's test is defined only where it runs (ci/test.sh and ci/gpu.sh refuse skips): in the
# simulator, through a bridge of CPU arrays; on a GPU, the registry's own bridge of GPU arrays.
if SIMULATED:

    @pytest.mark.parametrize("library", ["torch", "jax"])
    def test_the_bridge_runs_another_librarys_arrays_on_the_cuda_kernels(
        library, kind, dtype, ops, monkeypatch
    ):
        # the simulator's arrays are NumPy's: torch CPU tensors and JAX CPU arrays reach the kernels
        # through the same bridge (views, routes, steps, results as the caller's kind) that hands
        # torch CUDA tensors and JAX GPU arrays to CuPy; what the simulator cannot show (CuPy's
        # DLPack import, the caller's stream) runs on a GPU in the test below (ci/gpu.sh)
        from xrnn.backends.bridges import Bridge, Route

        lxp, views, from_numpy = _library(library)
        bridge = Bridge(lxp, {"cpu": Route(views("cpu"), lambda: ops)}, Ops(lxp))
        layer = _layer(kind, dtype, bidirectional=True)
        x, dy = _inputs(dtype, extreme=True)
        generic = _run(layer, x, dy, LENGTHS, GENERIC, monkeypatch)
        layer.params = {k: from_numpy(to_numpy(v)) for k, v in layer.params.items()}
        fast = _run(layer, from_numpy(x), from_numpy(dy), LENGTHS, bridge, monkeypatch)
        for key, expected in generic.items():
            assert_close(fast[key], expected, xp=lxp, dtype=dtype)
        steps = layer.forward(from_numpy(x))[2].scans[0].steps
        assert type(steps.steps).__name__ == "CudaSteps"  # the kernels ran, not the fallback

else:

    @pytest.mark.parametrize("library", _gpu_libraries())
    def test_the_registrys_bridge_runs_gpu_arrays_of_torch_and_jax_on_the_cuda_kernels(
        library, kind, dtype, monkeypatch
    ):
        # the registry's own choice (no monkeypatch): CuPy's DLPack import of the caller's arrays,
        # the kernels on the caller's stream, results as the caller's kind on the same device
        from array_api_compat import array_namespace

        from xrnn.backends.bridges import Bridge

        layer = _layer(kind, dtype, bidirectional=True)
        x, dy = _inputs(dtype, extreme=True)
        generic = _run(layer, x, dy, LENGTHS, GENERIC, monkeypatch)
        monkeypatch.undo()  # from here on, the registry chooses
        host = {k: to_numpy(v).copy() for k, v in layer.params.items()}
        layer.params = {k: _to_gpu(library, v) for k, v in host.items()}
        x_g, dy_g = _to_gpu(library, to_numpy(x).copy()), _to_gpu(library, to_numpy(dy).copy())
        lxp = array_namespace(x_g)
        assert isinstance(registry.ops_for(lxp, x_g.dtype), Bridge)
        y, state, cache = layer.forward(x_g, lengths=LENGTHS)
        assert type(cache.scans[0].steps.steps).__name__ == "CudaSteps"  # the kernels ran, not the fallback
        dx, dstate, grads = layer.backward(cache, dy_g, dstate=state)
        states = state if isinstance(state, tuple) else (state,)
        dstates = dstate if isinstance(dstate, tuple) else (dstate,)
        fast = {"y": y, "dx": dx, **dict(enumerate(states)), **{f"d{k}": v for k, v in enumerate(dstates)}}
        fast |= grads
        assert set(fast) == set(generic)
        for key, expected in generic.items():
            assert "cpu" not in str(fast[key].device).lower(), key  # on the caller's GPU, not the host
            assert_close(fast[key], expected, xp=lxp, dtype=dtype)
        for key, value in host.items():  # no input written
            np.testing.assert_array_equal(to_numpy(layer.params[key]), value)
        np.testing.assert_array_equal(to_numpy(x_g), to_numpy(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_kernels_of_a_defined_cell_equal_its_array_step(dtype):
    pytest.importorskip("sympy")
    from define_cells import cifg
    from xrnn.backends.cuda.defined import elementwise_kernels
    from xrnn.cells.definition import define

    cell = define("cifg_cuda", ("f", "g", "o"), ("h", "c"), cifg, register=False)
    rng = np.random.default_rng(0)
    host = [rng.standard_normal((3, 5)).astype(dtype) for _ in range(len(cell.inputs) + cell.n_states)]
    d, inputs = host[: cell.n_states], host[cell.n_states :]
    forward, backward = elementwise_kernels(cell, dtype)
    gx = np.concatenate(inputs[: cell.n_gates], axis=1)
    new, cache = cell.step(gx, np.zeros_like(gx), tuple(inputs[cell.n_gates :]), xp=np)
    dgx, _, direct = cell.step_backward(tuple(d), cache, xp=np)
    got = forward(XP, *(XP.asarray(a) for a in inputs))
    grads = backward(XP, *(XP.asarray(a) for a in host))
    for a, b in zip(got, new):
        assert_close(to_numpy(a), b, dtype=dtype)
    assert_close(np.concatenate([to_numpy(g) for g in grads[: cell.n_gates]], axis=1), dgx, dtype=dtype)
    assert_close(to_numpy(grads[-1]), direct[-1], dtype=dtype)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("defined", ["gru", "cifg"])
def test_cuda_ops_run_a_defined_cell_as_the_generic_loop_does(defined, dtype, lengths, ops, monkeypatch):
    pytest.importorskip("sympy")
    from define_cells import cifg, gru
    from xrnn.cells.definition import define
    from xrnn.nn.cell_layer import CellLayer

    cell = {
        "gru": lambda: define("gru_cuda_ops", ("r", "z", "n"), ("h",), gru, separate=("n",), register=False),
        "cifg": lambda: define("cifg_cuda_ops", ("f", "g", "o"), ("h", "c"), cifg, register=False),
    }[defined]()
    layer = CellLayer(cell, IN, H, bidirectional=True, dtype=dtype, seed=1)
    layer.params = {k: _array(v, dtype) for k, v in layer.params.items()}
    x, dy = _inputs(dtype, extreme=True)
    fast = _run(layer, x, dy, lengths, ops, monkeypatch)
    _assert_same(fast, _run(layer, x, dy, lengths, GENERIC, monkeypatch), dtype)
    _use(monkeypatch, ops)
    steps = layer.forward(x)[2].scans[0].steps
    assert type(steps).__name__ == "DefinedSteps"  # the cell's own kernels ran, not the generic loop
    _use(monkeypatch, GENERIC)
    y, state, cache = layer.forward(x, lengths=lengths)
    _use(monkeypatch, ops)  # the generic loop's steps, on the kernels' backward
    dx, _, grads = layer.backward(cache, dy, dstate=state)
    _assert_same({"dx": dx, **grads}, {k: v for k, v in fast.items() if k == "dx" or k in grads}, dtype)


#: Zoneout on every state part, as layer constructors (the LSTM's and the GRU's kernels take the masks).
ZONED = {
    "lstm": lambda **kw: xrnn.LSTM(IN, H, bidirectional=True, zoneout=(0.3, 0.6), xp="numpy", **kw),
    "gru": lambda **kw: xrnn.GRU(IN, H, bidirectional=True, zoneout=0.4, xp="numpy", **kw),
}


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("cell", list(ZONED))
def test_cuda_kernels_with_zoneout_equal_the_generic_loop(cell, training, dtype, ops, monkeypatch):
    results = []
    for each in (ops, GENERIC):  # two layers of one seed: the same masks
        layer = ZONED[cell](dtype=dtype, seed=1)
        layer.params = {k: _array(v, dtype) for k, v in layer.params.items()}
        layer.train(training)
        x, dy = _inputs(dtype, True)
        results.append(_run(layer, x, dy, LENGTHS, each, monkeypatch))
    _assert_same(*results, dtype)


@pytest.mark.parametrize("cell", list(ZONED))
def test_cuda_steps_and_generic_steps_feed_either_backward_with_zoneout(cell, ops, monkeypatch):
    layer = ZONED[cell](dtype="float64", seed=1)
    layer.params = {k: _array(v, "float64") for k, v in layer.params.items()}
    x, dy = _inputs("float64", False)
    results = []
    for forward_ops, backward_ops in [(ops, GENERIC), (GENERIC, ops), (ops, ops)]:
        layer.generator = np.random.default_rng(4)  # the same masks every time
        _use(monkeypatch, forward_ops)
        y, state, cache = layer.forward(x, lengths=LENGTHS)
        _use(monkeypatch, backward_ops)
        results.append(layer.backward(cache, dy, dstate=state))
    for dx, dstate, grads in results[1:]:
        assert_close(dx, results[0][0], dtype="float64")
        for got, expected in zip(_states(dstate), _states(results[0][1]), strict=True):
            assert_close(got, expected, dtype="float64")
        for key, value in grads.items():
            assert_close(value, results[0][2][key], dtype="float64")
