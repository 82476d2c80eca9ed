"""torch modules: ``xrnn.torch.LSTM``, ``GRU`` and ``RNN``, drop-in for ``torch.nn``'s.

Each is a :class:`torch.nn.Module` with ``torch.nn``'s constructor, parameter names
(its ``state_dict`` is ``torch.nn.LSTM``'s, key for key and shape for shape) and call
(``out, (h, c) = lstm(x)``), plus ``lengths=`` for sequences of different lengths without
packing. Its forward and backward are xrnn's: the time loop on the compiled kernels
(torch CPU tensors reach Numba's loops through zero-copy views, :mod:`xrnn.backends.bridges`)
and the exact backward through time as the ``torch.autograd.Function`` of
:mod:`xrnn.nn.apply_torch`.

Importing this package imports torch; ``import xrnn`` does not import it.
"""

from .modules import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN"]
