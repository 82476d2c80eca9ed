"""The network: recurrent layers, cell layers, :class:`Dense` and :class:`SequenceModel`.

Layers take ``torch.nn``'s constructor arguments and parameter names (:mod:`.layers`, on
the shared :mod:`.recurrent` base with its state dicts, modes and caches); single-step
cells (:mod:`.cell_layers`); the dense head (:mod:`.dense`); the model of a recurrent layer
and a head (:mod:`.model`); each layer as a pure function, ``apply``, with JAX's and
torch's autograd wrappers (:mod:`.apply`, :mod:`.apply_jax`, :mod:`.apply_torch`). May
import :mod:`xrnn.backends`, :mod:`xrnn.engine`, :mod:`xrnn.cells` and the helpers.
"""

from .cell_layers import GRUCell, LSTMCell, RNNCell
from .dense import Dense
from .layers import GRU, LSTM, RNN
from .model import SequenceModel

__all__ = ["GRU", "LSTM", "RNN", "Dense", "GRUCell", "LSTMCell", "RNNCell", "SequenceModel"]
