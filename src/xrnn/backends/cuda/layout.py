"""How the CUDA kernels lay out a sequence's step caches, and how they read back as the cell's own.

A step keeps ``h`` in ``y[t]`` and its ``K`` other arrays in ``kept[t]`` (see
:mod:`.kernels`); :class:`CudaSteps` shows those buffers as the list of the cell's step
caches, so the generic backward reads them unchanged, and :func:`buffers` lays out any
list of step caches (the generic forward's, the classic API's) in those buffers. Written
in the Array API alone: the same code runs on CuPy and, in the CUDA simulator, on NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..._util.typing import Array
from ..layout import LAYOUTS, Layout, Steps

__all__ = ["LAYOUTS", "CudaSteps", "Layout", "buffers"]


class CudaSteps(Steps):
    """The step caches of a CUDA forward (see :class:`~xrnn.backends.layout.Steps`)."""


def buffers(layout: Layout, steps: Sequence[Any], *, xp: ModuleType) -> tuple[Array, Array, Array]:
    """``(y, kept, first)`` as :class:`CudaSteps` holds them, for any list of the cell's step caches.

    A CUDA forward's steps give their own buffers; other caches are stacked into that
    layout: the state before step ``t`` (the last field of its cache) goes to
    ``kept[t - 1, c_slot]`` or to ``y[t - 1]``. The RNN's ``kept`` is a view of ``y``
    (the kernels never read it).
    """
    if isinstance(steps, CudaSteps) and steps.layout is layout:
        return steps.y, steps.kept, steps.first
    if layout.kept == 0:  # the RNN: a step's cache is its h
        y = xp.stack(list(steps))
        return y, y[:, None, ...], y[0, ...]
    first = steps[0][-1]
    later = [step[-1] for step in steps[1:]] + [xp.zeros_like(first)]  # the state after step t
    if layout.c_slot is not None:
        kept = xp.stack([xp.stack([*step[:-1], after]) for step, after in zip(steps, later)])
        return kept[:, 0, ...], kept, first  # backward reads no y: a view stands in for its shape
    kept = xp.stack([xp.stack(list(step[:-1])) for step in steps])
    return xp.stack(later), kept, first
