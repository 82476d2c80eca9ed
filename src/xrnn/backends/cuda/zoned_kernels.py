"""The LSTM's and the GRU's CUDA kernels with zoneout (:mod:`xrnn.engine.zoneout`): the masks in the step.

The kernels of :mod:`.kernels` (the same buffers, lengths handling and thread layout) with
the zoneout masks ``(T, N, H)`` as last arguments (``mh, mc`` for the LSTM, ``mh`` for the
GRU; zeros for a part without zoneout): forward, each state is mixed with the previous one
right after the step, ``s = s_new + m * (s_prev - s_new)``; backward, the step gets
``(1 - m) * ds`` and the previous state ``m * ds``, which the kernel leaves in ``zh``
(``N, H``, a last argument) for the next (earlier) step to add to ``dg @ W_hh``, as it adds
``carry``. Imported by :mod:`.kernels` alone; the kernels name ``cuda`` as a module global,
where the simulator expects it.
"""

from __future__ import annotations

from typing import Any

from numba import cuda

__all__ = ["build"]


def _lstm(one: Any, step: Any, step_backward: Any, kernels: Any) -> Any:
    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept, mh, mc):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = h0.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        f_, g_, o_ = hidden + j, 2 * hidden + j, 3 * hidden + j
        h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
        c_prev = c0[b, j] if t == 0 else kept[t - 1, 5, b, j]
        i, f, g, o, tanh_c, h, c = step(
            one, gx[t, b, j] + b_x[j], gx[t, b, f_] + b_x[f_], gx[t, b, g_] + b_x[g_], gx[t, b, o_] + b_x[o_],
            gh[b, j] + b_h[j], gh[b, f_] + b_h[f_], gh[b, g_] + b_h[g_], gh[b, o_] + b_h[o_], c_prev,
        )  # fmt: skip
        kept[t, 0, b, j] = i
        kept[t, 1, b, j] = f
        kept[t, 2, b, j] = g
        kept[t, 3, b, j] = o
        kept[t, 4, b, j] = tanh_c
        inside = t < lengths[b]
        y[t, b, j] = h + mh[t, b, j] * (h_prev - h) if inside else h_prev
        kept[t, 5, b, j] = c + mc[t, b, j] * (c_prev - c) if inside else c_prev

    @cuda.jit
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh, mh, mc, zh):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = ds.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + zh[b, j]
        if has_dy:
            dh = dh + dy[t, b, j]
        ds[b, j] = dh
        dc = carry[b, j]
        m_h, m_c = mh[t, b, j], mc[t, b, j]
        c_prev = first[b, j] if t == 0 else kept[t - 1, 5, b, j]
        dz_i, dz_f, dz_g, dz_o, dc_prev = step_backward(
            one, dh - m_h * dh, dc - m_c * dc, kept[t, 0, b, j], kept[t, 1, b, j], kept[t, 2, b, j],
            kept[t, 3, b, j], kept[t, 4, b, j], c_prev,
        )  # fmt: skip
        zh[b, j] = m_h * dh
        dc_prev = dc_prev + m_c * dc
        if t >= lengths[b]:  # past the sequence: no gate gradient, dc carried through
            zero = one - one
            dz_i, dz_f, dz_g, dz_o, dc_prev = zero, zero, zero, zero, dc
            zh[b, j] = zero
        dgx[t, b, j] = dz_i
        dgx[t, b, hidden + j] = dz_f
        dgx[t, b, 2 * hidden + j] = dz_g
        dgx[t, b, 3 * hidden + j] = dz_o
        carry[b, j] = dc_prev

    return kernels(forward, backward)


def _gru(one: Any, step: Any, step_backward: Any, kernels: Any) -> Any:
    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept, mh):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = h0.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        z_, n_ = hidden + j, 2 * hidden + j
        h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
        gh_n = gh[b, n_] + b_h[n_]
        r, z, new, h = step(
            one, gx[t, b, j] + b_x[j], gx[t, b, z_] + b_x[z_], gx[t, b, n_] + b_x[n_],
            gh[b, j] + b_h[j], gh[b, z_] + b_h[z_], gh_n, h_prev,
        )  # fmt: skip
        kept[t, 0, b, j] = r
        kept[t, 1, b, j] = z
        kept[t, 2, b, j] = new
        kept[t, 3, b, j] = gh_n
        y[t, b, j] = h + mh[t, b, j] * (h_prev - h) if t < lengths[b] else h_prev

    @cuda.jit
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh, mh, zh):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = ds.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + carry[b, j] + zh[b, j]
        if has_dy:
            dh = dh + dy[t, b, j]
        ds[b, j] = dh
        m_h = mh[t, b, j]
        h_prev = first[b, j] if t == 0 else y[t - 1, b, j]
        dr, dz, dn, dn_r, direct = step_backward(
            one, dh - m_h * dh, kept[t, 0, b, j], kept[t, 1, b, j], kept[t, 2, b, j], kept[t, 3, b, j], h_prev
        )
        zh[b, j] = m_h * dh
        if t >= lengths[b]:  # past the sequence: no gate gradient (dh is carried by ds)
            zero = one - one
            dr, dz, dn, dn_r, direct = zero, zero, zero, zero, zero
            zh[b, j] = zero
        dgx[t, b, j] = dr
        dgx[t, b, hidden + j] = dz
        dgx[t, b, 2 * hidden + j] = dn
        dgh[t, b, j] = dr
        dgh[t, b, hidden + j] = dz
        dgh[t, b, 2 * hidden + j] = dn_r
        carry[b, j] = direct

    return kernels(forward, backward)


def build(one: Any, steps: dict[str, Any], kernels: Any) -> dict[str, Any]:
    """``{"lstm_zoned": ..., "gru_zoned": ...}``: ``kernels(forward, backward)`` for the dtype of ``one``."""
    return {"lstm_zoned": _lstm(one, *steps["lstm"], kernels), "gru_zoned": _gru(one, *steps["gru"], kernels)}
