"""The one time loop of xrnn: any cell, forward and backward through time.

Layout is time-major and batch-rows: ``x`` is ``(T, N, I)``, a state is ``(N, H)``, and
a cell with ``G`` gates sees pre-activations of shape ``(N, G*H)``.

Forward (DESIGN 1c)::

    gx = X @ W_ih^T + b            one matmul over all T*N rows, hoisted out of the loop
    for t:  gh = h @ W_hh^T        one recurrent matmul for all gates
            state, cache_t = cell.step(gx[t], gh, state)

Backward::

    for t reversed:  dgx_t, dgh_t, direct = cell.step_backward(dstate, cache_t)
                     dh_prev = dgh_t @ W_hh + direct_h
    dW_ih = dGx^T X,  dW_hh = dGh^T H_prev,  db = sum(dG),  dX = dGx @ W_ih

The loops over ``t`` belong to an :class:`~xrnn._engine.ops.Ops` (:func:`ops_for` picks
it: the generic one, or a backend's compiled one); everything around them is here, once:
the projection before, the reversal within lengths, the masking of outputs and the weight
gradients after.

Variable lengths: a finished sequence keeps its state and outputs zeros, and what its
input holds past its length (zeros, NaN, anything) reaches no output and no gradient. The reverse
direction reverses each sequence within its own length, runs the same loop, and reverses
back.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import device

from .._typing import Array, State
from ..cells import Cell
from .ops import length_mask, ops_for

__all__ = ["ScanCache", "Weights", "scan", "scan_backward"]


class Weights(NamedTuple):
    """One direction of one layer: ``W_ih (G*H, I)``, ``W_hh (G*H, H)``, biases ``(G*H,)`` or None."""

    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None


class ScanCache(NamedTuple):
    """What :func:`scan_backward` needs from :func:`scan`, all in the loop's own time order."""

    x: Array  # (T, N, I) the input the loop saw
    h0: Array  # (N, H)
    y: Array  # (T, N, H) outputs, zero past each length
    steps: Sequence[Any]  # T cell caches, in the layout of the Ops that made them
    lengths: Array | None  # (N,) integer, or None when every sequence is full length
    order: Array | None  # (T*N,) flat gather index of the within-length reversal
    reverse: bool
    weights: Weights


def scan(
    cell: Cell,
    x: Array,
    state0: State,
    weights: Weights,
    *,
    lengths: Array | None = None,
    reverse: bool = False,
    xp: ModuleType,
) -> tuple[Array, State, ScanCache]:
    """Run ``cell`` over ``x`` from ``state0``.

    Parameters
    ----------
    cell : Cell
        The cell.
    x : array, shape (T, N, I)
        Input sequence.
    state0 : tuple of arrays, each (N, H)
        Initial state, ``h`` first.
    weights : Weights
        Parameters of this direction.
    lengths : integer array, shape (N,), optional
        Valid steps per sequence (1..T); None when all are T.
    reverse : bool
        Run each sequence from its last valid step to its first.
    xp : module
        Array namespace.

    Returns
    -------
    y : array, shape (T, N, H)
        Hidden state at each step, zero past each sequence's length.
    state : tuple of arrays, each (N, H)
        Each sequence's state after its last valid step.
    cache : ScanCache
        Input to :func:`scan_backward`.
    """
    ops = ops_for(xp, x.dtype)
    t_steps, n, n_in = x.shape
    mask = None if lengths is None else length_mask(lengths, t_steps, xp=xp)
    if mask is not None:  # padding may hold anything (NaN * 0 is NaN): it never reaches a matmul
        x = xp.where(mask, x, xp.zeros_like(x))
    order = None
    if reverse:
        order = None if lengths is None else _reversal_order(lengths, t_steps, n, xp=xp)
        x = _reverse(x, order, xp=xp)
    gx = ops.project(xp.reshape(x, (t_steps * n, n_in)), weights.w_ih)  # (T*N, GH)
    gx = xp.reshape(gx, (t_steps, n, -1))
    b_x, b_h = weights.b_ih, weights.b_hh  # added to gx and to gh
    if cell.fold_bias and b_h is not None:
        b_x, b_h = (b_h if b_x is None else b_x + b_h), None
    # (H, GH) as its own row-major copy: BLAS runs the per-step matmul faster on it
    # than on a transposed view (3x at N=8, H=64; 5-25% at H=256, NumPy/OpenBLAS).
    w_hh = weights.w_hh
    w_hh_t = xp.reshape(xp.matrix_transpose(w_hh), (w_hh.shape[1], w_hh.shape[0]), copy=True)
    y, state, steps = ops.forward(cell, gx, w_hh_t, (b_x, b_h), tuple(state0), lengths)
    if mask is not None:
        y = xp.where(mask, y, xp.zeros_like(y))
    cache = ScanCache(x, state0[0], y, steps, lengths, order, reverse, weights)
    if reverse:
        y = _reverse(y, order, xp=xp)
    return y, state, cache


