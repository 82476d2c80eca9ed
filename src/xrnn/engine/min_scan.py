"""One direction of one minGRU or minLSTM layer, forward and backward, with no per-step matmul.

::

    gates = X @ W^T + b                  (T, N, G*H), one matmul over all T*N rows
    a, b  = cell.coefficients(gates)     (T, N, H) each, elementwise
    h     = recurrence(a, b, h0)         sequential loop or doubling scan (:mod:`.linear_scan`)

Backward: the reverse scan gives ``da, db``; the cell turns them into ``dgates``; then
``dW = dgates^T X``, ``db = sum(dgates)`` and ``dX = dgates @ W`` as single matmuls.

Variable lengths: past its length a sequence's step has ``a = 1, b = 0`` (its state is
carried to the last step unchanged) and outputs zero; the reverse direction reverses
each sequence within its length, runs the same, and reverses back, as :mod:`.scan` does.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from .._util.sums import sum_rows
from .._util.typing import Array
from ..cells.minimal import MinCell, MinStep
from .lengths import reversal_order, reversed_in_time
from .linear_scan import LinearOps, recurrence, recurrence_backward
from .ops import length_mask

__all__ = ["MinScanCache", "min_scan", "min_scan_backward"]


class MinScanCache(NamedTuple):
    """What :func:`min_scan_backward` needs, in the loop's own time order."""

    x: Array  # (T, N, I) the input the recurrence saw
    h0: Array  # (N, H)
    h: Array  # (T, N, H) states, not masked
    a: Array  # (T, N, H) coefficients as run (1 past each length)
    step: MinStep
    mask: Array | None  # (T, N, 1) valid steps, or None when all are
    order: Array | None  # (T*N,) flat gather index of the within-length reversal
    reverse: bool
    weights: tuple[Array, Array | None]  # W (G*H, I), b (G*H,) or None
    parallel: bool


def min_scan(
    cell: MinCell,
    x: Array,
    h0: Array,
    weights: tuple[Array, Array | None],
    *,
    lengths: Array | None,
    reverse: bool,
    parallel: bool,
    ops: LinearOps,
    xp: ModuleType,
) -> tuple[Array, Array, MinScanCache]:
    """Run ``cell`` over ``x`` from ``h0``.

    Parameters
    ----------
    cell : MinCell
        minGRU or minLSTM.
    x : array, shape (T, N, I)
        Input, time-major.
    h0 : array, shape (N, H)
        Initial state.
    weights : tuple (W, b)
        ``W`` of shape ``(G*H, I)`` and ``b`` of shape ``(G*H,)`` or None.
    lengths : integer array, shape (N,), or None
        Valid steps of each sequence (None: all ``T``).
    reverse : bool
        Run each sequence backwards from its own last valid step.
    parallel : bool
        The doubling scan (True) or the sequential loop (False).
    ops : LinearOps
        The sequential loop (generic or compiled).
    xp : module
        Array namespace.

    Returns
    -------
    y : array, shape (T, N, H)
        ``h`` of every step, zero past each length, in the order of ``x``.
    h_last : array, shape (N, H)
        Each sequence's state at its last valid step (step 0 when ``reverse``).
    cache : MinScanCache
    """
    t_steps, n, n_in = x.shape
    order = reversal_order(lengths, t_steps, n, xp=xp) if reverse and lengths is not None else None
    if reverse:
        x = reversed_in_time(x, order, xp=xp)
    w, bias = weights
    gates = xp.reshape(xp.reshape(x, (t_steps * n, n_in)) @ xp.matrix_transpose(w), (t_steps, n, -1))
    if bias is not None:
        gates = gates + bias
    a, b, step = ops.coefficients(cell, gates)
    mask = None if lengths is None else length_mask(lengths, t_steps, xp=xp)
    if mask is not None:
        a, b = xp.where(mask, a, xp.ones_like(a)), xp.where(mask, b, xp.zeros_like(b))
    h = recurrence(a, b, h0, parallel=parallel, ops=ops, xp=xp)
    y = h if mask is None else xp.where(mask, h, xp.zeros_like(h))
    if reverse:
        y = reversed_in_time(y, order, xp=xp)
    cache = MinScanCache(x, h0, h, a, step, mask, order, reverse, weights, parallel)
    return y, h[-1, ...], cache


def min_scan_backward(
    cell: MinCell,
    cache: MinScanCache,
    dy: Array | None,
    dh_last: Array | None,
    *,
    ops: LinearOps,
    xp: ModuleType,
    need_dx: bool = True,
) -> tuple[Array | None, Array, tuple[Array, Array | None]]:
    """Backpropagate through :func:`min_scan`.

    Parameters
    ----------
    cell : MinCell
        The cell of the forward pass.
    cache : MinScanCache
        Third result of :func:`min_scan`.
    dy : array, shape (T, N, H), or None
        Gradient with respect to ``y`` (None: zero).
    dh_last : array, shape (N, H), or None
        Gradient with respect to ``h_last`` (None: zero).
    ops : LinearOps
        The sequential loop (used when the forward pass was sequential).
    xp : module
        Array namespace.
    need_dx : bool, default True
        False: skip the gradient with respect to ``x`` (one product), ``dx`` is None.

    Returns
    -------
    dx : array, shape (T, N, I), or None without ``need_dx``
    dh0 : array, shape (N, H)
    grads : tuple (dW, db)
        ``dW (G*H, I)``, ``db (G*H,)`` or None without a bias.
    """
    h = cache.h
    t_steps, n, n_in = cache.x.shape
    dh = xp.zeros_like(h) if dy is None else dy
    if cache.reverse and dy is not None:
        dh = reversed_in_time(dh, cache.order, xp=xp)
    if cache.mask is not None:  # y is zero past each length: nothing reaches h there from y
        dh = xp.where(cache.mask, dh, xp.zeros_like(dh))
    last = xp.zeros_like(cache.h0) if dh_last is None else dh_last
    h_prev = xp.concat([cache.h0[None, ...], h[:-1, ...]], axis=0)
    da, db, dh0 = recurrence_backward(cache.a, h_prev, dh, last, parallel=cache.parallel, ops=ops, xp=xp)
    if cache.mask is not None:  # past each length a and b are constants
        da, db = xp.where(cache.mask, da, xp.zeros_like(da)), xp.where(cache.mask, db, xp.zeros_like(db))
    dgates = ops.coefficients_backward(cell, da, db, cache.step)  # (T, N, G*H)
    flat = xp.reshape(dgates, (t_steps * n, dgates.shape[-1]))
    w, bias = cache.weights
    dw = xp.matrix_transpose(flat) @ xp.reshape(cache.x, (t_steps * n, n_in))
    dbias = None if bias is None else sum_rows(flat, xp=xp)
    if not need_dx:
        return None, dh0, (dw, dbias)
    dx = xp.reshape(flat @ w, (t_steps, n, n_in))
    if cache.reverse:
        dx = reversed_in_time(dx, cache.order, xp=xp)
    return dx, dh0, (dw, dbias)
