"""The linear recurrence ``h_t = a_t * h_{t-1} + b_t``, sequential or as a parallel scan.

Composing two steps gives a step of the same form,
``(a_1, b_1) then (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``, an associative operation, so
the recurrence is a scan. :func:`doubling_scan` is the Hillis-Steele form: after round
``r`` each position holds the composition of the ``2^r`` steps ending there, so
``ceil(log2 T)`` rounds of elementwise products over the whole ``(T, ...)`` array give
every ``h_t``, with no per-step Python and no division (a product of ``a`` that underflows
is simply 0). :class:`LinearOps` is the sequential loop, which a backend replaces with a
compiled one (:func:`xrnn.backends.linear_ops_for`).

Backward is the same recurrence run in reverse time: with ``dh_t`` the gradient of the
loss reaching ``h_t`` from outside the recurrence, the total gradient is
``G_t = dh_t + a_{t+1} G_{t+1}``, and then ``da_t = G_t h_{t-1}``, ``db_t = G_t``,
``dh_0 = a_1 G_1`` (:func:`recurrence_backward`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from array_api_compat import device

from .._util.typing import Array
from ..cells.minimal import MinCell, MinStep

__all__ = ["BLOCK", "LinearOps", "doubling_scan", "recurrence", "recurrence_backward"]


class LinearOps:
    """The sequential form of the inclusive scan ``h_t = a_t h_{t-1} + b_t`` (``h_{-1} = 0``).

    Parameters
    ----------
    xp : module
        The array namespace of every array this object is given.
    """

    name = "generic"

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def coefficients(self, cell: MinCell, gates: Array) -> tuple[Array, Array, MinStep]:
        """``cell.coefficients(gates)``; a backend may fuse it (same results, same cache).

        Parameters
        ----------
        cell : MinCell
            minGRU or minLSTM.
        gates : array, shape (T, N, G*H)
            Pre-activations.

        Returns
        -------
        a, b : array, shape (T, N, H)
        cache : MinStep
        """
        return cell.coefficients(gates, xp=self.xp)

    def coefficients_backward(self, cell: MinCell, da: Array, db: Array, cache: MinStep) -> Array:
        """``cell.coefficients_backward(da, db, cache)``; a backend may fuse it.

        Parameters
        ----------
        cell : MinCell
            minGRU or minLSTM.
        da, db : array, shape (T, N, H)
            Gradients of the coefficients.
        cache : MinStep
            Third result of :meth:`coefficients`.

        Returns
        -------
        array, shape (T, N, G*H)
        """
        return cell.coefficients_backward(da, db, cache, xp=self.xp)

    def sequential(self, a: Array, b: Array) -> Array:
        """Run the recurrence step by step.

        Parameters
        ----------
        a, b : array, shape (T, ...)
            Coefficients of every step.

        Returns
        -------
        array, shape (T, ...)
            ``h_t`` of every step, from ``h_{-1} = 0``.
        """
        h = b[0, ...]
        out = [h]
        for t in range(1, a.shape[0]):
            h = a[t, ...] * h + b[t, ...]
            out.append(h)
        return self.xp.stack(out)

    def recurrence(self, a: Array, b: Array, h0: Array) -> Array:
        """:func:`recurrence` sequentially; a backend may run it in one compiled pass.

        Parameters
        ----------
        a, b : array, shape (T, N, H)
            Coefficients of every step.
        h0 : array, shape (N, H)
            The state before the first step.

        Returns
        -------
        array, shape (T, N, H)
        """
        first = a[0, ...] * h0 + b[0, ...]
        return self.sequential(a, self.xp.concat([first[None, ...], b[1:, ...]], axis=0))

    def recurrence_backward(
        self, a: Array, h_prev: Array, dh: Array, dh_last: Array
    ) -> tuple[Array, Array, Array]:
        """:func:`recurrence_backward` sequentially; a backend may run it in one compiled pass.

        Parameters
        ----------
        a, h_prev, dh : array, shape (T, N, H)
            As :func:`recurrence_backward`.
        dh_last : array, shape (N, H)
            Gradient with respect to the last ``h``.

        Returns
        -------
        da, db : array, shape (T, N, H)
        dh0 : array, shape (N, H)
        """
        return _reverse(a, h_prev, dh, dh_last, scan=self.recurrence, xp=self.xp)


#: Steps per block of :func:`doubling_scan`: its rounds over the whole array are ``log2`` of it.
BLOCK = 8


def doubling_scan(a: Array, b: Array, *, xp: ModuleType) -> Array:
    """The inclusive scan ``h_t = a_t h_{t-1} + b_t`` (``h_{-1} = 0``) in ``O(log T)`` rounds.

    Blocked in two levels, so that the rounds over the whole array are ``log2`` of the
    block, not of ``T``: a doubling scan within each block of :data:`BLOCK` steps (all
    blocks at once) gives each step's composition ``(A, B)`` from its block's start; a
    doubling scan over the blocks' last compositions gives the state at every block's
    end; one elementwise pass ``h = B + A * h_end`` of the block before finishes. The
    same compositions as the plain doubling scan, in another grouping (equal up to rounding).

    Parameters
    ----------
    a, b : array, shape (T, ...)
        Coefficients of every step.
    xp : module
        Array namespace.

    Returns
    -------
    array, shape (T, ...)
        ``h_t`` of every step: what :meth:`LinearOps.sequential` returns, up to rounding.
    """
    t_steps, rest = a.shape[0], tuple(a.shape[1:])
    if t_steps <= 2 * BLOCK:
        return _doubling(a, b, axis=0, xp=xp)[1]
    pad = -t_steps % BLOCK  # steps of a = 1, b = 0 change nothing: the scan of T + pad steps
    if pad:
        a = xp.concat([a, xp.ones((pad, *rest), dtype=a.dtype, device=device(a))], axis=0)
        b = xp.concat([b, xp.zeros((pad, *rest), dtype=b.dtype, device=device(b))], axis=0)
    blocks = (t_steps + pad) // BLOCK
    a_in, b_in = _doubling(
        xp.reshape(a, (blocks, BLOCK, *rest)), xp.reshape(b, (blocks, BLOCK, *rest)), axis=1, xp=xp
    )  # (blocks, BLOCK, ...): each step composed from its block's start
    ends = doubling_scan(a_in[:, -1, ...], b_in[:, -1, ...], xp=xp)  # the state at each block's end
    before = xp.concat([xp.zeros_like(ends[:1, ...]), ends[:-1, ...]], axis=0)[:, None, ...]
    h = xp.reshape(b_in + a_in * before, (blocks * BLOCK, *rest))
    return h[:t_steps, ...] if pad else h


def _doubling(a: Array, b: Array, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """Hillis-Steele along ``axis`` (0 or 1): every position's composition ``(A, B)`` from the start."""
    length, shift = a.shape[axis], 1

    def cut(v: Array, start: int | None, stop: int | None) -> Array:
        return v[start:stop, ...] if axis == 0 else v[:, start:stop, ...]

    while shift < length:
        # position t composes (A, B) of t - shift (earlier) with its own: (A_t A_s, A_t B_s + B_t)
        late = cut(a, shift, None)
        b = xp.concat([cut(b, None, shift), late * cut(b, None, -shift) + cut(b, shift, None)], axis=axis)
        a = xp.concat([cut(a, None, shift), late * cut(a, None, -shift)], axis=axis)
        shift *= 2
    return a, b


