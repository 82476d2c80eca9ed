"""The LSTM's and the GRU's compiled loops with zoneout (:mod:`xrnn.engine.zoneout`): masks in the loop.

The loops of :mod:`.loops` (per step one ``gemm`` and one fused kernel each way) with
each step's state mixed with the previous one, ``s = s_new + m * (s_prev - s_new)``, right
after the kernel, and backward the gradient split before it: the kernel gets
``(1 - m) * ds``, the previous state ``m * ds`` besides ``dg @ W_hh``. The masks are
``(T, N, H)`` arrays, one per state part (zeros for a part without zoneout), drawn by the
layer. The step caches keep the layout of :mod:`.loops`, with the zoned states in
``y`` and ``kept[t, 5]`` (what the next step read), so either backward reads them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._util.typing import Array
from .compile import jit
from .kernels import gru_backward, gru_forward, lstm_backward, lstm_forward
from .loops import call_gemm, carry, clear, upstream

__all__ = ["gru_sequence", "gru_sequence_backward", "lstm_sequence", "lstm_sequence_backward", "masks"]


@jit
def _zone(m: Array, prev: Array, new: Array) -> None:
    """``new += m * (prev - new)``, all ``(N, H)``."""
    n, hidden = new.shape
    for b in range(n):
        m_b, p_b, s_b = m[b], prev[b], new[b]
        for j in range(hidden):
            s_b[j] += m_b[j] * (p_b[j] - s_b[j])


@jit
def _split(m: Array, d: Array, to_step: Array, kept: Array) -> None:
    """``kept = m * d``, ``to_step = d - kept``, all ``(N, H)``."""
    n, hidden = d.shape
    for b in range(n):
        m_b, d_b, s_b, k_b = m[b], d[b], to_step[b], kept[b]
        for j in range(hidden):
            k_b[j] = m_b[j] * d_b[j]
            s_b[j] = d_b[j] - k_b[j]


@jit
def _add(source: Array, target: Array) -> None:
    n, hidden = target.shape
    for b in range(n):
        s_b, t_b = source[b], target[b]
        for j in range(hidden):
            t_b[j] += s_b[j]


@jit
def lstm_sequence(gemm, lengths, gx, w_hh_t, bias, h0, c0, y, kept, gh, mh, mc):  # type: ignore[no-untyped-def]
    """The LSTM's forward loop with zoneout masks ``mh``, ``mc`` ``(T, N, H)``."""
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        c_prev = c0 if t == 0 else kept[t - 1, 5]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        lstm_forward(gx[t], gh, bias, c_prev, y[t], kept[t])
        _zone(mh[t], h_prev, y[t])
        _zone(mc[t], c_prev, kept[t, 5])
        carry(t, lengths, h_prev, y[t])
        carry(t, lengths, c_prev, kept[t, 5])


@jit
def lstm_sequence_backward(gemm, lengths, dy, dh, dc, kept, c0, w_hh, dz, mh, mc):  # type: ignore[no-untyped-def]
    """The LSTM's backward loop with zoneout: ``dz (T, N, 4H)``; ``dh, dc`` final in, initial out."""
    ds, dc_prev = np.empty_like(dh), np.empty_like(dc)
    step_h, step_c, kept_h, kept_c = (
        np.empty_like(dh),
        np.empty_like(dh),
        np.empty_like(dh),
        np.empty_like(dh),
    )
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        _split(mh[t], d, step_h, kept_h)  # before the gemm, which may overwrite d (it can be dh)
        _split(mc[t], dc, step_c, kept_c)
        i, f, g, o, tanh_c = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3], kept[t, 4]
        if t == 0:
            lstm_backward(step_h, step_c, i, f, g, o, tanh_c, c0, dz[t], dc_prev)
        else:
            lstm_backward(step_h, step_c, i, f, g, o, tanh_c, kept[t - 1, 5], dz[t], dc_prev)
        clear(t, lengths, dz[t])
        call_gemm(gemm, dz[t], w_hh, 0.0, dh)
        _add(kept_h, dh)
        _add(kept_c, dc_prev)
        carry(t, lengths, d, dh)
        carry(t, lengths, dc, dc_prev)
        dc, dc_prev = dc_prev, dc
    return dh, dc


@jit
def gru_sequence(gemm, lengths, gx, w_hh_t, bx, bh, h0, y, kept, gh, mh):  # type: ignore[no-untyped-def]
    """The GRU's forward loop with zoneout masks ``mh (T, N, H)``."""
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        gru_forward(gx[t], gh, bx, bh, h_prev, y[t], kept[t])
        _zone(mh[t], h_prev, y[t])
        carry(t, lengths, h_prev, y[t])


@jit
def gru_sequence_backward(gemm, lengths, dy, dh, kept, h0, y, w_hh, dgx, dgh, mh):  # type: ignore[no-untyped-def]
    """The GRU's backward loop with zoneout: ``dgx, dgh (T, N, 3H)``; ``dh`` final in, initial out."""
    ds, direct, step_h, kept_h = np.empty_like(dh), np.empty_like(dh), np.empty_like(dh), np.empty_like(dh)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        _split(mh[t], d, step_h, kept_h)
        r, z, n, gh_n = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3]
        if t == 0:
            gru_backward(step_h, r, z, n, gh_n, h0, dgx[t], dgh[t], direct)
        else:
            gru_backward(step_h, r, z, n, gh_n, y[t - 1], dgx[t], dgh[t], direct)
        clear(t, lengths, dgx[t])
        clear(t, lengths, dgh[t])
        call_gemm(gemm, dgh[t], w_hh, 1.0, direct)  # dh_prev = dgh @ W_hh + dh * z ...
        _add(kept_h, direct)  # ... + m * dh
        carry(t, lengths, d, direct)
        dh, direct = direct, dh
    return dh


def masks(zoneout: Any, shape: tuple[int, int, int], dtype: Any) -> tuple[Array, ...]:
    """The loops' masks: each part's ``(T, N, H)`` C-contiguous, zeros where a part has none."""
    return tuple(
        np.zeros(shape, dtype) if m is None else np.ascontiguousarray(np.broadcast_to(m, shape), dtype=dtype)
        for m in zoneout
    )
