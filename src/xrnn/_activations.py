"""Numerically stable elementwise activations shared by the cells and the classic API."""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["sigmoid", "softmax"]


def sigmoid(z: Any, *, xp: ModuleType) -> Any:
    """Logistic function ``1 / (1 + exp(-z))`` without overflow for any finite ``z``.

    ``exp`` only ever sees ``-|z| <= 0``: ``e = exp(-|z|)``, then ``1 / (1 + e)`` for
    ``z >= 0`` and ``e / (1 + e)`` below, which keeps full relative precision in both tails.
    """
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


def softmax(z: Any, *, axis: int, xp: ModuleType) -> Any:
    """Softmax along ``axis``, shifted by each slice's own maximum (no overflow, no NaN)."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)
