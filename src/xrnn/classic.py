"""The classic step-by-step API: column vectors, features first, parameter dicts, per-step caches.

Layout: ``x`` is ``(n_x, m, T_x)``, ``xt = x[:, :, t]`` is ``(n_x, m)``, states are
``(n_a, m)`` and stacked ``(n_a, m, T_x)``.

RNN, parameters ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
``by (n_y, 1)``::

    a_next  = tanh(Waa a_prev + Wax xt + ba)
    yt_pred = softmax(Wya a_next + by)

LSTM, parameters ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)`` acting on ``concat = [a_prev; xt]``,
biases ``bf, bi, bc, bo (n_a, 1)``, ``Wy (n_y, n_a)``, ``by (n_y, 1)``::

    ft = sigmoid(Wf concat + bf)   it = sigmoid(Wi concat + bi)   ot = sigmoid(Wo concat + bo)
    cct = tanh(Wc concat + bc)     c_next = ft * c_prev + it * cct
    a_next = ot * tanh(c_next)     yt_pred = softmax(Wy a_next + by)

Backward functions take ``da``, the gradient of the loss with respect to every hidden
state (the output layer is not back-propagated), and return gradients summed over
the batch. ``da`` may cover fewer steps than the forward pass: it is then the gradient
of a loss on the first ``da.shape[2]`` steps.

Everything here is an adapter over the engine (:mod:`xrnn._engine` with the cells of
:mod:`xrnn.cells`): transposes of layout and a regrouping of the
per-gate blocks, not a second implementation of the maths.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from . import _activations
from ._backend import namespace
from ._engine.scan import ScanCache, Weights, scan, scan_backward
from ._typing import Array
from ._validation import check_dtypes, check_finite, check_keys, check_shape
from .cells import LSTM_CELL, RNN_TANH, LSTMStep

__all__ = [
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "rnn_backward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_forward",
    "sigmoid",
    "softmax",
]

Params = Mapping[str, Array]

_RNN_KEYS = ("Wax", "Waa", "Wya", "ba", "by")
_LSTM_GATES = ("i", "f", "c", "o")  # the engine's (torch's) block order: i, f, g, o
_LSTM_KEYS = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")


# ------------------------------------------------------------------------- helpers


def softmax(x: Array) -> Array:
    """Softmax over axis 0, column by column, numerically stable.

    Parameters
    ----------
    x : array, shape (n_y, ...)
        Scores; each column ``x[:, j, ...]`` is normalised on its own.

    Returns
    -------
    array, shape like ``x``
        Non-negative, summing to 1 along axis 0.

    Examples
    --------
    >>> import numpy as np
    >>> from xrnn.classic import softmax
    >>> softmax(np.array([[0.0, 1000.0], [0.0, -1000.0]]))
    array([[0.5, 1. ],
           [0.5, 0. ]])
    """
    xp = namespace(x=x)
    check_dtypes(xp, x=x)
    if x.ndim < 1:
        raise ValueError(f"x must have at least 1 dimension, got shape {tuple(x.shape)}")
    return _activations.softmax(x, axis=0, xp=xp)


def sigmoid(x: Array) -> Array:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise, without overflow.

    Parameters
    ----------
    x : array, any shape
        Input.

    Returns
    -------
    array, shape like ``x``
        Values in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from xrnn.classic import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    xp = namespace(x=x)
    check_dtypes(xp, x=x)
    return _activations.sigmoid(x, xp=xp)


def _t(a: Array, xp: ModuleType) -> Array:
    """``(rows, cols)`` columns layout <-> the engine's batch-rows layout."""
    return xp.matrix_transpose(a)


def _seq(a: Array, xp: ModuleType) -> Array:
    """``(F, m, T)`` <-> ``(T, m, F)``; its own inverse."""
    return xp.permute_dims(a, (2, 1, 0))


def _output(a: Array, w: Array, b: Array, xp: ModuleType) -> Array:
    """``softmax(W a + b)`` for ``a (n_a, m)`` or stacked ``(n_a, m, T)``."""
    if a.ndim == 2:
        return _activations.softmax(w @ a + b, axis=0, xp=xp)
    scores = _seq(a, xp) @ _t(w, xp) + _t(b, xp)  # (T, m, n_y)
    return _seq(_activations.softmax(scores, axis=2, xp=xp), xp)


def _check_inputs(
    xt: Array, states: dict[str, Array], parameters: Params, kind: str, finite: bool = False
) -> tuple[ModuleType, int, int, int]:
    """Validate the inputs of one step or one sequence; return ``xp, n_x, n_a, m``.

    ``kind`` is "rnn_cell" or "lstm_cell" for one step, "rnn" or "lstm" for a sequence.
    """
    keys = _RNN_KEYS if kind.startswith("rnn") else _LSTM_KEYS
    check_keys("parameters", parameters, keys)
    named = {f"parameters['{k}']": parameters[k] for k in keys}
    name, ndim, meaning = ("xt", 2, "(n_x, m)") if kind.endswith("cell") else ("x", 3, "(n_x, m, T_x)")
    xp = namespace(**{name: xt}, **states, **named)
    check_dtypes(xp, **{name: xt}, **states, **named)
    check_shape(name, xt, (None,) * ndim, meaning)
    if finite:
        check_finite(xp, **{name: xt}, **states, **named)
    n_x, m = xt.shape[0], xt.shape[1]
    first = next(iter(states))
    check_shape(first, states[first], (None, m), "(n_a, m)")
    n_a = states[first].shape[0]
    for other, a in states.items():
        check_shape(other, a, (n_a, m), "(n_a, m)")
    n_y = parameters["by"].shape[0] if parameters["by"].ndim == 2 else None
    if kind.startswith("rnn"):
        shapes = {
            "Wax": (n_a, n_x),
            "Waa": (n_a, n_a),
            "Wya": (n_y, n_a),
            "ba": (n_a, 1),
            "by": (None, 1),
        }
    else:
        shapes = {"Wy": (n_y, n_a), "by": (None, 1)}
        for g in ("f", "i", "c", "o"):
            shapes[f"W{g}"] = (n_a, n_a + n_x)
            shapes[f"b{g}"] = (n_a, 1)
    for k, shape in shapes.items():
        check_shape(f"parameters['{k}']", parameters[k], shape, _PARAM_MEANING[k])
    if m == 0:
        raise ValueError(f"{name} must hold at least one example (m >= 1), got shape {tuple(xt.shape)}")
    if ndim == 3 and xt.shape[2] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(xt.shape)}")
    return xp, n_x, n_a, m


