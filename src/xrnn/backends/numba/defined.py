"""A defined cell's per-element step (:func:`xrnn.cells.define`) compiled by Numba.

The cell's emitted scalar source is bound to this backend's scalar activations
(:mod:`.activations`, ``math``) and inlined into one loop over the ``(N, H)`` elements
of a step, forward and backward: the same maths as the cell's array ``step``, fused.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from ...cells import Cell, ScalarStep
from ...cells.definition import DefinedCell, array_steps
from .activations import sigmoid, tanh
from .compile import inline

__all__ = ["elementwise_kernels", "fused", "scalar_step"]


def _relu(x: Any) -> Any:
    return x if x > 0 else x * 0


def _step(x: Any) -> Any:
    return (x > 0) * (x * 0 + 1)


def _softplus(x: Any) -> Any:
    return max(x, x * 0) + math.log1p(math.exp(-abs(x)))


_LOOP = """
def kernel(one, {args}, {outs}):
    n, m = {first}.shape
    for b in range(n):
        for j in range(m):
            r = f(one, {reads})
{writes}
"""


def _loop(f: Any, n_in: int, n_out: int) -> Any:
    import numba

    args = [f"a{k}" for k in range(n_in)]
    outs = [f"o{k}" for k in range(n_out)]
    source = _LOOP.format(
        args=", ".join(args),
        outs=", ".join(outs),
        first=args[0],
        reads=", ".join(f"{a}[b, j]" for a in args),
        writes="\n".join(f"            {o}[b, j] = r[{k}]" for k, o in enumerate(outs)),
    )
    space: dict[str, Any] = {"f": f}
    exec(source, space)  # a loop of our own over the cell's inlined step
    return numba.njit(nogil=True, error_model="numpy")(space["kernel"])


@functools.cache
def scalar_step(cell: DefinedCell, dtype: str) -> ScalarStep:
    """``cell``'s scalar step on this backend's activations, constants cast to ``dtype``.

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    ScalarStep
        Plain Python functions, for a kernel to inline (:func:`.compile.inline`).
    """
    return cell.scalar_step(
        sigmoid,
        tanh,
        relu=inline(_relu),
        step=inline(_step),
        softplus=inline(_softplus),
        exp=math.exp,
        log=math.log,
        cast=getattr(np, dtype),
    )


@functools.cache
def elementwise_kernels(cell: DefinedCell, dtype: str) -> tuple[Any, Any]:
    """``forward(*inputs) -> new states`` and ``backward(*d_states, *inputs) -> grads`` on ``(N, H)``.

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    forward, backward : callable
        Each takes arrays ``(N, H)`` of ``dtype`` (views too) and returns new arrays.
    """
    cast = getattr(np, dtype)
    scalar = scalar_step(cell, dtype)
    n_in, n_states = len(cell.inputs), cell.n_states
    fwd = _loop(inline(scalar.forward), n_in, n_states)
    bwd = _loop(inline(scalar.backward), n_states + n_in, n_in)
    one = cast(1)

    def forward(*inputs: Any) -> tuple[Any, ...]:
        outs = tuple(np.empty(inputs[0].shape, inputs[0].dtype) for _ in range(n_states))
        fwd(one, *inputs, *outs)
        return outs

    def backward(*args: Any) -> tuple[Any, ...]:
        outs = tuple(np.empty(args[0].shape, args[0].dtype) for _ in range(n_in))
        bwd(one, *args, *outs)
        return outs

    return forward, backward


def fused(cell: Cell, dtype: Any) -> Cell:
    """``cell`` with its array step run by the compiled kernels, for a defined cell of float32/64.

    Parameters
    ----------
    cell : Cell
        Any cell; only a :class:`~xrnn.cells.definition.DefinedCell` is changed.
    dtype : dtype
        Dtype of the arrays.

    Returns
    -------
    Cell
        For a defined cell, the same cell whose ``step`` and ``step_backward`` call
        :func:`elementwise_kernels` (the generic loop around them is unchanged); else ``cell``.
    """
    if not isinstance(cell, DefinedCell) or str(dtype) not in ("float32", "float64"):
        return cell
    return _fused(cell, str(dtype))


@functools.cache
def _fused(cell: DefinedCell, dtype: str) -> Cell:
    kernels = elementwise_kernels(cell, dtype)
    step, step_backward = array_steps(cell.gates, cell.separate, lambda xp: kernels)
    return dataclasses.replace(cell, step=step, step_backward=step_backward)
