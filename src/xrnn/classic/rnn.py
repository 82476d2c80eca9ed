"""The classic vanilla RNN, step by step: ``rnn_cell_forward``, ``rnn_forward`` and their backwards."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._util.typing import Array
from ..backends import registry
from ..cells import RNN_TANH
from ..engine.scan import ScanCache, Weights, scan, scan_backward
from ._common import (
    Params,
    _bias,
    _check_caches,
    _check_cell_cache,
    _check_da,
    _check_inputs,
    _output,
    _rnn_weights,
    _seq,
    _t,
)

__all__ = ["rnn_backward", "rnn_cell_backward", "rnn_cell_forward", "rnn_forward"]

# ----------------------------------------------------------------------------- RNN


def rnn_cell_forward(
    xt: Array, a_prev: Array, parameters: Params, *, check_finite: bool = False
) -> tuple[Array, Array, tuple]:
    """One step of the vanilla RNN.

    Parameters
    ----------
    xt : array, shape (n_x, m)
        Input at step t.
    a_prev : array, shape (n_a, m)
        Hidden state at step t-1.
    parameters : dict
        ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``, ``by (n_y, 1)``.
    check_finite : bool, default False
        Raise ``ValueError`` if an input or parameter holds NaN or infinity.

    Returns
    -------
    a_next : array, shape (n_a, m)
        ``tanh(Waa a_prev + Wax xt + ba)``.
    yt_pred : array, shape (n_y, m)
        ``softmax(Wya a_next + by)``.
    cache : tuple
        ``(a_next, a_prev, xt, parameters)``.
    """
    xp, _, _, _ = _check_inputs(xt, {"a_prev": a_prev}, parameters, "rnn_cell", check_finite)
    y, _, _ = scan(
        RNN_TANH,
        _t(xt, xp)[None, ...],
        (_t(a_prev, xp),),
        _rnn_weights(parameters, xp),
        ops=registry.ops_for(xp, xt.dtype),
        xp=xp,
    )
    a_next = _t(y[0, ...], xp)
    yt_pred = _output(a_next, parameters["Wya"], parameters["by"], xp)
    return a_next, yt_pred, (a_next, a_prev, xt, parameters)


def rnn_forward(
    x: Array, a0: Array, parameters: Params, *, check_finite: bool = False
) -> tuple[Array, Array, tuple]:
    """The vanilla RNN over a whole sequence.

    Parameters
    ----------
    x : array, shape (n_x, m, T_x)
        Input sequence.
    a0 : array, shape (n_a, m)
        Initial hidden state.
    parameters : dict
        As for :func:`rnn_cell_forward`.
    check_finite : bool, default False
        Raise ``ValueError`` if an input or parameter holds NaN or infinity.

    Returns
    -------
    a : array, shape (n_a, m, T_x)
        Hidden state at every step.
    y_pred : array, shape (n_y, m, T_x)
        Softmax prediction at every step.
    caches : tuple
        ``(list_of_cell_caches, x)``, one :func:`rnn_cell_forward` cache per step.

    Examples
    --------
    >>> import numpy as np
    >>> from xrnn.classic import rnn_forward
    >>> rng = np.random.default_rng(0)
    >>> n_x, n_a, n_y, m, T_x = 3, 5, 2, 4, 7
    >>> p = {"Wax": rng.standard_normal((n_a, n_x)), "Waa": rng.standard_normal((n_a, n_a)),
    ...      "Wya": rng.standard_normal((n_y, n_a)), "ba": np.zeros((n_a, 1)), "by": np.zeros((n_y, 1))}
    >>> a, y_pred, caches = rnn_forward(rng.standard_normal((n_x, m, T_x)), np.zeros((n_a, m)), p)
    >>> a.shape, y_pred.shape, len(caches[0])
    ((5, 4, 7), (2, 4, 7), 7)
    """
    xp, _, _, _ = _check_inputs(x, {"a0": a0}, parameters, "rnn", check_finite)
    y, _, _ = scan(
        RNN_TANH,
        _seq(x, xp),
        (_t(a0, xp),),
        _rnn_weights(parameters, xp),
        ops=registry.ops_for(xp, x.dtype),
        xp=xp,
    )
    a = _seq(y, xp)  # (n_a, m, T_x)
    y_pred = _output(a, parameters["Wya"], parameters["by"], xp)
    caches = [
        (a[:, :, t], a0 if t == 0 else a[:, :, t - 1], x[:, :, t], parameters) for t in range(x.shape[2])
    ]
    return a, y_pred, (caches, x)


def _rnn_backward(cells: list[Any], da: Array, xp: ModuleType) -> tuple[Array, Array, Weights]:
    """Engine backward over classic RNN cell caches; ``da`` is ``(n_a, m, T)``, ``T = len(cells)``."""
    parameters = cells[0][3]
    a_next = [_t(c[0], xp) for c in cells]  # T x (m, n_a), the tanh cell's own cache
    x = xp.stack([_t(c[2], xp) for c in cells])  # (T, m, n_x)
    cache = ScanCache(
        x, _t(cells[0][1], xp), xp.stack(a_next), a_next, None, None, False, _rnn_weights(parameters, xp)
    )
    dx, (dh0,), g = scan_backward(
        RNN_TANH, cache, _seq(da, xp), None, ops=registry.ops_for(xp, cache.x.dtype), xp=xp
    )
    return dx, dh0, g


def rnn_cell_backward(da_next: Array, cache: tuple) -> dict[str, Array]:
    """Backward pass of one vanilla RNN step.

    Parameters
    ----------
    da_next : array, shape (n_a, m)
        Gradient of the loss with respect to ``a_next``.
    cache : tuple
        ``(a_next, a_prev, xt, parameters)`` from :func:`rnn_cell_forward`.

    Returns
    -------
    dict
        ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dWax (n_a, n_x)``, ``dWaa (n_a, n_a)``,
        ``dba (n_a, 1)``, summed over the batch.
    """
    _check_cell_cache(cache, 4)
    xp, _, n_a, m = _check_inputs(cache[2], {"a_next": cache[0], "a_prev": cache[1]}, cache[3], "rnn_cell")
    _check_da(da_next, n_a, m, 1, 2, "da_next", xp, cache[0])
    dx, dh0, g = _rnn_backward([cache], da_next[:, :, None], xp)
    return {
        "dxt": _t(dx[0, ...], xp),
        "da_prev": _t(dh0, xp),
        "dWax": g.w_ih,
        "dWaa": g.w_hh,
        "dba": _bias(g)[:, None],
    }


def rnn_backward(da: Array, caches: tuple) -> dict[str, Array]:
    """Backpropagation through time for the vanilla RNN.

    Parameters
    ----------
    da : array, shape (n_a, m, T)
        Upstream gradient of the loss with respect to every hidden state, ``T <= T_x``;
        with ``T < T_x`` the loss covers the first ``T`` steps only.
    caches : tuple
        ``(list_of_cell_caches, x)`` from :func:`rnn_forward`.

    Returns
    -------
    dict
        ``dx (n_x, m, T)``, ``da0 (n_a, m)``, ``dWax (n_a, n_x)``, ``dWaa (n_a, n_a)``,
        ``dba (n_a, 1)``, summed over the batch.
    """
    cells, _ = _check_caches(caches, 4)
    c0 = cells[0]
    xp, _, n_a, m = _check_inputs(c0[2], {"a_next": c0[0], "a_prev": c0[1]}, c0[3], "rnn_cell")
    _check_da(da, n_a, m, len(cells), 3, "da", xp, c0[0])
    dx, dh0, g = _rnn_backward(cells[: da.shape[2]], da, xp)
    return {"dx": _seq(dx, xp), "da0": _t(dh0, xp), "dWax": g.w_ih, "dWaa": g.w_hh, "dba": _bias(g)[:, None]}
