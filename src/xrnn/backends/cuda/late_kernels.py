"""The CUDA kernels of the cells with a late matmul, compiled from the cells' scalar maths.

The kernels of the loops of :mod:`.late` (see there for what each computes). Imported by
:mod:`.kernels` alone, which imports numba-cuda; the kernels name ``cuda`` as a module
global, where the simulator expects it.
"""

from __future__ import annotations

from typing import Any

from numba import cuda

from ...cells import gru_reset_before

__all__ = ["LateKernels", "build"]


class LateKernels:
    """The four kernels of the reset-before GRU for one dtype (see the module)."""

    def __init__(self, one: Any, sigmoid: Any, tanh: Any) -> None:
        device = cuda.jit(device=True)
        step, step_backward = (device(f) for f in gru_reset_before.scalar_step(sigmoid, tanh))
        late, late_backward = (device(f) for f in gru_reset_before.late_scalar_step(sigmoid, tanh))

        @cuda.jit
        def input_(t, gx, gh, b_x, b_h, h0, y, m):  # type: ignore[no-untyped-def]
            k = cuda.grid(1)
            n, hidden = h0.shape
            if k >= n * hidden:
                return
            b = k // hidden
            j = k - b * hidden
            h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
            m[b, j] = late(one, gx[t, b, j] + b_x[j], gh[b, j] + b_h[j], h_prev)

        @cuda.jit
        def finish(t, lengths, gx, gh, gh_n, b_x, b_h, h0, y, kept):  # type: ignore[no-untyped-def]
            k = cuda.grid(1)
            n, hidden = h0.shape
            if k >= n * hidden:
                return
            b = k // hidden
            j = k - b * hidden
            z_, n_ = hidden + j, 2 * hidden + j  # the columns of gates z, n
            h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
            r, z, new, h = step(
                one,
                gx[t, b, j] + b_x[j],
                gx[t, b, z_] + b_x[z_],
                gx[t, b, n_] + b_x[n_],
                gh[b, j] + b_h[j],
                gh[b, z_] + b_h[z_],
                gh_n[b, j] + b_h[n_],
                h_prev,
            )
            kept[t, 0, b, j] = r
            kept[t, 1, b, j] = z
            kept[t, 2, b, j] = new
            y[t, b, j] = h if t < lengths[b] else h_prev

        @cuda.jit
        def gates(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dn):  # type: ignore
            k = cuda.grid(1)
            n, hidden = ds.shape
            if k >= n * hidden:
                return
            b = k // hidden
            j = k - b * hidden
            dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + carry[b, j]
            if has_dy:
                dh = dh + dy[t, b, j]
            ds[b, j] = dh
            h_prev = first[b, j] if t == 0 else y[t - 1, b, j]
            dz, d_n, direct = step_backward(
                one, dh, kept[t, 0, b, j], kept[t, 1, b, j], kept[t, 2, b, j], h_prev
            )
            if t >= lengths[b]:  # past the sequence: no gate gradient (dh is carried by ds)
                zero = one - one
                dz, d_n, direct = zero, zero, zero
            dgx[t, b, hidden + j] = dz
            dgx[t, b, 2 * hidden + j] = d_n
            dn[b, j] = d_n
            carry[b, j] = direct

        @cuda.jit
        def late_(t, lengths, dm, carry, y, kept, first, dgx):  # type: ignore[no-untyped-def]
            k = cuda.grid(1)
            n, hidden = dm.shape
            if k >= n * hidden:
                return
            b = k // hidden
            j = k - b * hidden
            h_prev = first[b, j] if t == 0 else y[t - 1, b, j]
            dr, direct = late_backward(one, dm[b, j], kept[t, 0, b, j], h_prev, carry[b, j])
            if t >= lengths[b]:
                zero = one - one
                dr, direct = zero, zero
            dgx[t, b, j] = dr
            carry[b, j] = direct

        self.input, self.finish, self.gates, self.late = input_, finish, gates, late_


def build(one: Any, sigmoid: Any, tanh: Any) -> dict[str, LateKernels]:
    """The late-matmul cells' kernels for the dtype of ``one``, on a target's device ``sigmoid``, ``tanh``."""
    return {"gru_reset_before": LateKernels(one, sigmoid, tanh)}
