"""One step's recurrent matmuls around a cell's pointwise step, written once for the array loops.

Every cell's step reads ``gh = h_prev @ W_hh^T`` (a diagonal cell, IndRNN, ``h_prev * u``:
:attr:`~xrnn.cells.base.Cell.diagonal`); a cell with a late matmul
(:class:`~xrnn.cells.base.LateMatmul`, the reset-before GRU) reads its last blocks from a
second matmul after its earlier gates. :func:`step` and :func:`step_backward` do either,
so the generic loop (:class:`~xrnn.engine.ops.Ops`) and the ``lax.scan`` of the JAX
backend share the contract and neither branches on a cell's name.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._util.typing import Array, State
from ..cells import Cell

__all__ = ["late_weight_gradient", "recurrent_weight_gradient", "step", "step_backward", "vector_gradient"]


def step(
    cell: Cell,
    gx_t: Array,
    state: State,
    w_hh_t: Array,
    b_h: Array | None,
    *,
    xp: ModuleType,
    vectors: Array | None = None,
) -> tuple[State, Any]:
    """``cell.step`` at one time step, with its recurrent matmul(s).

    Parameters
    ----------
    cell : Cell
        The cell.
    gx_t : array, shape (N, G*H)
        The step's input pre-activations, input biases included.
    state : tuple of arrays, each (N, H)
        The previous state, ``h`` first.
    w_hh_t : array, shape (H, G*H), or (G*H,) for a diagonal cell
        ``W_hh`` transposed (a diagonal cell's vector ``u`` as it is).
    b_h : array, shape (G*H,), or None
        The bias added after the recurrent matmul(s).
    xp : module
        Array namespace.
    vectors : array, shape (V,), optional
        The cell's per-unit vectors (``cell.vectors``), given to its step.

    Returns
    -------
    new_state, cache_t
        As ``cell.step``.
    """
    late, given = cell.late, _given(cell, vectors)
    if late is None:
        gh = state[0] * w_hh_t if cell.diagonal else state[0] @ w_hh_t  # (N, GH)
        if b_h is not None:
            gh = gh + b_h
        return cell.step(gx_t, gh, state, xp=xp, **given)
    split = w_hh_t.shape[1] - late.gates * (w_hh_t.shape[1] // cell.n_gates)
    gh_early = state[0] @ w_hh_t[:, :split]  # (N, (G - gates) H)
    if b_h is not None:
        gh_early = gh_early + b_h[:split]
    gh_late = late.input(gx_t, gh_early, state, xp=xp) @ w_hh_t[:, split:]  # the second matmul
    if b_h is not None:
        gh_late = gh_late + b_h[split:]
    return cell.step(gx_t, xp.concat([gh_early, gh_late], axis=1), state, xp=xp, **given)


def step_backward(
    cell: Cell, ds: State, cache_t: Any, w_hh: Array, *, xp: ModuleType, vectors: Array | None = None
) -> tuple[Array, Array | None, State]:
    """``cell.step_backward`` at one time step, with the matmul(s) back to ``h_prev``.

    Parameters
    ----------
    cell : Cell
        The cell.
    ds : tuple of arrays, each (N, H)
        Gradient with respect to the step's new state.
    cache_t : step cache
        What the step kept.
    w_hh : array, shape (G*H, H), or (G*H,) for a diagonal cell
        Hidden-to-hidden weights.
    xp : module
        Array namespace.
    vectors : array, shape (V,), optional
        The cell's per-unit vectors, given to its step's backward.

    Returns
    -------
    dgx : array, shape (N, G*H)
        Gradient of the input pre-activations.
    dgh : array, shape (N, G*H), or None
        Gradient of the recurrent pre-activations (None: equal to ``dgx``).
    dstate_prev : tuple of arrays, each (N, H)
        Gradient with respect to the previous state, every path included.
    """
    grads = cell.step_backward(ds, cache_t, xp=xp, **_given(cell, vectors))
    late = cell.late
    split = w_hh.shape[0]
    if late is not None:
        split -= late.gates * (w_hh.shape[0] // cell.n_gates)
        dg = grads[0] if grads[1] is None else grads[1]
        grads = late.backward(dg[:, split:] @ w_hh[split:, ...], cache_t, grads, xp=xp)
    dgx, dgh, direct = grads
    dg = dgx if dgh is None else dgh
    if cell.diagonal:  # W_hh is the per-unit vector u (G*H,)
        dh_prev = dg * w_hh
    else:
        dh_prev = dg[:, :split] @ w_hh[:split, ...] if late is not None else dg @ w_hh  # (N, H)
    if direct[0] is not None:
        dh_prev = dh_prev + direct[0]
    return dgx, dgh, (dh_prev, *direct[1:])


def _given(cell: Cell, vectors: Array | None) -> dict[str, Array]:
    """``{"vectors": vectors}`` for a cell that has them (:attr:`Cell.vectors`), else nothing."""
    if not cell.vectors:
        return {}
    if vectors is None:
        raise TypeError(f"the {cell.name} cell needs its vectors {[k for k, _ in cell.vectors]}")
    return {"vectors": vectors}


def vector_gradient(
    cell: Cell, vectors: Array | None, dgx: Array, steps: Any, *, xp: ModuleType
) -> Array | None:
    """The gradient of the cell's ``vectors`` over ``steps`` (``cell.vector_gradient``), or None."""
    found = cell.vector_gradient
    return None if found is None or vectors is None else found(dgx, steps, xp=xp)


def late_weight_gradient(cell: Cell, dg: Array, steps: Any, *, xp: ModuleType) -> Array:
    """``sum_t dg_late_t^T m_t``, the gradient of ``W_hh``'s late blocks ``(gates*H, H)``.

    ``dg (T, N, G*H)`` are the recurrent gate gradients and ``steps`` the ``T`` step caches
    that hold ``m_t`` (:attr:`~xrnn.cells.base.LateMatmul.kept`).
    """
    late = cell.late
    if late is None:
        raise TypeError(f"the {cell.name} cell has no late matmul")
    t_steps, n, width = dg.shape
    split = width - late.gates * (width // cell.n_gates)
    m = xp.stack([late.kept(s, xp=xp) for s in steps])  # (T, N, H)
    dg_late = xp.reshape(dg[:, :, split:], (t_steps * n, width - split))
    return xp.matrix_transpose(dg_late) @ xp.reshape(m, (t_steps * n, m.shape[2]))


def recurrent_weight_gradient(
    cell: Cell,
    dgh: Array,
    h0: Array,
    h_prev: Array | None,
    *,
    xp: ModuleType,
) -> Array:
    """``dW_hh`` from the recurrent gate gradients and the states each step started from.

    Parameters
    ----------
    cell : Cell
        The cell.
    dgh : array, shape (T*N, G*H)
        Recurrent gate gradients, time-major rows.
    h0 : array, shape (N, H)
        The state step 0 started from.
    h_prev : array, shape ((T-1)*N, H), or None
        The states steps ``1 .. T-1`` started from (None when ``T`` is 1).
    xp : module
        Array namespace.

    Returns
    -------
    array, shape (G*H, H), or (G*H,) for a diagonal cell
        ``sum_t dgh_t^T h_prev_t``, or ``sum_t dgh_t * h_prev_t`` over steps and rows.
    """
    n = h0.shape[0]
    if cell.diagonal:
        dw = xp.sum(dgh[:n, ...] * h0, axis=0)
        return dw if h_prev is None else dw + xp.sum(dgh[n:, ...] * h_prev, axis=0)
    dw = xp.matrix_transpose(dgh[:n, ...]) @ h0  # (GH, H): step 0 starts from h0 ...
    if h_prev is None:
        return dw
    return dw + xp.matrix_transpose(dgh[n:, ...]) @ h_prev  # ... the others from y