_PARAM_MEANING = {
    "Wax": "(n_a, n_x)",
    "Waa": "(n_a, n_a)",
    "Wya": "(n_y, n_a)",
    "ba": "(n_a, 1)",
    "by": "(n_y, 1)",
    "Wy": "(n_y, n_a)",
    **{f"W{g}": "(n_a, n_a + n_x)" for g in "fico"},
    **{f"b{g}": "(n_a, 1)" for g in "fico"},
}


def _rnn_weights(parameters: Params, xp: ModuleType) -> Weights:
    return Weights(parameters["Wax"], parameters["Waa"], parameters["ba"][:, 0], None)


def _lstm_weights(parameters: Params, n_a: int, xp: ModuleType) -> Weights:
    """Regroup ``Wf, Wi, Wc, Wo`` on ``[a_prev; xt]`` into the engine's ``W_ih``, ``W_hh``, ``b``."""
    w = [parameters[f"W{g}"] for g in _LSTM_GATES]
    w_ih = xp.concat([wg[:, n_a:] for wg in w], axis=0)  # (4 n_a, n_x)
    w_hh = xp.concat([wg[:, :n_a] for wg in w], axis=0)  # (4 n_a, n_a)
    b = xp.concat([parameters[f"b{g}"][:, 0] for g in _LSTM_GATES], axis=0)  # (4 n_a,)
    return Weights(w_ih, w_hh, b, None)


def _bias(g: Weights) -> Array:
    """The bias gradient of a classic cell (the engine's ``b_ih``: classic cells have one bias)."""
    if g.b_ih is None:
        raise RuntimeError("the classic cells always have a bias")
    return g.b_ih


def _lstm_grads(g: Weights, n_a: int, xp: ModuleType) -> dict[str, Array]:
    """Split the engine's gradients back into ``dWf, dbf, ...`` on ``[a_prev; xt]``."""
    out = {}
    for j, gate in enumerate(_LSTM_GATES):
        rows = slice(j * n_a, (j + 1) * n_a)
        out[f"dW{gate}"] = xp.concat([g.w_hh[rows, :], g.w_ih[rows, :]], axis=1)
        out[f"db{gate}"] = _bias(g)[rows, None]
    return {k: out[k] for k in ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo")}


def _check_da(
    da: Array, n_a: int, m: int, t_max: int, ndim: int, name: str, xp: ModuleType, like: Array
) -> None:
    meaning = "(n_a, m, T)" if ndim == 3 else "(n_a, m)"
    namespace(**{name: da, "cache": like})
    check_dtypes(xp, cache=like, **{name: da})
    check_shape(name, da, (n_a, m, None)[:ndim], meaning)
    if ndim == 3 and not 1 <= da.shape[2] <= t_max:
        raise ValueError(
            f"{name} must have between 1 and T_x={t_max} steps (the forward pass's), "
            f"got {da.shape[2]} in shape {tuple(da.shape)}"
        )


def _check_cell_cache(cache: Any, length: int, name: str = "cache") -> None:
    if not isinstance(cache, (tuple, list)) or len(cache) != length:
        got = (
            f"{type(cache).__name__} of length {len(cache)}"
            if isinstance(cache, (tuple, list))
            else type(cache).__name__
        )
        raise TypeError(f"{name} must be the {length}-tuple returned by the forward function, got {got}")


def _check_caches(caches: Any, length: int) -> tuple[list[Any], Array]:
    if not isinstance(caches, (tuple, list)) or len(caches) != 2 or not isinstance(caches[0], (list, tuple)):
        raise TypeError("caches must be the pair (list_of_cell_caches, x) returned by the forward function")
    if len(caches[0]) == 0:
        raise ValueError("caches holds no cell cache")
    for t, c in enumerate(caches[0]):
        _check_cell_cache(c, length, f"caches[0][{t}]")
    return list(caches[0]), caches[1]


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
    y, _, _ = scan(RNN_TANH, _t(xt, xp)[None, ...], (_t(a_prev, xp),), _rnn_weights(parameters, xp), xp=xp)
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
    y, _, _ = scan(RNN_TANH, _seq(x, xp), (_t(a0, xp),), _rnn_weights(parameters, xp), xp=xp)
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
    dx, (dh0,), g = scan_backward(RNN_TANH, cache, _seq(da, xp), None, xp=xp)
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
        LSTM_CELL, _seq(x, xp), (h0, xp.zeros_like(h0)), _lstm_weights(parameters, n_a, xp), xp=xp
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
    dx, (dh0, dc0), g = scan_backward(LSTM_CELL, cache, _seq(da, xp), dstate, xp=xp)
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
