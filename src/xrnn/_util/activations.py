"""Numerically stable activations shared by the cells, the network, the losses and the classic API.

:func:`softmax` is public (:func:`xrnn.softmax`): over the last axis, the row-major layout of
the layer API; the classic API's :func:`xrnn.classic.softmax` normalises columns. Both are
:func:`stable_softmax`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .namespaces import namespace
from .typing import Array
from .validation import check_dtypes

__all__ = ["sigmoid", "softmax", "stable_softmax"]


def sigmoid(z: Any, *, xp: ModuleType) -> Any:
    """Logistic function ``1 / (1 + exp(-z))`` without overflow for any finite ``z``.

    ``exp`` only ever sees ``-|z| <= 0``: ``e = exp(-|z|)``, then ``1 / (1 + e)`` for
    ``z >= 0`` and ``e / (1 + e)`` below, which keeps full relative precision in both tails.
    """
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


def stable_softmax(z: Any, *, axis: int, xp: ModuleType) -> Any:
    """Softmax along ``axis``, shifted by each slice's own maximum (no overflow, no NaN)."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax(logits: Array, axis: int = -1) -> Array:
    """Softmax along ``axis`` (the classes, last in the layer API), numerically stable.

    Parameters
    ----------
    logits : array, shape (..., C)
        Unnormalised scores, e.g. ``(N, C)`` or ``(T, N, C)``; real floating dtype.
    axis : int, default -1
        The axis of the classes.

    Returns
    -------
    array, shape like ``logits``
        Non-negative, summing to 1 along ``axis``; finite for any finite ``logits``.

    Examples
    --------
    >>> import numpy as np, xrnn
    >>> xrnn.softmax(np.array([[0.0, 0.0], [1000.0, -1000.0]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    """
    xp = namespace(logits=logits)
    check_dtypes(xp, logits=logits)
    ndim = len(logits.shape)
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < max(ndim, 1):
        raise ValueError(
            f"axis must be an int in {-ndim}..{ndim - 1} for shape {tuple(logits.shape)}, got {axis!r}"
        )
    return stable_softmax(logits, axis=axis, xp=xp)