def recurrence(a: Array, b: Array, h0: Array, *, parallel: bool, ops: LinearOps, xp: ModuleType) -> Array:
    """``h_t = a_t h_{t-1} + b_t`` from ``h0``, every ``h_t``.

    Parameters
    ----------
    a, b : array, shape (T, N, H)
        Coefficients of every step.
    h0 : array, shape (N, H)
        The state before the first step.
    parallel : bool
        The doubling scan (True) or the sequential loop of ``ops`` (False).
    ops : LinearOps
        The sequential loop.
    xp : module
        Array namespace.

    Returns
    -------
    array, shape (T, N, H)
    """
    if not parallel:
        return ops.recurrence(a, b, h0)
    first = a[0, ...] * h0 + b[0, ...]
    return doubling_scan(a, xp.concat([first[None, ...], b[1:, ...]], axis=0), xp=xp)


def recurrence_backward(
    a: Array, h_prev: Array, dh: Array, dh_last: Array, *, parallel: bool, ops: LinearOps, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """Gradients of :func:`recurrence`: a reverse scan of the same form.

    Parameters
    ----------
    a : array, shape (T, N, H)
        The coefficients of ``h_{t-1}``.
    h_prev : array, shape (T, N, H)
        ``h_{t-1}`` of every step (``h0`` first).
    dh : array, shape (T, N, H)
        Gradient of the loss reaching each ``h_t`` from outside the recurrence.
    dh_last : array, shape (N, H)
        Gradient of the loss with respect to the last ``h``.
    parallel : bool
        The doubling scan (True) or the sequential loop of ``ops`` (False).
    ops : LinearOps
        The sequential loop.
    xp : module
        Array namespace.

    Returns
    -------
    da, db : array, shape (T, N, H)
    dh0 : array, shape (N, H)
    """
    if not parallel:
        return ops.recurrence_backward(a, h_prev, dh, dh_last)

    def scan(a: Array, b: Array, h0: Array) -> Array:
        return recurrence(a, b, h0, parallel=True, ops=ops, xp=xp)

    return _reverse(a, h_prev, dh, dh_last, scan=scan, xp=xp)


def _reverse(
    a: Array, h_prev: Array, dh: Array, dh_last: Array, *, scan: Any, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """:func:`recurrence_backward` through ``scan(a, b, h0)``, the forward recurrence, in reverse time."""
    a_next = xp.concat([a[1:, ...], xp.ones_like(a[:1, ...])], axis=0)  # a_{t+1}; 1 carries dh_last in
    total = xp.flip(scan(xp.flip(a_next, axis=0), xp.flip(dh, axis=0), dh_last), axis=0)
    return total * h_prev, total, a[0, ...] * total[0, ...]
