"""A defined cell's per-element step (:func:`xrnn.cells.define`) compiled by numba-cuda.

The cell's emitted scalar source, bound to CUDA device functions (:func:`device_step`):
the whole-sequence kernels of :mod:`.defined_loops` call them, and
:func:`elementwise_kernels` runs them alone over the ``(N, H)`` elements of one step,
forward and backward (one thread per element). Arrays are anything with
``__cuda_array_interface__`` (CuPy), or host arrays under the simulator.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numba
from numba import cuda

from ...cells import ScalarStep
from ...cells.definition import DefinedCell

__all__ = ["device_step", "elementwise_kernels"]

_KERNEL = """
def kernel(one, {args}, {outs}):
    b, j = cuda.grid(2)
    if b < {first}.shape[0] and j < {first}.shape[1]:
        r = f(one, {reads})
{writes}
"""


def _kernel(f: Any, n_in: int, n_out: int) -> Any:
    args = [f"a{k}" for k in range(n_in)]
    outs = [f"o{k}" for k in range(n_out)]
    source = _KERNEL.format(
        args=", ".join(args),
        outs=", ".join(outs),
        first=args[0],
        reads=", ".join(f"{a}[b, j]" for a in args),
        writes="\n".join(f"        {o}[b, j] = r[{k}]" for k, o in enumerate(outs)),
    )
    space: dict[str, Any] = {"f": f, "cuda": cuda}
    exec(source, space)  # a kernel of our own over the cell's device function
    return cuda.jit(space["kernel"])


@functools.cache
def device_step(cell: DefinedCell, dtype: str) -> tuple[ScalarStep, Any]:
    """``cell``'s scalar step as CUDA device functions for ``dtype``, and 1 in ``dtype``.

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    step : ScalarStep
        ``forward`` and ``backward`` compiled as device functions (on this target's
        activations: the CUDA maths library).
    one : scalar
        1 in ``dtype`` (numba's scalar type: a cast on the host and in kernels).
    """
    cast = getattr(numba, dtype)
    one = cast(1)
    device = cuda.jit(device=True)

    @device
    def sigmoid(z: Any) -> Any:
        e = math.exp(-abs(z))
        q = one / (one + e)
        return q if z >= 0 else e * q

    @device
    def tanh(x: Any) -> Any:
        return math.tanh(x)

    @device
    def relu(x: Any) -> Any:
        return x if x > 0 else x * 0

    @device
    def step(x: Any) -> Any:
        return one if x > 0 else one * 0

    @device
    def softplus(x: Any) -> Any:
        return max(x, x * 0) + math.log1p(math.exp(-abs(x)))

    scalar = cell.scalar_step(
        sigmoid, tanh, relu=relu, step=step, softplus=softplus, exp=math.exp, log=math.log, cast=cast
    )
    return ScalarStep(device(scalar.forward), device(scalar.backward)), one


@functools.cache
def elementwise_kernels(cell: DefinedCell, dtype: str) -> tuple[Any, Any]:
    """The CUDA kernels of ``cell``'s step, forward and backward, for ``dtype``.

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.
    dtype : {"float32", "float64"}
        Dtype of the arrays.

    Returns
    -------
    forward, backward : callable
        ``forward(xp, *inputs) -> new states`` and ``backward(xp, *d_states, *inputs) ->
        grads``, each array ``(N, H)`` on the device (``xp`` allocates the results).
    """
    scalar, one = device_step(cell, dtype)
    n_in, n_states = len(cell.inputs), cell.n_states
    fwd = _kernel(scalar.forward, n_in, n_states)
    bwd = _kernel(scalar.backward, n_states + n_in, n_in)

    def launch(kernel: Any, xp: Any, arrays: tuple[Any, ...], n_out: int) -> tuple[Any, ...]:
        rows, cols = arrays[0].shape
        outs = tuple(xp.empty_like(arrays[0]) for _ in range(n_out))
        grid = ((rows + 15) // 16, (cols + 15) // 16)
        kernel[grid, (16, 16)](one, *arrays, *outs)
        return outs

    def forward(xp: Any, *inputs: Any) -> tuple[Any, ...]:
        return launch(fwd, xp, inputs, n_states)

    def backward(xp: Any, *args: Any) -> tuple[Any, ...]:
        return launch(bwd, xp, args, n_in)

    return forward, backward
