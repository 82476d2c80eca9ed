"""A defined cell's whole time loop compiled (:func:`xrnn.cells.define`), as the built-in cells' are.

The loop of :mod:`.loops` (per step one BLAS ``gemm`` and one fused kernel each way, the
rows past their length carried), with the cell's emitted scalar step
(:meth:`~xrnn.cells.definition.DefinedCell.scalar_step`, on the activations of
:mod:`.defined`) inlined into kernels written for that cell: their arguments (how many
gates, which are separate, one state part or two) are known only when the cell is
defined, so the kernels' source is generated then, from the templates below, and
compiled once per cell and dtype. The step caches have the layout of
:mod:`xrnn.backends.defined_layout`.

Forward, step ``t``: ``gh = h_prev @ W_hh^T``, then per element the gate arguments
(``gx + b_x + gh + b_h``, or the two parts of a separate gate), kept, and the new state.
Backward, step ``t``: per element the gradient of every argument and of the previous
state, then ``dh_prev = dgh @ W_hh + direct`` (one ``gemm`` with ``beta = 1``).
Every output is written through its own 1-d row view, as in :mod:`.kernels`.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells.definition import DefinedCell
from ..defined_layout import DefinedSteps, arguments, buffers, defined_layout
from .buffers import RECYCLER, contiguous, int64_lengths
from .defined import scalar_step
from .loops import call_gemm, carry, clear, gemm_address, upstream

__all__ = ["backward", "forward", "sequence_kernels"]

_OPTIONS = {"nogil": True, "error_model": "numpy"}


def _names(cell: DefinedCell) -> tuple[list[str], list[tuple[int, str]]]:
    """Each gate argument's expression over the rows ``x``, ``y`` and biases, and its gate block."""
    exprs, blocks, fold = [], [], not cell.separate
    for q, gate in enumerate(cell.gates):
        if gate in cell.separate:
            exprs += [f"x[{q}, j] + bx[{q}, j]", f"y[{q}, j] + bh[{q}, j]"]
            blocks += [(q, "x"), (q, "h")]
        else:
            exprs.append(f"x[{q}, j] + y[{q}, j] + bx[{q}, j]" + ("" if fold else f" + bh[{q}, j]"))
            blocks.append((q, "both"))
    return exprs, blocks


def _forward_source(cell: DefinedCell) -> str:
    g, a, two = cell.n_gates, arguments(cell), cell.n_states == 2
    exprs, _ = _names(cell)
    rows = [f"        k{q} = kept[{q}, b]" for q in range(a)]
    rows += ["        h_b = h[b]", "        hp_b = hp[b]"]
    rows += ["        cp_b = cp[b]", f"        c_b = kept[{a}, b]"] if two else []
    body = [f"            a{q} = {e}" for q, e in enumerate(exprs)]
    states = "hp_b[j], cp_b[j]" if two else "hp_b[j]"
    body.append(f"            r = f(one, {', '.join(f'a{q}' for q in range(a))}, {states})")
    body += [f"            k{q}[j] = a{q}" for q in range(a)]
    body += ["            h_b[j] = r[0]"] + (["            c_b[j] = r[1]"] if two else [])
    step = "\n".join(
        [
            "def step(one, gx, gh, bx, bh, hp, cp, h, kept):",
            "    n, hidden = h.shape",
            f"    bx = bx.reshape(({g}, hidden))",
            f"    bh = bh.reshape(({g}, hidden))",
            "    for b in range(n):",
            f"        x = gx[b].reshape(({g}, hidden))",
            f"        y = gh[b].reshape(({g}, hidden))",
            *rows,
            "        for j in range(hidden):",
            *body,
        ]
    )
    c_prev = f"c0 if t == 0 else kept[t - 1, {a}]" if two else "h0"
    loop = f"""
def sequence(gemm, lengths, gx, w_hh_t, bx, bh, h0, c0, y, kept, gh):
    one = y.dtype.type(1)
    for t in range(gx.shape[0]):
        hp = h0 if t == 0 else y[t - 1]
        cp = {c_prev}
        call_gemm(gemm, hp, w_hh_t, 0.0, gh)
        step(one, gx[t], gh, bx, bh, hp, cp, y[t], kept[t])
        carry(t, lengths, hp, y[t])
"""
    if two:
        loop += f"        carry(t, lengths, cp, kept[t, {a}])\n"
    return step + "\n" + loop