def scan_backward(
    cell: Cell,
    cache: ScanCache,
    dy: Array | None,
    dstate: Sequence[Array | None] | None,
    *,
    xp: ModuleType,
) -> tuple[Array, State, Weights]:
    """Backpropagate through the loop that produced ``cache``.

    Parameters
    ----------
    cell : Cell
        The cell that ran forward.
    cache : ScanCache
        From :func:`scan`.
    dy : array, shape (T, N, H), or None
        Gradient of the loss with respect to ``y`` (None: zero).
    dstate : sequence of (N, H) arrays or None, or None
        Gradient with respect to the final state (None: zero).
    xp : module
        Array namespace.

    Returns
    -------
    dx : array, shape (T, N, I)
        Gradient with respect to ``x``.
    dstate0 : tuple of arrays, each (N, H)
        Gradient with respect to the initial state.
    grads : Weights
        Gradients of the parameters (None where the parameter is None).
    """
    x, h0, y, steps, lengths, order, reverse, w = cache
    ops = ops_for(xp, x.dtype)
    t_steps, n, n_in = x.shape
    zeros = xp.zeros_like(h0)
    d = tuple(zeros for _ in range(cell.n_states))
    if dstate is not None:
        d = tuple(zeros if a is None else a for a in dstate)
    if dy is not None:
        if reverse:
            dy = _reverse(dy, order, xp=xp)
        if lengths is not None:
            dy = xp.where(length_mask(lengths, t_steps, xp=xp), dy, xp.zeros_like(dy))
    dgx_all, dgh_all, d = ops.backward(cell, steps, dy, d, w.w_hh, lengths)

    gh_width, hidden = w.w_hh.shape
    dgx_all = xp.reshape(dgx_all, (t_steps * n, gh_width))  # (T*N, GH)
    dgh_all = dgx_all if dgh_all is None else xp.reshape(dgh_all, (t_steps * n, gh_width))
    x_flat = xp.reshape(x, (t_steps * n, n_in))

    dw_ih = xp.matrix_transpose(dgx_all) @ x_flat  # (GH, I)
    dw_hh = xp.matrix_transpose(dgh_all[:n, ...]) @ h0  # (GH, H): step 0 starts from h0 ...
    if t_steps > 1:  # ... and step t from y[t-1], without concatenating h0 and y
        h_prev = xp.reshape(y[:-1, ...], ((t_steps - 1) * n, hidden))
        dw_hh = dw_hh + xp.matrix_transpose(dgh_all[n:, ...]) @ h_prev
    db_ih = None if w.b_ih is None else xp.sum(dgx_all, axis=0)
    if w.b_hh is None:
        db_hh = None
    elif dgh_all is dgx_all and db_ih is not None:  # the same sum: copy it rather than redo a pass
        db_hh = xp.asarray(db_ih, copy=True)
    else:
        db_hh = xp.sum(dgh_all, axis=0)
    dx = xp.reshape(dgx_all @ w.w_ih, (t_steps, n, n_in))
    if reverse:
        dx = _reverse(dx, order, xp=xp)
    return dx, d, Weights(dw_ih, dw_hh, db_ih, db_hh)


def _reversal_order(lengths: Array, t_steps: int, n: int, *, xp: ModuleType) -> Array:
    """Flat gather index that reverses each sequence within its length, padding in place."""
    steps = xp.arange(t_steps, dtype=lengths.dtype, device=device(lengths))[:, None]  # (T, 1)
    source = xp.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)  # (T, N)
    batch = xp.arange(n, dtype=lengths.dtype, device=device(lengths))[None, :]
    return xp.reshape(source * n + batch, (t_steps * n,))


def _reverse(a: Array, order: Array | None, *, xp: ModuleType) -> Array:
    """Time-reverse ``a (T, N, F)``: whole sequences, or each within its length."""
    if order is None:
        return xp.flip(a, axis=0)
    t_steps, n, f = a.shape
    flat = xp.take(xp.reshape(a, (t_steps * n, f)), order, axis=0)
    return xp.reshape(flat, (t_steps, n, f))
