"""The classic LSTM, step by step: ``lstm_cell_forward``, ``lstm_forward`` and their backward functions."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._util.typing import Array
from ..backends import registry
from ..cells import LSTM_CELL, LSTMStep
from ..engine.scan import ScanCache, scan, scan_backward
from ._common import (
    Params,
    _check_caches,
    _check_cell_cache,
    _check_da,
    _check_inputs,
    _lstm_grads,
    _lstm_weights,
    _output,
    _seq,
    _t,
)

__all__ = ["lstm_backward", "lstm_cell_backward", "lstm_cell_forward", "lstm_forward"]

# ---------------------------------------------------------------------------- LSTM


def lstm_cell_forward(
    xt: Array, a_prev: Array, c_prev: Array, parameters: Params, *, check_finite: bool = False
) -> tuple[Array, Array, Array, tuple]:
    """One step of the LSTM.

    Parameters
    ----------
    xt : array, shape (n_x, m)
        Input at step t.
    a_prev : array, shape (n_a, m)
        Hidden state at step t-1.
    c_prev : array, shape (n_a, m)
        Cell state at step t-1.
    parameters : dict
        ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)`` on ``[a_prev; xt]``, ``bf, bi, bc, bo (n_a, 1)``,
        ``Wy (n_y, n_a)``, ``by (n_y, 1)``.
    check_finite : bool, default False
        Raise ``ValueError`` if an input or parameter holds NaN or infinity.

    Returns
    -------
    a_next : array, shape (n_a, m)
        Next hidden state.
    c_next : array, shape (n_a, m)
        Next cell state.
    yt_pred : array, shape (n_y, m)
        ``softmax(Wy a_next + by)``.
    cache : tuple
        ``(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``, gates ``(n_a, m)``.
    """
    xp, _, n_a, _ = _check_inputs(
        xt, {"a_prev": a_prev, "c_prev": c_prev}, parameters, "lstm_cell", check_finite
    )
    _, (h, c), sc = scan(
        LSTM_CELL,
        _t(xt, xp)[None, ...],
        (_t(a_prev, xp), _t(c_prev, xp)),
        _lstm_weights(parameters, n_a, xp),
        ops=registry.ops_for(xp, xt.dtype),
        xp=xp,
    )
    s = sc.steps[0]
    a_next, c_next = _t(h, xp), _t(c, xp)
    yt_pred = _output(a_next, parameters["Wy"], parameters["by"], xp)
    cache = (
        a_next,
        c_next,
        a_prev,
        c_prev,
        _t(s.f, xp),
        _t(s.i, xp),
        _t(s.g, xp),
        _t(s.o, xp),
        xt,
        parameters,
    )
    return a_next, c_next, yt_pred, cache


def lstm_forward(
    x: Array, a0: Array, parameters: Params, *, check_finite: bool = False
) -> tuple[Array, Array, Array, tuple]:
    """The LSTM over a whole sequence, from ``a0`` and a zero cell state.

    Parameters
    ----------
    x : array, shape (n_x, m, T_x)
        Input sequence.
    a0 : array, shape (n_a, m)
        Initial hidden state.
    parameters : dict
        As for :func:`lstm_cell_forward`.
    check_finite : bool, default False
        Raise ``ValueError`` if an input or parameter holds NaN or infinity.

    Returns
    -------
    a : array, shape (n_a, m, T_x)
        Hidden state at every step.
    y : array, shape (n_y, m, T_x)
        Softmax prediction at every step.
    c : array, shape (n_a, m, T_x)
        Cell state at every step.
    caches : tuple
        ``(list_of_cell_caches, x)``, one :func:`lstm_cell_forward` cache per step.
    """
    xp, _, n_a, _ = _check_inputs(x, {"a0": a0}, parameters, "lstm", check_finite)
    h0 = _t(a0, xp)
    y_seq, (_, c_last), sc = scan(
        LSTM_CELL,
        _seq(x, xp),
        (h0, xp.zeros_like(h0)),
        _lstm_weights(parameters, n_a, xp),
        ops=registry.ops_for(xp, x.dtype),
        xp=xp,
    )
    steps = sc.steps
    a = _seq(y_seq, xp)  # (n_a, m, T_x)
    c = _seq(xp.stack([s.c_prev for s in steps[1:]] + [c_last]), xp)  # c_t is step t+1's c_prev
    y = _output(a, parameters["Wy"], parameters["by"], xp)
    caches = []
    for t, s in enumerate(steps):
        a_prev = a0 if t == 0 else a[:, :, t - 1]
        gates = (_t(s.f, xp), _t(s.i, xp), _t(s.g, xp), _t(s.o, xp))
        caches.append((a[:, :, t], c[:, :, t], a_prev, _t(s.c_prev, xp), *gates, x[:, :, t], parameters))
    return a, y, c, (caches, x)


def _lstm_backward(
    cells: list[Any], da: Array, dc_next: Array | None, xp: ModuleType
) -> tuple[Array, Array, Array, dict[str, Array]]:
    """Engine backward over classic LSTM cell caches; ``da`` is ``(n_a, m, T)``, ``T = len(cells)``."""
    n_a = cells[0][0].shape[0]
    # cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    steps = [
        LSTMStep(_t(c[5], xp), _t(c[4], xp), _t(c[6], xp), _t(c[7], xp), xp.tanh(_t(c[1], xp)), _t(c[3], xp))
        for c in cells
    ]
    y = xp.stack([_t(c[0], xp) for c in cells])  # (T, m, n_a)
    x = xp.stack([_t(c[8], xp) for c in cells])  # (T, m, n_x)
    weights = _lstm_weights(cells[0][9], n_a, xp)
    cache = ScanCache(x, _t(cells[0][2], xp), y, steps, None, None, False, weights)
    dstate = None if dc_next is None else (None, _t(dc_next, xp))
    dx, (dh0, dc0), g = scan_backward(
        LSTM_CELL, cache, _seq(da, xp), dstate, ops=registry.ops_for(xp, cache.x.dtype), xp=xp
    )
    return dx, dh0, dc0, _lstm_grads(g, n_a, xp)


def lstm_cell_backward(da_next: Array, dc_next: Array, cache: tuple) -> dict[str, Array]:
    """Backward pass of one LSTM step.

    Parameters
    ----------
    da_next : array, shape (n_a, m)
        Gradient of the loss with respect to ``a_next``.
    dc_next : array, shape (n_a, m)
        Gradient of the loss with respect to ``c_next``.
    cache : tuple
        From :func:`lstm_cell_forward`.

    Returns
    -------
    dict
        ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dc_prev (n_a, m)``, and
        ``dWf, dWi, dWc, dWo (n_a, n_a + n_x)``, ``dbf, dbi, dbc, dbo (n_a, 1)``.
    """
    _check_cell_cache(cache, 10)
    xp, _, n_a, m = _check_inputs(cache[8], _lstm_cache_states(cache), cache[9], "lstm_cell")
    _check_da(da_next, n_a, m, 1, 2, "da_next", xp, cache[0])
    _check_da(dc_next, n_a, m, 1, 2, "dc_next", xp, cache[0])
    dx, dh0, dc0, grads = _lstm_backward([cache], da_next[:, :, None], dc_next, xp)
    return {"dxt": _t(dx[0, ...], xp), "da_prev": _t(dh0, xp), "dc_prev": _t(dc0, xp), **grads}


def lstm_backward(da: Array, caches: tuple) -> dict[str, Array]:
    """Backpropagation through time for the LSTM.

    Parameters
    ----------
    da : array, shape (n_a, m, T)
        Upstream gradient of the loss with respect to every hidden state, ``T <= T_x``;
        with ``T < T_x`` the loss covers the first ``T`` steps only. The cell-state
        gradient carried back from past the last step starts at zero.
    caches : tuple
        ``(list_of_cell_caches, x)`` from :func:`lstm_forward`.

    Returns
    -------
    dict
        ``dx (n_x, m, T)``, ``da0 (n_a, m)``, ``dWf, dWi, dWc, dWo (n_a, n_a + n_x)``,
        ``dbf, dbi, dbc, dbo (n_a, 1)``, summed over the batch.
    """
    cells, _ = _check_caches(caches, 10)
    c0 = cells[0]
    xp, _, n_a, m = _check_inputs(c0[8], _lstm_cache_states(c0), c0[9], "lstm_cell")
    _check_da(da, n_a, m, len(cells), 3, "da", xp, c0[0])
    dx, dh0, _, grads = _lstm_backward(cells[: da.shape[2]], da, None, xp)
    return {"dx": _seq(dx, xp), "da0": _t(dh0, xp), **grads}


def _lstm_cache_states(cache: tuple) -> dict[str, Array]:
    names = ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot")
    return {f"cache[{j}] ({name})": cache[j] for j, name in enumerate(names)}
