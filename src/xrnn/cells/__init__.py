"""The cells: each one's whole maths, forward and backward, in one short module.

=============  =====================  ======================================
cell           module                 gates (torch's order)
=============  =====================  ======================================
``RNN_TANH``   :mod:`.rnn`            one block, ``h = tanh(z)``
``RNN_RELU``   :mod:`.rnn`            one block, ``h = relu(z)``
``LSTM_CELL``  :mod:`.lstm`           ``i, f, g, o``; state ``(h, c)``
``GRU_CELL``   :mod:`.gru`            ``r, z, n``
=============  =====================  ======================================
"""

from .base import Cell
from .gru import GRU_CELL, GRUStep
from .lstm import LSTM_CELL, LSTMStep
from .rnn import RNN_RELU, RNN_TANH

__all__ = ["CELLS", "GRU_CELL", "LSTM_CELL", "RNN_RELU", "RNN_TANH", "Cell", "GRUStep", "LSTMStep"]

#: Every cell by name.
CELLS: dict[str, Cell] = {c.name: c for c in (RNN_TANH, RNN_RELU, LSTM_CELL, GRU_CELL)}
