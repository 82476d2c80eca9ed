"""The independently recurrent cell, IndRNN (Li et al. 2018), ``tanh`` or ``relu``.

Each unit reads only its own previous value, through a per-unit recurrent weight ``u``
``(H,)`` (the layer's ``weight_hh_l{k}``), so the recurrence has no matmul
(:attr:`Cell.diagonal <xrnn.cells.base.Cell>`). With ``gx = W_ih x + b_ih + b_hh`` hoisted
and ``gh = u * h_prev`` formed by the loop::

    h = act(gx + gh)                    act = tanh or relu

Backward from the cached output ``h``::

    dz = dh * (1 - h*h)   or   dz = dh * (h > 0)
    dgx = dgh = dz,   dh_prev = dz * u,   du = sum over steps and rows of dz * h_prev

The step itself, in array and scalar form, is the Elman RNN's (:mod:`.rnn`): what differs
is ``gh``, which the loops form as they form ``h_prev @ W_hh^T`` for the other cells (the
``diagonal`` contract), and ``dh_prev``. A unit's ``h`` at every step needs only its own
``h`` before, so the compiled kernels carry it through all ``T`` steps in one pass
(Numba) or one thread per unit (CUDA), after the hoisted input projection.
"""

from __future__ import annotations

from .base import Cell
from .rnn import (
    _relu_step,
    _relu_step_backward,
    _tanh_step,
    _tanh_step_backward,
    relu_scalar_step,
    tanh_scalar_step,
)

__all__ = ["INDRNN_RELU", "INDRNN_TANH", "relu_scalar_step", "tanh_scalar_step"]

#: IndRNN with ``tanh``: ``h = tanh(W_ih x + b + u * h_prev)``.
INDRNN_TANH = Cell("indrnn_tanh", 1, 1, True, _tanh_step, _tanh_step_backward, diagonal=True)
#: IndRNN with ``relu`` (the paper's choice): ``h = relu(W_ih x + b + u * h_prev)``.
INDRNN_RELU = Cell("indrnn_relu", 1, 1, True, _relu_step, _relu_step_backward, diagonal=True)
