"""The cells: each one's whole maths, forward and backward, in one short module.

=============  =====================  ======================================
cell           module                 gates (torch's order)
=============  =====================  ======================================
``RNN_TANH``   :mod:`.rnn`            one block, ``h = tanh(z)``
``RNN_RELU``   :mod:`.rnn`            one block, ``h = relu(z)``
``LSTM_CELL``  :mod:`.lstm`           ``i, f, g, o``; state ``(h, c)``
``GRU_CELL``   :mod:`.gru`            ``r, z, n``
=============  =====================  ======================================

:data:`GRU_RESET_BEFORE` (:mod:`.gru_reset_before`) is the GRU of Keras (``reset_after=False``)
and ONNX (``linear_before_reset=0``): gates ``r, z, n`` with ``U_n (r * h)``, a second recurrent
matmul after the gate ``r`` (:class:`LateMatmul`, the step contract for such cells).
:data:`LSTM_PEEPHOLE` (:mod:`.lstm_peephole`) is the LSTM with peepholes (ONNX's ``P``), whose
per-unit weights are the cell's ``vectors`` (:class:`Cell`). :data:`INDRNN_TANH` and
:data:`INDRNN_RELU` (:mod:`.indrnn`) are IndRNN, whose recurrent weight is a per-unit vector
(``Cell.diagonal``): no recurrent matmul. :data:`LAYERNORM_LSTM` and
:data:`LAYERNORM_GRU` (:mod:`.layernorm_lstm`, :mod:`.layernorm_gru`) are haste's LayerNorm
cells: their step reduces over each row, so their compiled form is per row (:class:`RowStep`).

Each module also writes its step once more as scalar functions of one element
(:class:`ScalarStep`, :data:`SCALAR_STEPS`), which Numba (CPU) and numba-cuda (GPU)
compile into the fused kernels of :mod:`xrnn.backends`.

A user's cell is the same object, made from its scalar equations by :func:`define`
(:mod:`.definition`); minGRU and minLSTM, whose gates read the input alone, are in
:mod:`.minimal`.
"""

from collections.abc import Callable

from . import gru, gru_reset_before, indrnn, lstm, lstm_peephole, rnn
from .base import Cell, LateMatmul, RowStep, ScalarStep
from .definition import DefinedCell, define
from .gru import GRU_CELL, GRUStep
from .gru_reset_before import GRU_RESET_BEFORE, GRUResetBeforeStep
from .indrnn import INDRNN_RELU, INDRNN_TANH
from .layernorm_gru import LAYERNORM_GRU, LayerNormGRUStep
from .layernorm_lstm import LAYERNORM_LSTM, LayerNormLSTMStep
from .lstm import LSTM_CELL, LSTMStep
from .lstm_peephole import LSTM_PEEPHOLE, PeepholeStep
from .rnn import RNN_RELU, RNN_TANH

__all__ = [
    "CELLS",
    "GRU_CELL",
    "GRU_RESET_BEFORE",
    "INDRNN_RELU",
    "INDRNN_TANH",
    "LAYERNORM_GRU",
    "LAYERNORM_LSTM",
    "LSTM_CELL",
    "LSTM_PEEPHOLE",
    "RNN_RELU",
    "RNN_TANH",
    "SCALAR_STEPS",
    "Cell",
    "DefinedCell",
    "GRUResetBeforeStep",
    "GRUStep",
    "LateMatmul",
    "LayerNormGRUStep",
    "LayerNormLSTMStep",
    "LSTMStep",
    "PeepholeStep",
    "RowStep",
    "ScalarStep",
    "define",
]

#: Every cell by name.
CELLS: dict[str, Cell] = {c.name: c for c in (RNN_TANH, RNN_RELU, LSTM_CELL, GRU_CELL)}
CELLS |= {c.name: c for c in (GRU_RESET_BEFORE, LSTM_PEEPHOLE, INDRNN_TANH, INDRNN_RELU)}
CELLS |= {c.name: c for c in (LAYERNORM_LSTM, LAYERNORM_GRU)}

#: Each cell's step as scalar functions for compiled kernels, by name: ``SCALAR_STEPS[name](sigmoid,
#: tanh)`` is its :class:`ScalarStep` built on a target's activation primitives.
SCALAR_STEPS: dict[str, Callable[..., ScalarStep]] = {
    "rnn_tanh": rnn.tanh_scalar_step,
    "rnn_relu": rnn.relu_scalar_step,
    "lstm": lstm.scalar_step,
    "gru": gru.scalar_step,
    "gru_reset_before": gru_reset_before.scalar_step,
    "lstm_peephole": lstm_peephole.scalar_step,
    "indrnn_tanh": indrnn.tanh_scalar_step,
    "indrnn_relu": indrnn.relu_scalar_step,
}
