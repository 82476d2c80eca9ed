"""Sequences of their own lengths: each sequence's steps within a segment, and reversal within lengths.

A sequence of length ``L < T`` is reversed within its first ``L`` steps, its padding left
in place, so that the reverse direction starts at each sequence's own last valid step.
"""

from __future__ import annotations

from types import ModuleType

from array_api_compat import device

from .._util.typing import Array

__all__ = ["reversal_order", "reversed_in_time", "within"]


def within(lengths: Array | None, t0: int, t1: int, *, xp: ModuleType) -> Array | None:
    """Each sequence's valid steps among steps ``t0..t1-1``, counted from ``t0``."""
    return None if lengths is None else xp.clip(lengths - t0, min=0, max=t1 - t0)


def reversal_order(lengths: Array, t_steps: int, n: int, *, xp: ModuleType) -> Array:
    """Flat gather index that reverses each sequence within its length, padding in place."""
    steps = xp.arange(t_steps, dtype=lengths.dtype, device=device(lengths))[:, None]  # (T, 1)
    source = xp.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)  # (T, N)
    batch = xp.arange(n, dtype=lengths.dtype, device=device(lengths))[None, :]
    return xp.reshape(source * n + batch, (t_steps * n,))


def reversed_in_time(a: Array, order: Array | None, *, xp: ModuleType) -> Array:
    """Time-reverse ``a (T, N, F)``: whole sequences, or each within its length."""
    if order is None:
        return xp.flip(a, axis=0)
    t_steps, n, f = a.shape
    flat = xp.take(xp.reshape(a, (t_steps * n, f)), order, axis=0)
    return xp.reshape(flat, (t_steps, n, f))
