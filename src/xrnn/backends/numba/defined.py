"""A defined cell's per-element step (:func:`xrnn.cells.define`) compiled by Numba.

The cell's emitted scalar source is bound to this backend's scalar activations
(:mod:`.activations`, ``math``) and inlined into one loop over the ``(N, H)`` elements
of a step, forward and backward: the same maths as the cell's array ``step``, fused.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ...cells.definition import DefinedCell
from .activations import sigmoid, tanh
from .compile import inline

__all__ = ["elementwise_kernels"]


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
        Each takes arrays ``(N, H)`` (C-contiguous, of ``dtype``) and returns new arrays.
    """
    cast = getattr(np, dtype)
    scalar = cell.scalar_step(
        sigmoid,
        tanh,
        relu=inline(_relu),
        step=inline(_step),
        softplus=inline(_softplus),
        exp=math.exp,
        log=math.log,
        cast=cast,
    )
    n_in, n_states = len(cell.inputs), cell.n_states
    fwd = _loop(inline(scalar.forward), n_in, n_states)
    bwd = _loop(inline(scalar.backward), n_states + n_in, n_in)
    one = cast(1)

    def forward(*inputs: Any) -> tuple[Any, ...]:
        outs = tuple(np.empty_like(inputs[0]) for _ in range(n_states))
        fwd(one, *(np.ascontiguousarray(a) for a in inputs), *outs)
        return outs

    def backward(*args: Any) -> tuple[Any, ...]:
        outs = tuple(np.empty_like(args[0]) for _ in range(n_in))
        bwd(one, *(np.ascontiguousarray(a) for a in args), *outs)
        return outs

    return forward, backward
