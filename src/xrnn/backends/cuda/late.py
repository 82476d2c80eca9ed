"""CUDA kernels and loops of the cells with a late matmul (:class:`~xrnn.cells.base.LateMatmul`).

The reset-before GRU (:mod:`xrnn.cells.gru_reset_before`): per step two cuBLAS matmuls
and two kernels each way (one thread per element ``(b, j)``, as :mod:`.kernels`)::

    forward   gh = h_prev @ W_early^T (N, 2H)     m = r * h_prev                (input)
              gh_n = m @ U_n^T (N, H)             r, z, n into kept, h into y   (finish)
    backward  dh, then dz, dn and dh * z          (gates)
              dm = dn @ U_n                       dr, dh * z + dm * r           (late)
              mm = [dr, dz] @ W_early             the next step's upstream gradient

Buffers as :mod:`.layout` lays them out: ``kept (T, 3, N, H)`` holds ``r, z, n``, ``y``
each step's ``h``; ``carry`` the direct gradient of ``h_prev``. The kernels are those of
:mod:`.late_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from array_api_compat import device as device_of

from ..._util.typing import Array, State
from .layout import CudaSteps, Layout, buffers

__all__ = ["backward", "forward"]


def forward(
    ops: Any, layout: Layout, kernels: Any, gx: Array, w_hh_t: Array, biases: Any, state0: State, lens: Array
) -> tuple[Array, State, Sequence[Any]]:
    """The forward loop (see the module); ``ops`` is the :class:`~.ops.CudaOps`, sizes checked."""
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps, n, width = gx.shape
    hidden, dtype, dev = w_hh_t.shape[0], gx.dtype, device_of(gx)
    b_x, b_h = biases
    w_early_t = xp.asarray(w_hh_t[:, : 2 * hidden], copy=True)  # (H, 2H), contiguous for cuBLAS
    w_late_t = xp.asarray(w_hh_t[:, 2 * hidden :], copy=True)  # (H, H)
    h0 = state0[0]
    y = xp.empty((t_steps, n, hidden), dtype=dtype, device=dev)
    kept = xp.empty((t_steps, layout.kept, n, hidden), dtype=dtype, device=dev)
    gh = xp.empty((n, 2 * hidden), dtype=dtype, device=dev)
    m, gh_n = (xp.empty((n, hidden), dtype=dtype, device=dev) for _ in range(2))
    with launch.on(gx) as stream:
        a = launch.array
        common = (a(gx), a(gh))
        input_args = (*common, a(b_x), a(b_h), a(h0), a(y), a(m))
        finish_args = (a(lens), *common, a(gh_n), a(b_x), a(b_h), a(h0), a(y), a(kept))
        input_, finish = (launch.configure(k, n * hidden, stream) for k in (kernels.input, kernels.finish))
        for t in range(t_steps):
            raw.matmul(h0 if t == 0 else y[t - 1, ...], w_early_t, out=gh)
            input_(t, *input_args)
            raw.matmul(m, w_late_t, out=gh_n)  # the second matmul
            finish(t, *finish_args)
    return y, (y[-1, ...],), CudaSteps(layout, y, kept, h0)


def backward(
    ops: Any,
    layout: Layout,
    kernels: Any,
    steps: Sequence[Any],
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    lens: Array,
) -> tuple[Array, Array | None, State]:
    """The backward loop (see the module); sizes checked by the caller."""
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps = len(steps)
    n, hidden = dstate[0].shape
    dtype, dev = dstate[0].dtype, device_of(dstate[0])
    y, kept, first = buffers(layout, steps, xp=xp)
    w_early, w_late = w_hh[: 2 * hidden, ...], w_hh[2 * hidden :, ...]  # row blocks: contiguous
    ds = xp.asarray(dstate[0], copy=True)  # the kernels write it: (N, H)
    carry, mm, dn, dm = (xp.zeros_like(ds) for _ in range(4))
    dgx = xp.empty((t_steps, n, 3 * hidden), dtype=dtype, device=dev)
    with launch.on(ds) as stream:
        a = launch.array
        has_dy = dy is not None
        dy_3d = dy if dy is not None else ds[None, ...]  # never read without dy
        gates_args = (
            a(lens),
            has_dy,
            a(dy_3d),
            a(ds),
            a(mm),
            a(carry),
            a(y),
            a(kept),
            a(first),
            a(dgx),
            a(dn),
        )
        late_args = (a(lens), a(dm), a(carry), a(y), a(kept), a(first), a(dgx))
        gates, late = (launch.configure(k, n * hidden, stream) for k in (kernels.gates, kernels.late))
        for t in range(t_steps - 1, -1, -1):
            gates(t, *gates_args)
            raw.matmul(dn, w_late, out=dm)  # the second matmul back
            late(t, *late_args)
            raw.matmul(dgx[t, :, : 2 * hidden], w_early, out=mm)
    dh0 = xp.where((lens > 0)[:, None], mm + carry, ds)
    return dgx, None, (dh0,)
