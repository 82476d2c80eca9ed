"""Backpropagation through time by recomputation (``checkpoint=``) and inference without a cache.

With ``checkpoint``, forward keeps only the state every ``k`` steps and backward recomputes
one segment at a time. The recurrences run the same operations in the same order, so the
outputs, the states and the gradients of ``x`` and of the initial state are bit for bit
those of ``checkpoint=None``; the weight gradients are the same sums over every step added
segment by segment (a long sequence's gate gradients are never all in memory at once), so
they agree to the last bits of the dtype, not bit for bit. On JAX and torch the matmuls
after the loop (``dx = dG @ W_ih``) may also round differently for a segment's rows than for
all rows at once.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, backend_name, make_layer, to_numpy

T, N, IN, H = 11, 4, 3, 5
LENGTHS = [11, 3, 1, 6]


@pytest.fixture(params=["numba", "generic"])
def numpy_path(request, monkeypatch):
    """Both NumPy paths (the Numba Ops runs segments too); other backends run theirs.

    ``generic`` on JAX is JAX's own Ops (no bridge): a ``lax.scan`` compiled per cell and
    segment length. Segments are the engine's, the same for every cell, so it runs the LSTM
    here (and under ``jax.jit`` in tests/test_interop_jax.py); tests/test_ops.py holds JAX's
    Ops equal to the generic one on every cell.
    """
    given = request.node.callspec.params
    if request.param == "generic" and given.get("xp") == "jax" and given.get("kind", "lstm") != "lstm":
        pytest.skip("JAX's own Ops runs checkpoint segments for the LSTM (see the fixture)")
    monkeypatch.setenv("XRNN_NUMBA", "1" if request.param == "numba" else "0")
    return request.param


def _run(layer, x, dy, lengths, **options):
    y, state, cache = layer.forward(x, lengths=lengths, **options)
    dx, dstate, grads = layer.backward(cache, dy, dstate=state)
    states = state if isinstance(state, tuple) else (state,)
    dstates = dstate if isinstance(dstate, tuple) else (dstate,)
    exact = {"y": y, "dx": dx, **{f"state{j}": s for j, s in enumerate(states)}}
    exact |= {f"dstate{j}": d for j, d in enumerate(dstates)}
    return exact, grads


@pytest.mark.parametrize("checkpoint", [2, "sqrt"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_checkpointed_gradients_equal_those_of_the_full_cache(xp, kind, checkpoint, lengths, numpy_path):
    layer = make_layer(kind, IN, H, num_layers=2, bidirectional=True, xp=xp, dtype="float64", seed=3)
    rng = np.random.default_rng(4)
    x = asarray(xp, rng.standard_normal((T, N, IN)), "float64")
    dy = asarray(xp, rng.standard_normal((T, N, 2 * H)), "float64")
    exact, grads = _run(layer, x, dy, lengths)
    exact_ck, grads_ck = _run(layer, x, dy, lengths, checkpoint=checkpoint)
    for key, value in exact.items():
        if backend_name(xp) in ("numpy", "array_api_strict"):
            np.testing.assert_array_equal(to_numpy(exact_ck[key]), to_numpy(value), err_msg=key)
        else:  # XLA's and torch's matmuls may block a segment's rows otherwise than all T*N rows
            assert_close(exact_ck[key], value, xp=xp, dtype="float64", tol=1e-14)
    for key, value in grads.items():
        assert_close(grads_ck[key], value, xp=xp, dtype="float64", tol=1e-13)


@pytest.mark.parametrize("checkpoint", [1, T, 10 * T])
def test_any_segment_length_gives_the_same_results(kind, checkpoint, numpy_path):
    layer = make_layer(kind, IN, H, xp="numpy", dtype="float32", seed=5)
    rng = np.random.default_rng(6)
    x, dy = (
        rng.standard_normal((T, N, IN)).astype("float32"),
        rng.standard_normal((T, N, H)).astype("float32"),
    )
    exact, grads = _run(layer, x, dy, LENGTHS)
    exact_ck, grads_ck = _run(layer, x, dy, LENGTHS, checkpoint=checkpoint)
    for key, value in exact.items():
        np.testing.assert_array_equal(exact_ck[key], value, err_msg=key)
    for key, value in grads.items():
        assert_close(grads_ck[key], value, dtype="float32", tol=1e-6)


def test_a_checkpointed_cache_keeps_one_state_per_segment(numpy_path):
    layer = xrnn.LSTM(IN, H, seed=0, xp="numpy")
    _, _, cache = layer.forward(np.ones((T, N, IN), np.float32), checkpoint="sqrt")
    (scan,) = cache.scans
    assert scan.segment == 4 and len(scan.checkpoints) == 3 and len(scan.steps) == 0  # ceil(sqrt(11))


def test_inference_without_a_cache_gives_the_same_outputs(xp, kind, numpy_path):
    layer = make_layer(kind, IN, H, num_layers=2, bidirectional=True, xp=xp, dtype="float64", seed=7)
    x = asarray(xp, np.random.default_rng(8).standard_normal((200, N, IN)), "float64")
    y, state, _ = layer.forward(x, lengths=[200, 70, 1, 133])
    y_nc, state_nc, cache = layer.forward(x, lengths=[200, 70, 1, 133], need_cache=False)
    assert cache is None
    np.testing.assert_array_equal(to_numpy(y_nc), to_numpy(y))
    for got, expected in zip(*(s if isinstance(s, tuple) else (s,) for s in (state_nc, state)), strict=True):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(expected))
    with pytest.raises(TypeError, match="cache must be the LayerCache returned by forward, got NoneType"):
        layer.backward(cache, None)


BAD_CHECKPOINTS = {
    "zero": (0, ValueError),
    "negative": (-3, ValueError),
    "a_float": (2.5, ValueError),
    "a_bool": (True, ValueError),
    "another_string": ("log", ValueError),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_is_a_clear_error(case):
    value, error = BAD_CHECKPOINTS[case]
    with pytest.raises(error, match=rf"checkpoint must be None, a positive int or 'sqrt', got {value!r}"):
        xrnn.GRU(IN, H).forward(np.ones((T, N, IN), np.float32), checkpoint=value)


def test_need_cache_must_be_a_bool():
    with pytest.raises(TypeError, match="need_cache must be True or False, got 'no'"):
        xrnn.GRU(IN, H).forward(np.ones((T, N, IN), np.float32), need_cache="no")


def _kept_bytes(layer, x, **options) -> int:
    """Bytes that forward's cache holds beyond its input and its output ``y``."""
    if _has_numba():
        xrnn.backends.numba.release()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y, state, cache = layer.forward(x, **options)
        kept = tracemalloc.get_traced_memory()[0] - before - y.nbytes
    finally:
        tracemalloc.stop()
    del y, state, cache
    return kept


def _has_numba() -> bool:
    try:
        import xrnn.backends.numba  # noqa: F401
    except ImportError:
        return False
    return True


def test_what_forward_keeps_grows_as_sqrt_t_with_sqrt_and_as_t_without(numpy_path):
    layer = xrnn.LSTM(8, 16, seed=0, xp="numpy")
    short, long = (np.ones((t, 8, 8), np.float32) for t in (400, 6400))  # T grows 16-fold
    layer.forward(short, checkpoint="sqrt")  # compiled and warm before anything is measured
    growth_full = _kept_bytes(layer, long) / _kept_bytes(layer, short)
    growth_sqrt = _kept_bytes(layer, long, checkpoint="sqrt") / _kept_bytes(layer, short, checkpoint="sqrt")
    assert growth_full > 12  # linear: 16
    assert growth_sqrt < 6  # square root: 4 (a segment's buffers stay for reuse, also sqrt(T))
