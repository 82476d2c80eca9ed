"""xrnn: recurrent networks (RNN, LSTM, GRU) with exact backpropagation through time.

Written once against the Python Array API standard, so one code path runs on NumPy,
CuPy, PyTorch, JAX and array-api-strict.

Two faces over one engine:

- :mod:`xrnn.classic`, the step-by-step formulation (column vectors, ``(n_x, m, T_x)``,
  parameter dicts, per-step caches);
- the layers :class:`RNN`, :class:`LSTM`, :class:`GRU`, interchangeable with ``torch.nn``'s.
"""

from ._backend import BACKENDS, default_namespace, get_backend, use_backend
from .layers import GRU, LSTM, RNN
from .tbptt import truncated_bptt

__all__ = [
    "BACKENDS",
    "GRU",
    "LSTM",
    "RNN",
    "default_namespace",
    "get_backend",
    "truncated_bptt",
    "use_backend",
]
__version__ = "0.1.0"
