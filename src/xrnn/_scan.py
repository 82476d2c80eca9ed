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

A backend fast path may run the loop itself compiled (``Cell.sequence``: NumPy with
Numba, :mod:`xrnn._numpy_numba`); the projection before it and the weight gradients after
it stay here.

Variable lengths use a ``(T, N, 1)`` mask: a finished sequence keeps its state and
outputs zeros. The reverse direction reverses each sequence within its own length,
runs the same loop, and reverses back.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import device, is_numpy_namespace

__all__ = ["Cell", "ScanCache", "Weights", "fast_cell", "scan", "scan_backward"]

Array = Any
State = tuple[Array, ...]


@dataclass(frozen=True)
class Cell:
    """The pointwise maths of one recurrent cell, forward and backward.

    Attributes
    ----------
    name : str
        Short name (``"lstm"``, ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"``).
    n_gates : int
        G, the number of ``H``-wide blocks in ``W_ih`` and ``W_hh``.
    n_states : int
        1 for ``(h,)``, 2 for ``(h, c)``; ``h`` always comes first.
    fold_bias : bool
        True when ``b_hh`` enters only as ``gx + gh`` and may be added to the hoisted
        input projection instead of at every step.
    step : callable
        ``step(gx, gh, state, *, xp) -> (new_state, cache_t)`` with ``gx``, ``gh`` of
        shape ``(N, G*H)`` and states ``(N, H)``.
    step_backward : callable
        ``step_backward(dstate, cache_t, *, xp) -> (dgx, dgh, direct)``: gradients of the
        input and recurrent pre-activations (``dgh`` None when equal to ``dgx``), and of
        the previous state by paths other than ``W_hh`` (an entry None when there are none).
    alloc : callable or None
        None in the generic cells. A backend fast path that writes into buffers of its
        own (:mod:`xrnn._numpy_numba`) sets ``alloc(t_steps, like, backward)``, called once per
        sequence. Forward it returns ``(y, kept)``, ``y (T, N, H)`` and ``kept (T, ...)``;
        step ``t`` gets ``out=(y[t], kept[t])`` for its new ``h`` and the rest of its cache,
        and ``bias=(b_x, b_h)``, ``(G*H,)`` each, to add to ``gx`` and ``gh`` itself (no
        separate pass); ``y`` becomes the output without stacking the steps. Backward it
        returns ``(D, T, N, G*H)``, dgx (and dgh when ``D = 2``); step ``t`` gets
        ``out=buffer[:, t]`` and the loop uses the buffer whole instead of stacking.
    project : callable or None
        None in the generic cells; a fast path's ``project(x_flat, w_ih) -> gx``, the
        hoisted ``x_flat @ w_ih^T`` computed into a buffer it reuses across calls.
    sequence : callable or None
        None in the generic cells. A fast path that runs the whole time loop compiled sets
        ``sequence(gx, w_hh_t, (b_x, b_h), state0, lengths) -> (y, state, steps)``, used in
        place of the loop below: ``gx (T, N, G*H)`` without biases, ``w_hh_t (H, G*H)``,
        ``lengths (N,)`` or None; ``y`` holds each sequence's last state past its length (the
        scan zeroes it there) and ``steps`` are the ``T`` step caches, as ``step`` makes them
        (but in rows past each length, which backward does not read).
    sequence_backward : callable or None
        Its backward, ``sequence_backward(steps, dy, dstate, w_hh, lengths) -> (dgx, dgh,
        dstate0)`` with ``dgx``, ``dgh`` of shape ``(T, N, G*H)`` (``dgh`` None when equal to
        ``dgx``); ``steps`` may come from either forward.
    """

    name: str
    n_gates: int
    n_states: int
    fold_bias: bool
    step: Callable[..., tuple[State, Any]]
    step_backward: Callable[..., tuple[Array, Array | None, tuple[Array | None, ...]]]
    alloc: Callable[..., Array] | None = None
    project: Callable[[Array, Array], Array] | None = None
    sequence: Callable[..., tuple[Array, State, Sequence[Any]]] | None = None
    sequence_backward: Callable[..., tuple[Array, Array | None, State]] | None = None


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
    steps: Sequence[Any]  # T cell caches
    mask: Array | None  # (T, N, 1) bool, or None when every sequence is full length
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
    cell = fast_cell(cell, x, xp=xp)
    t_steps, n, _ = x.shape
    mask = None if lengths is None else _mask(lengths, t_steps, xp=xp)
    order = None
    if reverse:
        order = None if lengths is None else _reversal_order(lengths, t_steps, n, xp=xp)
        x = _reverse(x, order, xp=xp)
    y, state, steps = _forward_loop(cell, x, tuple(state0), weights, mask, lengths, xp=xp)
    cache = ScanCache(x, state0[0], y, steps, mask, order, reverse, weights)
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
    x, h0, y, steps, mask, order, reverse, w = cache
    cell = fast_cell(cell, x, xp=xp)
    t_steps, n, n_in = x.shape
    zeros = xp.zeros_like(h0)
    d = tuple(zeros for _ in range(cell.n_states))
    if dstate is not None:
        d = tuple(zeros if a is None else a for a in dstate)
    if dy is not None:
        if reverse:
            dy = _reverse(dy, order, xp=xp)
        if mask is not None:
            dy = xp.where(mask, dy, xp.zeros_like(dy))

    if cell.sequence_backward is not None:
        lengths = None if mask is None else xp.sum(xp.astype(mask[..., 0], xp.int64), axis=0)  # (N,)
        dgx_all, dgh_all, d = cell.sequence_backward(steps, dy, d, w.w_hh, lengths)
    else:
        dgx_all, dgh_all, d = _backward_loop(cell, steps, dy, d, w.w_hh, mask, xp=xp)

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


