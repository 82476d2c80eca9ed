"""The inference loops: each step's matmul and pointwise step, and nothing kept for backward.

A forward pass that keeps nothing (``need_cache=False``, ``predict``) needs of each step
only its ``h`` (the output ``y[t]``) and, for the LSTM, its ``c``: these loops write
those and no step cache (the training loops of :mod:`.loops` write six more arrays a
step for the LSTM). The maths is the cells' own scalar step, as in :mod:`.kernels`.

Per step, the recurrent matmul ``gh = h_prev @ W_hh^T`` is one call of NumPy's BLAS
``gemm`` (:func:`.loops.call_gemm`) on the row-major ``W_hh^T`` that the caller prepares
once per set of weights: at every batch size measured here, small ones included, it beat
a compiled loop of multiply-adds (``benchmarks/inference.py --matmul`` measures both).

With ``parallel`` the pointwise step runs its batch rows on every thread of Numba's pool
(``prange``), so that at large batches both cores work in the pointwise step as well
as in the ``gemm``. Rows are independent, so the results are the same either way.

Variable lengths as in :mod:`.loops`: a row past its length carries its state.
"""

from __future__ import annotations

import functools
import threading
import types

import numba
import numpy as np
from numba import prange

from ...cells import SCALAR_STEPS
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .compile import _OPTIONS, _key_on_sources, inline, jit
from .loops import call_gemm, carry

__all__ = [
    "gru_infer",
    "lstm_infer",
    "parallel_available",
    "rnn_infer",
]

_rnn_tanh_step = inline(SCALAR_STEPS["rnn_tanh"](_sigmoid, _tanh)[0])
_rnn_relu_step = inline(SCALAR_STEPS["rnn_relu"](_sigmoid, _tanh)[0])
_lstm_step = inline(SCALAR_STEPS["lstm"](_sigmoid, _tanh)[0])
_gru_step = inline(SCALAR_STEPS["gru"](_sigmoid, _tanh)[0])


def _compiled(function, **options):  # type: ignore[no-untyped-def]
    """:func:`.compile.jit` with more of numba's options (``parallel``, ``fastmath``)."""
    try:
        dispatcher = numba.njit(cache=True, **options, **_OPTIONS)(function)
    except RuntimeError:  # nowhere to write a disk cache (see .compile)
        return numba.njit(cache=False, **options, **_OPTIONS)(function)
    _key_on_sources(dispatcher)
    return dispatcher


def _both(function):  # type: ignore[no-untyped-def]
    """``function`` compiled twice: serial (``prange`` as ``range``) and with ``parallel=True``.

    The parallel one is compiled from a copy of another name: numba's disk cache tells
    functions by name and line, not by their options, and would hand either one the
    other's code.
    """
    twin = types.FunctionType(function.__code__, function.__globals__, f"{function.__name__}_parallel")
    twin.__qualname__ = f"{function.__qualname__}_parallel"
    return jit(function), _compiled(twin, parallel=True)


