"""A defined cell's whole sequence on CUDA (:func:`xrnn.cells.define`), as the built-in cells run.

Per step one cuBLAS matmul and one kernel each way (:mod:`.ops`), the kernels generated
for the cell from the templates below (how many gates, which are separate, one state
part or two are known only when the cell is defined) around its emitted scalar step as a
CUDA device function (:func:`.defined.device_step`). Kernels of the layout of
:mod:`.kernels`: one thread per element ``(b, j)``, whole sequence buffers and the step
``t``; the step caches are those of :mod:`xrnn.backends.defined_layout`.

Backward, step ``t``: the gradient reaching ``h_t`` is ``mm + direct`` (the previous step's
``dgh @ W_hh`` and the gradient of ``h_t`` by the step's other paths) where step ``t + 1``
was inside the row's sequence, else ``ds``, the gradient carried past it; ``dc`` carries
the second state part's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from array_api_compat import device as device_of

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells.definition import DefinedCell
from ..defined_layout import DefinedSteps, arguments, buffers, defined_layout

__all__ = ["backward", "forward", "sequence_kernels"]

_HEAD = """
    k = cuda.grid(1)
    n, hidden = h0.shape
    if k >= n * hidden:
        return
    b = k // hidden
    j = k - b * hidden
    hp = h0[b, j] if t == 0 else y[t - 1, b, j]
    inside = t < lengths[b]
    zero = one - one
"""


def _columns(cell: DefinedCell) -> list[tuple[int, str]]:
    """Each gate argument's gate block and part: ``"x"``, ``"h"`` (a separate gate) or ``"both"``."""
    blocks: list[tuple[int, str]] = []
    for q, gate in enumerate(cell.gates):
        blocks += [(q, "x"), (q, "h")] if gate in cell.separate else [(q, "both")]
    return blocks


def _forward_source(cell: DefinedCell) -> str:
    a, two = arguments(cell), cell.n_states == 2
    lines = ["def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept):", _HEAD.strip("\n")]
    if two:
        lines.append(f"    cp = c0[b, j] if t == 0 else kept[t - 1, {a}, b, j]")
    for k, (q, part) in enumerate(_columns(cell)):
        x, h = (
            f"gx[t, b, {q} * hidden + j] + b_x[{q} * hidden + j]",
            f"gh[b, {q} * hidden + j] + b_h[{q} * hidden + j]",
        )
        lines.append(f"    a{k} = " + {"x": x, "h": h, "both": f"{x} + {h}"}[part])
    lines.append(f"    r = f(one, {', '.join(f'a{k}' for k in range(a))}, {'hp, cp' if two else 'hp'})")
    lines += [f"    kept[t, {k}, b, j] = a{k}" for k in range(a)]
    lines.append("    y[t, b, j] = r[0] if inside else hp")
    lines += [f"    kept[t, {a}, b, j] = r[1] if inside else cp"] if two else []
    return "\n".join(lines) + "\n"


def _backward_source(cell: DefinedCell) -> str:
    a, two = arguments(cell), cell.n_states == 2
    head = "def backward(t, lengths, has_dy, dy, ds, mm, direct, dc, y, kept, h0, c0, dgx, dgh):"
    lines = [head, _HEAD.strip("\n")]
    lines += [
        "    dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + direct[b, j]",
        "    if has_dy:",
        "        dh = dh + dy[t, b, j]",
        "    ds[b, j] = dh",
    ]
    if two:
        lines += [f"    cp = c0[b, j] if t == 0 else kept[t - 1, {a}, b, j]", "    dc_next = dc[b, j]"]
    kept = ", ".join(f"kept[t, {k}, b, j]" for k in range(a))
    lines.append(f"    r = f(one, {'dh, dc_next' if two else 'dh'}, {kept}, {'hp, cp' if two else 'hp'})")
    for k, (q, part) in enumerate(_columns(cell)):
        if part in ("x", "both"):
            lines.append(f"    dgx[t, b, {q} * hidden + j] = r[{k}] if inside else zero")
        if cell.separate and part in ("h", "both"):
            lines.append(f"    dgh[t, b, {q} * hidden + j] = r[{k}] if inside else zero")
    lines.append(f"    direct[b, j] = r[{a}] if inside else zero")
    lines += [f"    dc[b, j] = r[{a + 1}] if inside else dc_next"] if two else []
    return "\n".join(lines) + "\n"


@functools.cache
def sequence_kernels(cell: DefinedCell, dtype: str) -> tuple[Any, Any, Any]:
    """``cell``'s forward and backward kernels for ``dtype``, and ``one`` in it (made once per cell, dtype).

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    forward : kernel
        ``(t, lengths, gx (T, N, GH), gh (N, GH), b_x (GH,), b_h (GH,), h0, c0, y (T, N, H),
        kept (T, K, N, H))``; ``c0`` is ``h0`` for a cell of one state part.
    backward : kernel
        ``(t, lengths, has_dy, dy (T, N, H), ds, mm, direct, dc, y, kept, h0, c0, dgx (T, N,
        GH), dgh)``, the ``(N, H)`` arrays ``ds``, ``direct`` and ``dc`` written in place.
    one : scalar
        1 in ``dtype``.
    """
    from numba import cuda  # numba-cuda, imported on first use

    from .defined import device_step

    scalar, one = device_step(cell, dtype)
    kernels = []
    for name, source, f in (
        ("forward", _forward_source(cell), scalar.forward),
        ("backward", _backward_source(cell), scalar.backward),
    ):
        space: dict[str, Any] = {"f": f, "one": one, "cuda": cuda}
        exec(compile(source, f"<xrnn kernels of cell {cell.name}>", "exec"), space)  # our own generated code
        kernels.append(cuda.jit(space[name]))
    return kernels[0], kernels[1], one


