"""Compiled loops of the cells with a late matmul (:class:`~xrnn.cells.base.LateMatmul`).

The reset-before GRU (:mod:`xrnn.cells.gru_reset_before`): per step two ``gemm`` calls
and two fused kernels each way, from the cell's scalar maths::

    forward   gh_early = h_prev @ W_early^T      m = r * h_prev           (kernel 1)
              gh_n = m @ U_n^T                   r, z, n, h               (kernel 2)
    backward  dz, dn, dh * z                     (kernel 1)
              dm = dn @ U_n                      dr, direct + dm * r      (kernel 2)
              dh_prev = [dr, dz] @ W_early + direct

``W_early (2H, H)`` and ``U_n (H, H)`` are row blocks of ``W_hh``; their transposes are
copied once per sequence so that every ``gemm`` reads C-contiguous operands. Buffers as in
:mod:`.loops`: ``y (T, N, H)`` and ``kept (T, 3, N, H)`` with ``r, z, n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._util.typing import Array
from ...cells import gru_reset_before
from ..layout import LAYOUTS
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .compile import inline, jit
from .loops import call_gemm, carry, clear, upstream

__all__ = ["LAYOUT", "gru_reset_before_sequence", "gru_reset_before_sequence_backward", "no_step"]

_step, _step_backward = (inline(f) for f in gru_reset_before.scalar_step(_sigmoid, _tanh))
_late, _late_backward = (inline(f) for f in gru_reset_before.late_scalar_step(_sigmoid, _tanh))


@jit
def _input(gx: Array, gh: Array, bx: Array, bh: Array, h_prev: Array, m: Array) -> None:
    """``m = sigmoid(gx_r + bx_r + gh_r + bh_r) * h_prev`` (N, H); ``gh (N, 2H)``."""
    rows, hidden = m.shape
    one = m.dtype.type(1)
    for b in range(rows):
        x, y, m_b = gx[b], gh[b], m[b]
        for j in range(hidden):
            m_b[j] = _late(one, x[j] + bx[j], y[j] + bh[j], h_prev[b, j])


@jit
def _finish(
    gx: Array, gh: Array, gh_n: Array, bx: Array, bh: Array, h_prev: Array, h: Array, out: Array
) -> None:
    """``h``, and ``out (3, N, H)``: ``r, z, n``, from ``gh (N, 2H)`` and ``gh_n = U_n m`` (N, H)."""
    rows, hidden = h.shape
    one = h.dtype.type(1)
    bx, bh = bx.reshape((3, hidden)), bh.reshape((3, hidden))
    for b in range(rows):
        x, y, y_n = gx[b].reshape((3, hidden)), gh[b].reshape((2, hidden)), gh_n[b]
        r_b, z_b, n_b, h_b = out[0, b], out[1, b], out[2, b], h[b]
        for j in range(hidden):
            r, z, n, h_j = _step(
                one,
                x[0, j] + bx[0, j],
                x[1, j] + bx[1, j],
                x[2, j] + bx[2, j],
                y[0, j] + bh[0, j],
                y[1, j] + bh[1, j],
                y_n[j] + bh[2, j],
                h_prev[b, j],
            )
            r_b[j], z_b[j], n_b[j], h_b[j] = r, z, n, h_j


@jit
def _gates_backward(
    dh: Array, r: Array, z: Array, n: Array, h_prev: Array, dg: Array, dn: Array, direct: Array
) -> None:
    """``dg[:, H:] = [dz, dn]``, ``dn`` apart, ``direct = dh * z``; ``dg (N, 3H)``."""
    rows, hidden = dh.shape
    one = dh.dtype.type(1)
    for b in range(rows):
        g = dg[b].reshape((3, hidden))
        dz_b, dn_b, dn_apart, direct_b = g[1], g[2], dn[b], direct[b]
        for j in range(hidden):
            dz, d_n, direct_b[j] = _step_backward(one, dh[b, j], r[b, j], z[b, j], n[b, j], h_prev[b, j])
            dz_b[j], dn_b[j], dn_apart[j] = dz, d_n, d_n


@jit
def _late_gates_backward(dm: Array, r: Array, h_prev: Array, dg: Array, early: Array, direct: Array) -> None:
    """``dg[:, :H] = dr``, ``early = [dr, dz]`` (N, 2H), ``direct += dm * r``."""
    rows, hidden = dm.shape
    one = dm.dtype.type(1)
    for b in range(rows):
        g, e = dg[b].reshape((3, hidden)), early[b].reshape((2, hidden))
        dr_b, dz_b, e_r, e_z, direct_b = g[0], g[1], e[0], e[1], direct[b]
        for j in range(hidden):
            dr, direct_b[j] = _late_backward(one, dm[b, j], r[b, j], h_prev[b, j], direct_b[j])
            dr_b[j], e_r[j], e_z[j] = dr, dr, dz_b[j]


@jit
def _step_gemm(gemm, t, lengths, gx, w_early_t, w_late_t, bx, bh, h_prev, h, kept, gh, m, gh_n):  # type: ignore
    call_gemm(gemm, h_prev, w_early_t, 0.0, gh)  # (N, 2H)
    _input(gx, gh, bx, bh, h_prev, m)
    call_gemm(gemm, m, w_late_t, 0.0, gh_n)  # the second matmul (N, H)
    _finish(gx, gh, gh_n, bx, bh, h_prev, h, kept)
    carry(t, lengths, h_prev, h)


@jit
def _sequence(gemm, lengths, gx, w_early_t, w_late_t, bx, bh, h0, y, kept, gh, m, gh_n):  # type: ignore
    _step_gemm(gemm, 0, lengths, gx[0], w_early_t, w_late_t, bx, bh, h0, y[0], kept[0], gh, m, gh_n)
    for t in range(1, gx.shape[0]):
        _step_gemm(gemm, t, lengths, gx[t], w_early_t, w_late_t, bx, bh, y[t - 1], y[t], kept[t], gh, m, gh_n)


@jit
def _sequence_backward(gemm, lengths, dy, dh, kept, h0, y, w_early, w_late, dg):  # type: ignore
    ds, direct = np.empty_like(dh), np.empty_like(dh)
    dn, dm = np.empty_like(dh), np.empty_like(dh)
    early = np.empty((dh.shape[0], 2 * dh.shape[1]), dh.dtype)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        h_prev = h0 if t == 0 else y[t - 1]
        _gates_backward(d, kept[t, 0], kept[t, 1], kept[t, 2], h_prev, dg[t], dn, direct)
        clear(t, lengths, dn)
        call_gemm(gemm, dn, w_late, 0.0, dm)  # the second matmul back (N, H)
        _late_gates_backward(dm, kept[t, 0], h_prev, dg[t], early, direct)
        clear(t, lengths, dg[t])
        clear(t, lengths, early)
        call_gemm(gemm, early, w_early, 1.0, direct)  # dh_prev = [dr, dz] @ W_early + direct
        carry(t, lengths, d, direct)
        dh, direct = direct, dh
    return dh


def gru_reset_before_sequence(gemm: int, lengths: Array, gx: Array, w_hh_t: Array, *rest: Any) -> None:
    """Forward over ``T`` steps (the signature of :attr:`.table.CellKernels.sequence`)."""
    b_x, b_h, state0, y, kept, gh = rest
    hidden = y.shape[2]
    w_early_t = np.ascontiguousarray(w_hh_t[:, : 2 * hidden])  # (H, 2H)
    w_late_t = np.ascontiguousarray(w_hh_t[:, 2 * hidden :])  # (H, H)
    n = y.shape[1]
    gh_early, m, gh_n = (np.empty((n, w), y.dtype) for w in (2 * hidden, hidden, hidden))
    _sequence(gemm, lengths, gx, w_early_t, w_late_t, b_x, b_h, state0[0], y, kept, gh_early, m, gh_n)


def gru_reset_before_sequence_backward(
    gemm: int, lengths: Array, dy: Array, d: Any, y: Array, kept: Array, first: Array, w_hh: Array, dg: Array
) -> tuple[Array, ...]:
    """Backward over ``T`` steps (the signature of :attr:`.table.CellKernels.sequence_backward`)."""
    hidden = w_hh.shape[1]
    w_early, w_late = (np.ascontiguousarray(w) for w in (w_hh[: 2 * hidden], w_hh[2 * hidden :]))
    return (_sequence_backward(gemm, lengths, dy, d[0], kept, first, y, w_early, w_late, dg[0]),)


def no_step(*args: Any) -> Any:
    """The per-step kernels a late-matmul cell does not have (:class:`~.ops.NumbaOps` runs it compiled)."""
    raise TypeError("a cell with a late matmul has no per-step kernel: it runs compiled or generic")


#: The step-cache layout: ``kept[t] = r, z, n``, ``h_prev`` in ``y[t - 1]``.
LAYOUT = LAYOUTS["gru_reset_before"]