def _rnn_rows(relu, gx, gh, bx, bh, h):  # type: ignore[no-untyped-def]
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in prange(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            if relu:
                h_b[j] = _rnn_relu_step(one, x[j] + bx[j], y[j] + bh[j])
            else:
                h_b[j] = _rnn_tanh_step(one, x[j] + bx[j], y[j] + bh[j])


def _lstm_rows(gx, gh, bias, c_prev, h, c):  # type: ignore[no-untyped-def]
    n, hidden = c_prev.shape
    one = h.dtype.type(1)
    bias = bias.reshape((4, hidden))
    for b in prange(n):
        x, y = gx[b].reshape((4, hidden)), gh[b].reshape((4, hidden))  # gates i, f, g, o
        h_b, c_b, c_prev_b = h[b], c[b], c_prev[b]
        for j in range(hidden):
            _, _, _, _, _, h_j, c_j = _lstm_step(
                one,
                x[0, j] + bias[0, j],
                x[1, j] + bias[1, j],
                x[2, j] + bias[2, j],
                x[3, j] + bias[3, j],
                y[0, j],
                y[1, j],
                y[2, j],
                y[3, j],
                c_prev_b[j],
            )
            h_b[j], c_b[j] = h_j, c_j


def _gru_rows(gx, gh, bx, bh, h_prev, h):  # type: ignore[no-untyped-def]
    rows, hidden = h_prev.shape
    one = h.dtype.type(1)
    bx, bh = bx.reshape((3, hidden)), bh.reshape((3, hidden))
    for b in prange(rows):
        x, y = gx[b].reshape((3, hidden)), gh[b].reshape((3, hidden))  # gates r, z, n
        h_b, h_prev_b = h[b], h_prev[b]
        for j in range(hidden):
            _, _, _, h_j = _gru_step(
                one,
                x[0, j] + bx[0, j],
                x[1, j] + bx[1, j],
                x[2, j] + bx[2, j],
                y[0, j] + bh[0, j],
                y[1, j] + bh[1, j],
                y[2, j] + bh[2, j],
                h_prev_b[j],
            )
            h_b[j] = h_j


_rnn_serial, _rnn_parallel = _both(_rnn_rows)
_lstm_serial, _lstm_parallel = _both(_lstm_rows)
_gru_serial, _gru_parallel = _both(_gru_rows)


@jit
def rnn_infer(gemm, parallel, relu, lengths, gx, w_hh_t, bx, bh, h0, y, gh):  # type: ignore[no-untyped-def]
    """RNN over ``T`` steps: ``y (T, N, H)`` from ``gx (T, N, H)``; ``gh (N, H)`` is scratch."""
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        if parallel:
            _rnn_parallel(relu, gx[t], gh, bx, bh, y[t])
        else:
            _rnn_serial(relu, gx[t], gh, bx, bh, y[t])
        carry(t, lengths, h_prev, y[t])


@jit
def lstm_infer(gemm, parallel, lengths, gx, w_hh_t, bias, h0, c0, y, cs, gh):  # type: ignore[no-untyped-def]
    """LSTM over ``T`` steps: ``y (T, N, H)``; ``c`` alternates between ``cs[0]`` and ``cs[1]``.

    The final ``c`` is ``cs[(T - 1) % 2]``; ``gh (N, 4H)`` is scratch.
    """
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        c_prev = c0 if t == 0 else cs[(t - 1) % 2]
        c = cs[t % 2]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        if parallel:
            _lstm_parallel(gx[t], gh, bias, c_prev, y[t], c)
        else:
            _lstm_serial(gx[t], gh, bias, c_prev, y[t], c)
        carry(t, lengths, h_prev, y[t])
        carry(t, lengths, c_prev, c)


@jit
def gru_infer(gemm, parallel, lengths, gx, w_hh_t, bx, bh, h0, y, gh):  # type: ignore[no-untyped-def]
    """GRU over ``T`` steps: ``y (T, N, H)`` from ``gx (T, N, 3H)``; ``gh (N, 3H)`` is scratch."""
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        if parallel:
            _gru_parallel(gx[t], gh, bx, bh, h_prev, y[t])
        else:
            _gru_serial(gx[t], gh, bx, bh, h_prev, y[t])
        carry(t, lengths, h_prev, y[t])


_lock = threading.Lock()


@functools.cache
def _threading_layer() -> str:
    """Numba's threading layer, known once a parallel kernel has run (a tiny one runs here)."""
    with _lock:
        rows, vector = np.zeros((1, 1)), np.zeros(1)
        _rnn_parallel(False, rows, rows, vector, vector, np.zeros((1, 1)))
        return str(numba.threading_layer())


def parallel_available() -> bool:
    """Whether the pointwise step may run on several threads: a pool of more than one thread.

    Numba's ``workqueue`` layer (the fallback where neither OpenMP nor TBB is found) must
    not be entered from several threads at once, and inference may be: then the
    pointwise step stays serial.
    """
    return numba.get_num_threads() > 1 and _threading_layer() != "workqueue"
