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
:class:`Adam` with :func:`clip_grad_norm`, :class:`SequenceModel` (a recurrent layer
and a dense head), :func:`fit` on arrays (and :func:`train` on tasks), :func:`softmax`,
:func:`sample`, checkpoints of any model or layer (:func:`save_checkpoint`,
:func:`load_checkpoint`), the data of :mod:`xrnn.data`, and ``python -m xrnn``.
"""

from ._util.namespaces import BACKENDS, default_namespace, get_backend, use_backend
from .data import AddingTask, ReberTask, TextTask
from .io.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .nn.cell_layer import CellLayer
from .nn.cell_layers import GRUCell, LSTMCell, RNNCell
from .nn.dense import Dense
from .nn.layers import GRU, LSTM, RNN
from .nn.minimal import MinGRU, MinLSTM
from .nn.model import SequenceModel
from .training.fitting import History, fit
from .training.loop import gradient_by_step, train
from .training.losses import mse, softmax, softmax_cross_entropy
from .training.optim import SGD, Adam, clip_grad_norm
from .training.sampling import sample
from .training.tbptt import truncated_bptt

__all__ = [
    "BACKENDS",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "MinGRU",
    "MinLSTM",
    "RNN",
    "RNNCell",
    "SGD",
    "Adam",
    "CellLayer",
    "AddingTask",
    "Checkpoint",
    "CheckpointError",
    "Dense",
    "History",
    "ReberTask",
    "SequenceModel",
    "TextTask",
    "clip_grad_norm",
    "default_namespace",
    "fit",
    "get_backend",
    "gradient_by_step",
    "load_checkpoint",
    "mse",
    "sample",
    "save_checkpoint",
    "softmax",
    "softmax_cross_entropy",
    "train",
    "truncated_bptt",
    "use_backend",
]
__version__ = "0.1.0"