def fast_cell(cell: Cell, x: Array, *, xp: ModuleType) -> Cell:
    """The one place where a backend fast path takes over a cell's pointwise step.

    NumPy arrays of float32 or float64 get the fused kernels of :mod:`xrnn._numpy_numba` when
    numba is installed and the environment variable ``XRNN_NUMBA`` is not ``0``; every
    other case keeps ``cell``. Either way the results are the same (tests/test_fastpath.py).
    """
    if not is_numpy_namespace(xp) or os.environ.get("XRNN_NUMBA") == "0":
        return cell
    fast = _numba_module()
    return cell if fast is None else fast.fused(cell, x.dtype)


@functools.cache
def _numba_module() -> ModuleType | None:
    try:
        from . import _numpy_numba
    except ImportError:
        return None
    return _numpy_numba


def _forward_loop(
    cell: Cell,
    x: Array,
    state: State,
    w: Weights,
    mask: Array | None,
    lengths: Array | None,
    *,
    xp: ModuleType,
) -> tuple[Array, State, Sequence[Any]]:
    t_steps, n, n_in = x.shape
    x_flat = xp.reshape(x, (t_steps * n, n_in))
    if cell.project is None:
        gx = x_flat @ xp.matrix_transpose(w.w_ih)  # (T*N, GH)
    else:
        gx = cell.project(x_flat, w.w_ih)
    b_x, b_h = w.b_ih, w.b_hh  # added to gx and to gh
    if cell.fold_bias and b_h is not None:
        b_x, b_h = (b_h if b_x is None else b_x + b_h), None
    # (H, GH) as its own row-major copy: BLAS runs the per-step matmul faster on it
    # than on a transposed view (3x at N=8, H=64; 5-25% at H=256, NumPy/OpenBLAS).
    w_hh_t = xp.reshape(xp.matrix_transpose(w.w_hh), (w.w_hh.shape[1], w.w_hh.shape[0]), copy=True)
    if cell.sequence is not None:
        y, state, steps = cell.sequence(xp.reshape(gx, (t_steps, n, -1)), w_hh_t, (b_x, b_h), state, lengths)
        return (y if mask is None else xp.where(mask, y, xp.zeros_like(y))), state, steps
    store = y = None
    if cell.alloc is not None:
        y, store = cell.alloc(t_steps, state[0], backward=False)
    if store is None and b_x is not None:
        gx = gx + b_x  # hoisted: one pass for all steps (a fast path's kernel adds it itself)
    gx = xp.reshape(gx, (t_steps, n, -1))  # (T, N, GH)
    if store is not None:
        zero = xp.zeros((w.w_hh.shape[0],), dtype=gx.dtype, device=device(gx))
        biases = (zero if b_x is None else b_x, zero if b_h is None else b_h)

    outputs, steps = [], []
    for t in range(t_steps):
        gh = state[0] @ w_hh_t  # (N, GH)
        if store is None:
            if b_h is not None:
                gh = gh + b_h
            new, cache_t = cell.step(gx[t, ...], gh, state, xp=xp)
        else:
            out = (y[t, ...], store[t, ...])
            new, cache_t = cell.step(gx[t, ...], gh, state, xp=xp, out=out, bias=biases)
        if mask is not None:
            m = mask[t, ...]
            new = tuple(xp.where(m, a, b) for a, b in zip(new, state))
        if store is None:
            outputs.append(new[0])
        steps.append(cache_t)
        state = new
    if store is None:
        y = xp.stack(outputs)  # (T, N, H); else the fast path wrote it (zeroed below if masked)
    if mask is not None:
        y = xp.where(mask, y, xp.zeros_like(y))
    return y, state, steps


def _backward_loop(
    cell: Cell,
    steps: Sequence[Any],
    dy: Array | None,
    d: State,
    w_hh: Array,
    mask: Array | None,
    *,
    xp: ModuleType,
) -> tuple[Array, Array | None, State]:
    """The loop of :func:`scan_backward`: ``(dgx (T, N, GH), dgh or None, dstate0)``."""
    t_steps = len(steps)
    zeros = xp.zeros_like(d[0])
    store = None if cell.alloc is None else cell.alloc(t_steps, d[0], backward=True)
    dgxs, dghs = [], []
    for t in range(t_steps - 1, -1, -1):
        ds = d if dy is None else (d[0] + dy[t, ...], *d[1:])
        if mask is not None:
            m = mask[t, ...]
            ds_cell = tuple(xp.where(m, a, zeros) for a in ds)
        else:
            ds_cell = ds
        out = {} if store is None else {"out": store[:, t, ...]}
        dgx, dgh, direct = cell.step_backward(ds_cell, steps[t], xp=xp, **out)
        dh_prev = (dgx if dgh is None else dgh) @ w_hh  # (N, H)
        if direct[0] is not None:
            dh_prev = dh_prev + direct[0]
        d = (dh_prev, *direct[1:])
        if mask is not None:
            d = tuple(xp.where(m, a, b) for a, b in zip(d, ds))
        if store is None:
            dgxs.append(dgx)
            if dgh is not None:
                dghs.append(dgh)
    if store is not None:
        return store[0, ...], (store[1, ...] if store.shape[0] > 1 else None), d
    return xp.stack(dgxs[::-1]), (xp.stack(dghs[::-1]) if dghs else None), d  # (T, N, GH)


def _mask(lengths: Array, t_steps: int, *, xp: ModuleType) -> Array:
    """``mask[t, n, 0]`` is True where step ``t`` is inside sequence ``n``."""
    steps = xp.arange(t_steps, dtype=lengths.dtype, device=device(lengths))
    return (steps[:, None] < lengths[None, :])[:, :, None]  # (T, N, 1)


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
