"""The sequential linear recurrence ``h_t = a_t h_{t-1} + b_t`` compiled: minGRU's and minLSTM's loop.

One pass over memory, in place of the generic loop's ``T`` Python steps
(:class:`xrnn.engine.linear_scan.LinearOps`); the parallel doubling scan needs no backend.
The cells' coefficients (:mod:`xrnn.cells.minimal`) are fused too: one pass forward and
one backward in place of about twenty array operations, the same equations and the same
cache.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...cells.minimal import MinCell, MinStep
from ...engine.linear_scan import LinearOps
from .activations import sigmoid
from .compile import inline, jit

__all__ = ["NumbaLinearOps"]


def _sequential(a: Any, b: Any, out: Any) -> None:  # pragma: no cover (compiled)
    t_steps, m = a.shape
    for j in range(m):
        out[0, j] = b[0, j]
    for t in range(1, t_steps):
        for j in range(m):
            out[t, j] = a[t, j] * out[t - 1, j] + b[t, j]


def _recurrence(a: Any, b: Any, h0: Any, out: Any) -> None:  # pragma: no cover (compiled)
    t_steps, m = a.shape
    for j in range(m):
        out[0, j] = a[0, j] * h0[j] + b[0, j]
    for t in range(1, t_steps):
        a_t, b_t, out_t, out_p = a[t], b[t], out[t], out[t - 1]
        for j in range(m):
            out_t[j] = a_t[j] * out_p[j] + b_t[j]


def _recurrence_backward(
    a: Any, h_prev: Any, dh: Any, dh_last: Any, da: Any, db: Any, dh0: Any
) -> None:  # pragma: no cover
    # G_t = dh_t + a_{t+1} G_{t+1} (G_{T-1} = dh_{T-1} + dh_last): db = G, da = G h_{t-1}, dh0 = a_0 G_0
    t_steps, m = a.shape
    last = t_steps - 1
    for j in range(m):
        g = dh[last, j] + dh_last[j]
        db[last, j], da[last, j] = g, g * h_prev[last, j]
    for t in range(last - 1, -1, -1):
        a_n, dh_t, db_n, db_t, da_t, hp_t = a[t + 1], dh[t], db[t + 1], db[t], da[t], h_prev[t]
        for j in range(m):
            g = dh_t[j] + a_n[j] * db_n[j]
            db_t[j], da_t[j] = g, g * hp_t[j]
    for j in range(m):
        dh0[j] = a[0, j] * db[0, j]


_SEQUENTIAL = jit(_sequential)
_RECURRENCE = jit(_recurrence)
_RECURRENCE_BACKWARD = jit(_recurrence_backward)
_sigmoid = inline(sigmoid.py_func)


def _gru_coefficients(gates: Any, a: Any, b: Any, z: Any, gp: Any, dgp: Any) -> None:  # pragma: no cover
    # sigmoid(-u) and sigmoid(u) are exp(-softplus(u)) and exp(u - softplus(u)) (the cell's
    # log-space forms), each from exp(-|u|): no cancellation in either tail, and vectorised
    rows, hidden = a.shape
    one, half = a.dtype.type(1), a.dtype.type(0.5)
    for r in range(rows):
        row, a_r, b_r, z_r, gp_r, dgp_r = gates[r], a[r], b[r], z[r], gp[r], dgp[r]
        for j in range(hidden):
            u, p = row[j], row[hidden + j]
            z_ = _sigmoid(u)
            s = _sigmoid(p)
            g_ = p + half if p >= 0 else s
            a_r[j], z_r[j], gp_r[j] = _sigmoid(-u), z_, g_
            dgp_r[j] = one if p >= 0 else s * (one - s)
            b_r[j] = z_ * g_


def _lstm_coefficients(
    gates: Any, a: Any, b: Any, z: Any, gp: Any, dgp: Any, s_f: Any, s_i: Any
) -> None:  # pragma: no cover
    rows, hidden = a.shape
    one, half = a.dtype.type(1), a.dtype.type(0.5)
    for r in range(rows):
        for j in range(hidden):
            k_f, k_i, p = gates[r, j], gates[r, hidden + j], gates[r, 2 * hidden + j]
            e_f, e_i = math.exp(-abs(k_f)), math.exp(-abs(k_i))
            # u = softplus(-k_f) - softplus(-k_i), softplus(x) = max(x, 0) + log1p(exp(-|x|))
            u = (max(-k_f, k_f - k_f) + math.log1p(e_f)) - (max(-k_i, k_i - k_i) + math.log1p(e_i))
            s_f[r, j] = _sigmoid(-k_f)
            s_i[r, j] = _sigmoid(-k_i)
            z_ = _sigmoid(u)
            s = _sigmoid(p)
            g_ = p + half if p >= 0 else s
            a[r, j], z[r, j], gp[r, j] = _sigmoid(-u), z_, g_
            dgp[r, j] = one if p >= 0 else s * (one - s)
            b[r, j] = z_ * g_


def _coefficients_backward(
    da: Any, db: Any, a: Any, z: Any, gp: Any, dgp: Any, lstm: bool, s_f: Any, s_i: Any, out: Any
) -> None:  # pragma: no cover
    rows, hidden = a.shape
    for r in range(rows):
        for j in range(hidden):
            du = (db[r, j] * gp[r, j] - da[r, j]) * z[r, j] * a[r, j]
            dp = db[r, j] * z[r, j] * dgp[r, j]
            if lstm:
                out[r, j] = -du * s_f[r, j]
                out[r, hidden + j] = du * s_i[r, j]
                out[r, 2 * hidden + j] = dp
            else:
                out[r, j] = du
                out[r, hidden + j] = dp


_GRU_COEFFICIENTS = jit(_gru_coefficients)
_LSTM_COEFFICIENTS = jit(_lstm_coefficients)
_COEFFICIENTS_BACKWARD = jit(_coefficients_backward)


def _rows(a: Any) -> Any:
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


class NumbaLinearOps(LinearOps):
    """:class:`~xrnn.engine.linear_scan.LinearOps` with the loop compiled by Numba (NumPy arrays).

    Parameters
    ----------
    xp : module
        A NumPy namespace.
    """

    name = "numba"

    def coefficients(self, cell: MinCell, gates: Any) -> tuple[Any, Any, MinStep]:
        """The cell's coefficients in one compiled pass (see :meth:`LinearOps.coefficients`).

        Parameters
        ----------
        cell : MinCell
            minGRU or minLSTM.
        gates : array, shape (T, N, G*H)
            Pre-activations, float32 or float64.

        Returns
        -------
        a, b : array, shape (T, N, H)
        cache : MinStep
        """
        t_steps, n, width = gates.shape
        shape, hidden = (t_steps, n, width // cell.n_gates), width // cell.n_gates
        lstm = cell.n_gates == 3
        a, b, z, gp, dgp = (np.empty((t_steps * n, hidden), gates.dtype) for _ in range(5))
        s_f, s_i = (np.empty((t_steps * n, hidden) if lstm else (0, 0), gates.dtype) for _ in range(2))
        if lstm:
            _LSTM_COEFFICIENTS(_rows(gates), a, b, z, gp, dgp, s_f, s_i)
        else:
            _GRU_COEFFICIENTS(_rows(gates), a, b, z, gp, dgp)
        a, b, z, gp, dgp = (v.reshape(shape) for v in (a, b, z, gp, dgp))
        return a, b, MinStep(a, z, gp, dgp, (s_f.reshape(shape), s_i.reshape(shape)) if lstm else None)

    def coefficients_backward(self, cell: MinCell, da: Any, db: Any, cache: MinStep) -> Any:
        """The gradient of the pre-activations in one compiled pass.

        Parameters
        ----------
        cell : MinCell
            minGRU or minLSTM.
        da, db : array, shape (T, N, H)
            Gradients of the coefficients.
        cache : MinStep
            What :meth:`coefficients` kept (of either ``LinearOps``).

        Returns
        -------
        array, shape (T, N, G*H)
        """
        t_steps, n, hidden = da.shape
        out = np.empty((t_steps * n, cell.n_gates * hidden), da.dtype)
        lstm = cache.lstm is not None
        s_f, s_i = (_rows(v) for v in cache.lstm) if cache.lstm is not None else (out[:0, :0], out[:0, :0])
        fields = (_rows(v) for v in (da, db, cache.a, cache.z, cache.gp, cache.dgp))
        _COEFFICIENTS_BACKWARD(*fields, lstm, s_f, s_i, out)
        return out.reshape(t_steps, n, -1)

    def sequential(self, a: Any, b: Any) -> Any:
        """Run the recurrence step by step, compiled (see :meth:`LinearOps.sequential`).

        Parameters
        ----------
        a, b : array, shape (T, ...)
            Coefficients of every step; float32 or float64, one dtype.

        Returns
        -------
        array, shape (T, ...)
        """
        shape = a.shape
        a2 = np.ascontiguousarray(a).reshape(shape[0], -1)
        b2 = np.ascontiguousarray(b).reshape(shape[0], -1)
        out = np.empty_like(a2)
        _SEQUENTIAL(a2, b2, out)
        return out.reshape(shape)

    def recurrence(self, a: Any, b: Any, h0: Any) -> Any:
        """``h_t = a_t h_{t-1} + b_t`` from ``h0`` in one compiled pass (see :meth:`LinearOps.recurrence`).

        Parameters
        ----------
        a, b : array, shape (T, N, H)
            Coefficients of every step; float32 or float64, one dtype.
        h0 : array, shape (N, H)
            The state before the first step.

        Returns
        -------
        array, shape (T, N, H)
        """
        out = np.empty(a.shape, a.dtype)
        _RECURRENCE(_steps(a), _steps(b), np.ascontiguousarray(h0).reshape(-1), out.reshape(a.shape[0], -1))
        return out

    def recurrence_backward(self, a: Any, h_prev: Any, dh: Any, dh_last: Any) -> tuple[Any, Any, Any]:
        """The reverse recurrence in one compiled pass (see :meth:`LinearOps.recurrence_backward`).

        Parameters
        ----------
        a, h_prev, dh : array, shape (T, N, H)
            Coefficients, previous states and the gradient reaching each ``h_t`` from outside.
        dh_last : array, shape (N, H)
            Gradient with respect to the last ``h``.

        Returns
        -------
        da, db : array, shape (T, N, H)
        dh0 : array, shape (N, H)
        """
        da, db, dh0 = np.empty(a.shape, a.dtype), np.empty(a.shape, a.dtype), np.empty(a.shape[1:], a.dtype)
        flat = (_steps(a), _steps(h_prev), _steps(dh), np.ascontiguousarray(dh_last, a.dtype).reshape(-1))
        _RECURRENCE_BACKWARD(*flat, da.reshape(a.shape[0], -1), db.reshape(a.shape[0], -1), dh0.reshape(-1))
        return da, db, dh0


def _steps(a: Any) -> Any:
    """``a (T, ...)`` as a C-contiguous ``(T, M)`` array (a copy only when strided)."""
    return np.ascontiguousarray(a).reshape(a.shape[0], -1)
