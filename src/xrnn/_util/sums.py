"""Sums over the rows of a batch of gradients, the one reduction the backward passes share."""

from __future__ import annotations

from types import ModuleType

from array_api_compat import device

from .typing import Array

__all__ = ["sum_rows"]


def sum_rows(a: Array, *, xp: ModuleType) -> Array:
    """``a (..., W)`` summed over every axis but the last: ``(W,)``.

    One matrix-vector product ``ones @ a`` over the rows: a BLAS ``gemv`` where the
    namespace has one, which runs on every BLAS thread and adds the rows in blocks, and
    on NumPy 2.6-3x faster than ``sum(axis=0)`` over the ``(T*N, W)`` rows of a training
    step (no less accurate: measured against float64 sums, 4.5e-8 against 1.7e-7 of
    the sum of magnitudes at ``T*N = 6400``, float32).
    """
    flat = xp.reshape(a, (-1, a.shape[-1]))
    return xp.ones(flat.shape[0], dtype=a.dtype, device=device(a)) @ flat