def _backward_source(cell: DefinedCell) -> str:
    g, a, two = cell.n_gates, arguments(cell), cell.n_states == 2
    _, blocks = _names(cell)
    rows = [f"        dx = dgx[b].reshape(({g}, hidden))"]
    rows += [f"        dhh = dgh[b].reshape(({g}, hidden))"] if cell.separate else []
    rows += [f"        gx{q} = dx[{q}]" for q in range(g)]
    rows += [f"        gh{q} = dhh[{q}]" for q in range(g)] if cell.separate else []
    rows += [f"        k{q} = kept[{q}, b]" for q in range(a)]
    rows += ["        d_b = d[b]", "        hp_b = hp[b]", "        dir_b = direct[b]"]
    rows += ["        dc_b = dc[b]", "        cp_b = cp[b]", "        dcp_b = dc_prev[b]"] if two else []
    ds = "d_b[j], dc_b[j]" if two else "d_b[j]"
    states = "hp_b[j], cp_b[j]" if two else "hp_b[j]"
    body = [f"            r = f(one, {ds}, {', '.join(f'k{q}[j]' for q in range(a))}, {states})"]
    for k, (q, part) in enumerate(blocks):
        if part in ("x", "both"):
            body.append(f"            gx{q}[j] = r[{k}]")
        if cell.separate and part in ("h", "both"):
            body.append(f"            gh{q}[j] = r[{k}]")
    body.append(f"            dir_b[j] = r[{a}]")
    body += [f"            dcp_b[j] = r[{a + 1}]"] if two else []
    step = "\n".join(
        [
            "def step_backward(one, d, dc, kept, hp, cp, dgx, dgh, direct, dc_prev):",
            "    n, hidden = d.shape",
            "    for b in range(n):",
            *rows,
            "        for j in range(hidden):",
            *body,
        ]
    )
    c_prev = f"c0 if t == 0 else kept[t - 1, {a}]" if two else "h0"
    loop = f"""
def sequence_backward(gemm, lengths, dy, dh, dc, y, kept, h0, c0, w_hh, dgx, dgh):
    one = dh.dtype.type(1)
    ds, direct, dc_prev = np.empty_like(dh), np.empty_like(dh), np.empty_like(dc)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        hp = h0 if t == 0 else y[t - 1]
        cp = {c_prev}
        step_backward(one, d, dc, kept[t], hp, cp, dgx[t], dgh[t], direct, dc_prev)
        clear(t, lengths, dgx[t])
        clear(t, lengths, dgh[t])
        call_gemm(gemm, dgh[t], w_hh, 1.0, direct)
        carry(t, lengths, d, direct)
        dh, direct = direct, dh
"""
    if two:
        loop += "        carry(t, lengths, dc, dc_prev)\n        dc, dc_prev = dc_prev, dc\n"
    return step + "\n" + loop + "    return dh, dc\n"


@functools.cache
def sequence_kernels(cell: DefinedCell, dtype: str) -> tuple[Any, Any]:
    """The compiled forward and backward loops of ``cell`` for ``dtype`` (made once per cell and dtype).

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    sequence : callable
        ``(gemm, lengths, gx (T, N, GH), w_hh_t (H, GH), b_x (GH,), b_h (GH,), h0, c0,
        y (T, N, H), kept (T, K, N, H), gh (N, GH)) -> None``; ``c0`` is ``h0`` for a cell
        of one state part; ``b_h`` is never read when ``cell.fold_bias``.
    sequence_backward : callable
        ``(gemm, lengths, dy (T', N, H), dh, dc, y, kept, h0, c0, w_hh (GH, H), dgx
        (T, N, GH), dgh) -> (dh0, dc0)``; ``dh`` and ``dc`` (copies of the final-state
        gradients, ``dc`` any ``(N, H)`` array for one state part) are overwritten;
        ``dgh`` is ``dgx`` itself when no gate is separate.
    """
    scalar = scalar_step(cell, dtype)
    compiled: dict[str, Any] = {}
    for loop, kernel, source, f in (
        ("sequence", "step", _forward_source(cell), scalar.forward),
        ("sequence_backward", "step_backward", _backward_source(cell), scalar.backward),
    ):
        space: dict[str, Any] = {"f": numba.njit(inline="always", **_OPTIONS)(f), "np": np}
        space |= {"call_gemm": call_gemm, "carry": carry, "clear": clear, "upstream": upstream}
        exec(compile(source, f"<xrnn loops of cell {cell.name}>", "exec"), space)  # our own generated code
        space[kernel] = numba.njit(**_OPTIONS)(space[kernel])  # before the loop compiles: it calls this
        compiled[loop] = numba.njit(**_OPTIONS)(space[loop])
    return compiled["sequence"], compiled["sequence_backward"]


