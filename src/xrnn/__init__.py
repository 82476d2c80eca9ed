"""xrnn: recurrent networks (RNN, LSTM, GRU) with exact backpropagation through time.

Written once against the Python Array API standard, so one code path runs on NumPy,
CuPy, PyTorch, JAX and array-api-strict.

Two faces over one engine:

- :mod:`xrnn.classic`, the step-by-step formulation (column vectors, ``(n_x, m, T_x)``,
  parameter dicts, per-step caches);
- the layers :class:`RNN`, :class:`LSTM`, :class:`GRU` and the single-step cells
  :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`, interchangeable with ``torch.nn``'s.

And what it takes to train them: :class:`Dense` over sequences, the losses
:func:`softmax_cross_entropy` and :func:`mse`, the optimisers :class:`SGD` and
:class:`Adam` and :class:`AdamW` with :func:`clip_grad_norm` and the schedules :class:`CosineDecay`
and :class:`StepDecay`, :class:`SequenceModel` (a recurrent layer
and a dense head), :func:`fit` on arrays (and :func:`train` on tasks), :func:`softmax`,
:func:`sample`, checkpoints of any model or layer (:func:`save_checkpoint`,
:func:`load_checkpoint`), models to and from ONNX (:func:`export_onnx`,
:func:`load_onnx`) and Keras weights (:func:`from_keras_weights`,
:func:`to_keras_weights`), the data of :mod:`xrnn.data`, and ``python -m xrnn``.
"""

from ._util.namespaces import BACKENDS, default_namespace, get_backend, use_backend
from .backends.threads import cpu_threads
from .data import AddingTask, ReberTask, TextTask
from .io.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .io.keras import from_keras_weights, to_keras_weights
from .io.onnx_export import export_onnx
from .io.onnx_import import load_onnx
from .nn.cell_layer import CellLayer
from .nn.cell_layers import GRUCell, LSTMCell, RNNCell
from .nn.dense import Dense
from .nn.indrnn import IndRNN
from .nn.layernorm import LayerNormGRU, LayerNormLSTM
from .nn.layers import GRU, LSTM, RNN
from .nn.minimal import MinGRU, MinLSTM
from .nn.model import SequenceModel
from .training.fitting import History, fit
from .training.loop import gradient_by_step, train
from .training.losses import mse, softmax, softmax_cross_entropy
from .training.optim import SGD, Adam, AdamW, clip_grad_norm
from .training.sampling import sample
from .training.schedules import CosineDecay, StepDecay
from .training.tbptt import truncated_bptt

__all__ = [
    "BACKENDS",
    "GRU",
    "GRUCell",
    "IndRNN",
    "LSTM",
    "LSTMCell",
    "LayerNormGRU",
    "LayerNormLSTM",
    "MinGRU",
    "MinLSTM",
    "RNN",
    "RNNCell",
    "SGD",
    "Adam",
    "AdamW",
    "CellLayer",
    "AddingTask",
    "Checkpoint",
    "CheckpointError",
    "CosineDecay",
    "Dense",
    "History",
    "ReberTask",
    "SequenceModel",
    "StepDecay",
    "TextTask",
    "clip_grad_norm",
    "cpu_threads",
    "default_namespace",
    "export_onnx",
    "fit",
    "from_keras_weights",
    "get_backend",
    "gradient_by_step",
    "load_checkpoint",
    "load_onnx",
    "mse",
    "sample",
    "save_checkpoint",
    "softmax",
    "softmax_cross_entropy",
    "to_keras_weights",
    "train",
    "truncated_bptt",
    "use_backend",
]
__version__ = "0.1.0"
