"""The cells: each one's whole maths, forward and backward, in one short module.

=============  =====================  ======================================
cell           module                 gates (torch's order)
=============  =====================  ======================================
``RNN_TANH``   :mod:`.rnn`            one block, ``h = tanh(z)``
``RNN_RELU``   :mod:`.rnn`            one block, ``h = relu(z)``
``LSTM_CELL``  :mod:`.lstm`           ``i, f, g, o``; state ``(h, c)``
``GRU_CELL``   :mod:`.gru`            ``r, z, n``
=============  =====================  ======================================

Each module also writes its step once more as scalar functions of one element
(:class:`ScalarStep`, :data:`SCALAR_STEPS`), which Numba (CPU) and numba-cuda (GPU)
compile into the fused kernels of :mod:`xrnn.backends`.

A user's cell is the same object, made from its scalar equations by :func:`define`
(:mod:`.definition`); minGRU and minLSTM, whose gates read the input alone, are in
:mod:`.minimal`.
"""

from collections.abc import Callable

from . import gru, lstm, rnn
from .base import Cell, ScalarStep
from .definition import DefinedCell, define
from .gru import GRU_CELL, GRUStep
from .lstm import LSTM_CELL, LSTMStep
from .rnn import RNN_RELU, RNN_TANH

__all__ = [
    "CELLS",
    "GRU_CELL",
    "LSTM_CELL",
    "RNN_RELU",
    "RNN_TANH",
    "SCALAR_STEPS",
    "Cell",
    "DefinedCell",
    "GRUStep",
    "LSTMStep",
    "ScalarStep",
    "define",
]

#: Every cell by name.
CELLS: dict[str, Cell] = {c.name: c for c in (RNN_TANH, RNN_RELU, LSTM_CELL, GRU_CELL)}

#: Each cell's step as scalar functions for compiled kernels, by name: ``SCALAR_STEPS[name](sigmoid,
#: tanh)`` is its :class:`ScalarStep` built on a target's activation primitives.
SCALAR_STEPS: dict[str, Callable[..., ScalarStep]] = {
    "rnn_tanh": rnn.tanh_scalar_step,
    "rnn_relu": rnn.relu_scalar_step,
    "lstm": lstm.scalar_step,
    "gru": gru.scalar_step,
}
