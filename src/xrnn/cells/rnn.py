"""The vanilla (Elman) RNN cell, ``tanh`` or ``relu``.

Forward, with ``gx = W_ih x + b_ih + b_hh`` hoisted and ``gh = W_hh h_prev``::

    h = tanh(gx + gh)            or   h = relu(gx + gh)

Backward from the cached output ``h``::

    dz = dh * (1 - h*h)          or   dz = dh * (h > 0)
    dgx = dgh = dz

The cache of a step is ``h`` itself (the step's output), so it costs no memory.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._util.typing import Array
from .base import Cell, ScalarStep

__all__ = ["RNN_RELU", "RNN_TANH", "relu_scalar_step", "tanh_scalar_step"]


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


def tanh_scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The tanh RNN's step per element, for compiled kernels (see :class:`ScalarStep`).

    ``forward(one, x, h_in) -> h`` from the input part ``x`` and the recurrent part
    ``h_in`` of the pre-activation; ``backward(one, dh, h) -> dz``.
    """

    def forward(one: Any, x: Any, h_in: Any) -> Any:
        return tanh(x + h_in)

    def backward(one: Any, dh: Any, h: Any) -> Any:
        return dh * (one - h * h)

    return ScalarStep(forward, backward)


def relu_scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The relu RNN's step per element, for compiled kernels (see :class:`ScalarStep`).

    ``forward(one, x, h_in) -> h``; ``backward(one, dh, h) -> dz``. A NaN pre-activation
    gives 0, as ``where(z > 0, z, 0)`` does.
    """

    def forward(one: Any, x: Any, h_in: Any) -> Any:
        z = x + h_in
        return z if z > 0 else one - one

    def backward(one: Any, dh: Any, h: Any) -> Any:
        return dh if h > 0 else one - one

    return ScalarStep(forward, backward)
