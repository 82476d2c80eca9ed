"""The vanilla (Elman) RNN cell, ``tanh`` or ``relu``.

Forward, with ``gx = W_ih x + b_ih + b_hh`` hoisted and ``gh = W_hh h_prev``::

    h = tanh(gx + gh)            or   h = relu(gx + gh)

Backward from the cached output ``h``::

    dz = dh * (1 - h*h)          or   dz = dh * (h > 0)
    dgx = dgh = dz

The cache of a step is ``h`` itself (the step's output), so it costs no memory.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._typing import Array
from .base import Cell

__all__ = ["RNN_RELU", "RNN_TANH"]


def _tanh_step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType) -> Any:
    h = xp.tanh(gx + gh)  # (N, H)
    return (h,), h


def _tanh_step_backward(dstate: tuple[Array], h: Array, *, xp: ModuleType) -> Any:
    (dh,) = dstate
    return dh * (1.0 - h * h), None, (None,)


def _relu_step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType) -> Any:
    z = gx + gh
    h = xp.where(z > 0, z, xp.zeros_like(z))
    return (h,), h


def _relu_step_backward(dstate: tuple[Array], h: Array, *, xp: ModuleType) -> Any:
    (dh,) = dstate
    return xp.where(h > 0, dh, xp.zeros_like(dh)), None, (None,)


RNN_TANH = Cell("rnn_tanh", 1, 1, True, _tanh_step, _tanh_step_backward)
RNN_RELU = Cell("rnn_relu", 1, 1, True, _relu_step, _relu_step_backward)