def forward(
    cell: DefinedCell,
    gx: Array,
    w_hh_t: Array,
    biases: tuple[Array | None, Array | None],
    state0: State,
    lengths: Array | None,
) -> tuple[Array, State, DefinedSteps]:
    """Run ``cell`` forward over all steps compiled (the contract of :meth:`xrnn.engine.ops.Ops.forward`).

    ``gx (T, N, G*H)`` float32 or float64, ``w_hh_t (H, G*H)``, biases ``(G*H,)`` or None,
    states ``(N, H)``, ``lengths (N,)`` or None.
    """
    t_steps, n, width = gx.shape
    hidden, dtype = width // cell.n_gates, gx.dtype
    if cell.fold_bias and biases[1] is not None:  # no gate separate: one bias, added once
        biases = (biases[1] if biases[0] is None else biases[0] + biases[1], None)
    b_x, b_h = (np.zeros(width, dtype) if b is None else contiguous(b) for b in biases)
    # the compiled loops read and write without bounds checks: the sizes must agree first
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", w_hh_t.T, (cell.n_gates * hidden, hidden), fits)
    check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
    check_shape("b_x", b_x, (width,), fits)
    check_shape("b_h", b_h, (width,), fits)
    for j, s in enumerate(state0):
        check_shape(f"state[{j}]", s, (n, hidden), fits)
    layout = defined_layout(cell)
    first = tuple(contiguous(s) for s in state0)
    y = RECYCLER.empty((t_steps, n, hidden), dtype)
    kept = RECYCLER.empty((t_steps, layout.kept, n, hidden), dtype)
    gh = np.empty((n, width), dtype)
    sequence, _ = sequence_kernels(cell, str(dtype))
    sequence(
        gemm_address(dtype), int64_lengths(lengths), contiguous(gx), contiguous(w_hh_t), b_x, b_h,
        first[0], first[-1], y, kept, gh,
    )  # fmt: skip
    state = (y[-1],) if layout.c_slot is None else (y[-1], kept[-1, layout.c_slot])
    return y, state, DefinedSteps(layout, y, kept, first)


def backward(
    cell: DefinedCell,
    steps: Any,
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    lengths: Array | None,
) -> tuple[Array, Array | None, State]:
    """Backpropagate ``cell`` through all steps compiled (:meth:`xrnn.engine.ops.Ops.backward`'s contract).

    ``steps`` of any forward (:func:`xrnn.backends.defined_layout.buffers`), ``dy (T, N, H)``
    or None, ``dstate`` each ``(N, H)``, ``w_hh (G*H, H)``.
    """
    t_steps = len(steps)
    n, hidden = dstate[0].shape
    dtype, width = dstate[0].dtype, cell.n_gates * hidden
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", w_hh, (width, hidden), fits)
    for j, d in enumerate(dstate):
        check_shape(f"dstate[{j}]", d, (n, hidden), fits)
    if dy is not None:
        check_shape("dy", dy, (t_steps, n, hidden), fits)
    y, kept, first = buffers(cell, steps, xp=np)
    layout = defined_layout(cell)
    check_shape("steps (h)", y, (t_steps, n, hidden), fits)
    check_shape("steps (kept)", kept, (t_steps, layout.kept, n, hidden), fits)
    for j, s in enumerate(first):
        check_shape(f"steps (state[{j}])", s, (n, hidden), fits)
    dy = np.empty((0, n, hidden), dtype) if dy is None else contiguous(dy)
    d = tuple(np.array(a, dtype=dtype, order="C") for a in dstate)  # copies: the loops write them
    dg = RECYCLER.empty((layout.grads, t_steps, n, width), dtype)
    _, sequence_backward = sequence_kernels(cell, str(dtype))
    y, kept, first = contiguous(y), contiguous(kept), tuple(contiguous(s) for s in first)
    dh, dc = sequence_backward(
        gemm_address(dtype), int64_lengths(lengths), dy, d[0], d[-1], y, kept, first[0], first[-1],
        contiguous(w_hh), dg[0], dg[-1],
    )  # fmt: skip
    return dg[0], (dg[1] if layout.grads > 1 else None), ((dh, dc) if cell.n_states == 2 else (dh,))