def forward(
    ops: Any,
    cell: DefinedCell,
    gx: Array,
    w_hh_t: Array,
    biases: tuple[Array | None, Array | None],
    state0: State,
    lengths: Array | None,
) -> tuple[Array, State, DefinedSteps]:
    """Run ``cell`` forward on ``ops`` (a :class:`~.ops.CudaOps`), as :meth:`xrnn.engine.ops.Ops.forward`.

    ``gx (T, N, G*H)``, ``w_hh_t (H, G*H)``, biases ``(G*H,)`` or None, states ``(N, H)``,
    ``lengths (N,)`` or None; float32 or float64.
    """
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps, n, width = gx.shape
    hidden, dtype, dev = w_hh_t.shape[0], gx.dtype, device_of(gx)
    fits = f"for hidden size {hidden}"  # the kernels index without bounds checks
    check_shape("W_hh", w_hh_t, (hidden, cell.n_gates * hidden), fits)
    check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
    b_x, b_h = (xp.zeros(width, dtype=dtype, device=dev) if b is None else b for b in biases)
    check_shape("b_x", b_x, (width,), fits)
    check_shape("b_h", b_h, (width,), fits)
    for j, s in enumerate(state0):
        check_shape(f"state[{j}]", s, (n, hidden), fits)
    layout = defined_layout(cell)
    kernel, _, _ = sequence_kernels(cell, _name(xp, dtype))
    y = xp.empty((t_steps, n, hidden), dtype=dtype, device=dev)
    kept = xp.empty((t_steps, layout.kept, n, hidden), dtype=dtype, device=dev)
    gh = xp.empty((n, width), dtype=dtype, device=dev)
    h0, c0 = state0[0], state0[-1]
    with launch.on(gx) as stream:
        a = launch.array
        args = (
            a(ops._lengths(lengths, n, t_steps, gx)),
            a(gx),
            a(gh),
            a(b_x),
            a(b_h),
            a(h0),
            a(c0),
            a(y),
            a(kept),
        )
        step = launch.configure(kernel, n * hidden, stream)
        for t in range(t_steps):
            raw.matmul(h0 if t == 0 else y[t - 1, ...], w_hh_t, out=gh)
            step(t, *args)
    state = (y[-1, ...],) if layout.c_slot is None else (y[-1, ...], kept[-1, layout.c_slot, ...])
    return y, state, DefinedSteps(layout, y, kept, tuple(state0))


def backward(
    ops: Any,
    cell: DefinedCell,
    steps: Sequence[Any],
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    lengths: Array | None,
) -> tuple[Array, Array | None, State]:
    """Backpropagate ``cell`` on ``ops`` (a :class:`~.ops.CudaOps`), as :meth:`xrnn.engine.ops.Ops.backward`.

    ``steps`` of any forward, ``dy (T, N, H)`` or None, ``dstate`` each ``(N, H)``,
    ``w_hh (G*H, H)``.
    """
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps, (n, hidden) = len(steps), dstate[0].shape
    dtype, dev, width = dstate[0].dtype, device_of(dstate[0]), cell.n_gates * hidden
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", w_hh, (width, hidden), fits)
    for j, d in enumerate(dstate):
        check_shape(f"dstate[{j}]", d, (n, hidden), fits)
    if dy is not None:
        check_shape("dy", dy, (t_steps, n, hidden), fits)
    layout = defined_layout(cell)
    y, kept, first = buffers(cell, steps, xp=xp)
    check_shape("steps (h)", y, (t_steps, n, hidden), fits)
    check_shape("steps (kept)", kept, (t_steps, layout.kept, n, hidden), fits)
    _, kernel, _ = sequence_kernels(cell, _name(xp, dtype))
    ds = xp.asarray(dstate[0], copy=True)  # the kernels write it, and the two below: (N, H)
    dc = xp.asarray(dstate[-1], copy=True)
    mm, direct = xp.zeros_like(ds), xp.zeros_like(ds)
    dgx = xp.empty((t_steps, n, width), dtype=dtype, device=dev)
    dgh = xp.empty((t_steps, n, width), dtype=dtype, device=dev) if layout.grads > 1 else dgx
    lens = ops._lengths(lengths, n, t_steps, ds)
    with launch.on(ds) as stream:
        a = launch.array
        dy_3d = dy if dy is not None else ds[None, ...]  # never read without dy
        state = (a(y), a(kept), a(first[0]), a(first[-1]), a(dgx), a(dgh))
        args = (a(lens), dy is not None, a(dy_3d), a(ds), a(mm), a(direct), a(dc), *state)
        step = launch.configure(kernel, n * hidden, stream)
        for t in range(t_steps - 1, -1, -1):
            step(t, *args)
            raw.matmul(dgh[t, ...], w_hh, out=mm)
    # the gradient of h0: through step 0 where it was inside the sequence, else carried past it
    dh0 = xp.where((lens > 0)[:, None], mm + direct, ds)
    return dgx, (dgh if layout.grads > 1 else None), ((dh0, dc) if cell.n_states == 2 else (dh0,))


def _name(xp: Any, dtype: Any) -> str:
    """``"float32"`` or ``"float64"``, the name of ``dtype`` in namespace ``xp``."""
    return "float32" if dtype == xp.float32 else "float64"
