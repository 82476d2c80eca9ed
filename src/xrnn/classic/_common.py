"""What the classic RNN and LSTM functions share: layouts, parameter keys and input checks."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._util import activations as _activations
from .._util.namespaces import namespace
from .._util.typing import Array
from .._util.validation import check_dtypes, check_finite, check_keys, check_shape
from ..engine.scan import Weights

__all__ = ["sigmoid", "softmax"]

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
    return _activations.stable_softmax(x, axis=0, xp=xp)


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
        return _activations.stable_softmax(w @ a + b, axis=0, xp=xp)
    scores = _seq(a, xp) @ _t(w, xp) + _t(b, xp)  # (T, m, n_y)
    return _seq(_activations.stable_softmax(scores, axis=2, xp=xp), xp)


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
