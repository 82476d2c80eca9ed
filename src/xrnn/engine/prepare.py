"""One direction's weights in the form the time loop reads them, made once per set of weights."""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from .._util.typing import Array
from ..cells import Cell

__all__ = ["Prepared", "prepare"]


class Prepared(NamedTuple):
    """What an :class:`~xrnn.engine.ops.Ops` loop is given besides ``gx``: biases and ``W_hh^T``.

    ``biases`` is ``(b_x, b_h)``, each ``(G*H,)`` or None (``b_hh`` folded into ``b_x`` where
    the cell allows); ``w_hh_t`` is ``W_hh^T (H, G*H)``, a row-major copy, or a diagonal
    cell's ``u (G*H,)`` as it is.
    """

    biases: tuple[Array | None, Array | None]
    w_hh_t: Array


def prepare(cell: Cell, w_hh: Array, b_ih: Array | None, b_hh: Array | None, *, xp: ModuleType) -> Prepared:
    """``W_hh`` and the biases of one direction as the forward loop reads them.

    Parameters
    ----------
    cell : Cell
        The cell (``cell.fold_bias``: whether ``b_hh`` may be added to ``b_ih``).
    w_hh : array, shape (G*H, H), or (G*H,) for a diagonal cell (``cell.diagonal``)
        Hidden-to-hidden weights.
    b_ih, b_hh : array, shape (G*H,), or None
        The biases.

    Returns
    -------
    Prepared
        ``W_hh^T (H, G*H)`` is its own row-major copy: BLAS runs the per-step matmul faster
        on it than on a transposed view (3x at N=8, H=64; 5-25% at H=256, NumPy/OpenBLAS).
    """
    b_x, b_h = b_ih, b_hh
    if cell.fold_bias and b_h is not None:
        b_x, b_h = (b_h if b_x is None else b_x + b_h), None
    if cell.diagonal:  # u (G*H,): no matmul to lay out for
        return Prepared((b_x, b_h), w_hh)
    gates, hidden = w_hh.shape
    w_hh_t = xp.reshape(xp.matrix_transpose(w_hh), (hidden, gates), copy=True)
    return Prepared((b_x, b_h), w_hh_t)
