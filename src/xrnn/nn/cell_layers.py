"""Single-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``, interchangeable with ``torch.nn``'s.

One step of a batch, on the same cell maths as the layers (:mod:`xrnn.cells`)::

    gx = x @ W_ih^T + b_ih          gh = h @ W_hh^T + b_hh          (N, G*H)
    state', cache = cell.step(gx, gh, state)

and backward::

    dgx, dgh, direct = cell.step_backward(dstate', cache)
    dx = dgx @ W_ih    dh = dgh @ W_hh + direct_h    dW_ih = dgx^T x    dW_hh = dgh^T h

=================  ==============  ==============================
key                shape           meaning
=================  ==============  ==============================
``weight_ih``      ``(G*H, I)``    input-to-hidden weights
``weight_hh``      ``(G*H, H)``    hidden-to-hidden weights
``bias_ih``        ``(G*H,)``      input-to-hidden bias (``bias=True``)
``bias_hh``        ``(G*H,)``      hidden-to-hidden bias (``bias=True``)
=================  ==============  ==============================

``G`` is 1 (``RNNCell``), 4 (``LSTMCell``, gates ``i, f, g, o``) or 3 (``GRUCell``, gates
``r, z, n``), as in torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..cells import GRU_CELL, LSTM_CELL, RNN_RELU, RNN_TANH
from .step_cell import CellCache, StepCell

__all__ = ["CellCache", "GRUCell", "LSTMCell", "RNNCell"]


_DOC = """

    Parameters
    ----------
    input_size : int
        Features of the input, ``I``.
    hidden_size : int
        Features of the hidden state, ``H``.
    bias : bool, default True
        Use the biases ``b_ih`` and ``b_hh``.
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the parameters.
    device : device, optional
        Device of the parameters.
    xp : str or module, optional
        Backend name or array namespace of the parameters (default: ``XRNN_BACKEND``).
    seed : int or numpy.random.Generator, optional
        Seed of the initial values, uniform in ``±1/sqrt(H)`` as torch's.

    Attributes
    ----------
    params : dict of str to array
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (see :mod:`xrnn.nn.cell_layers`).
    """


class LSTMCell(StepCell):
    """One LSTM step, interchangeable with ``torch.nn.LSTMCell``.

    Gates ``i, f, g, o``; ``c' = f * c + i * g``, ``h' = o * tanh(c')``; state ``(h, c)``,
    each ``(N, H)``.
    """

    __doc__ += _DOC
    _cell = LSTM_CELL


class GRUCell(StepCell):
    """One GRU step, interchangeable with ``torch.nn.GRUCell``.

    Gates ``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``; state ``h``, ``(N, H)``.
    """

    __doc__ += _DOC
    _cell = GRU_CELL


class RNNCell(StepCell):
    """One Elman RNN step, interchangeable with ``torch.nn.RNNCell``.

    ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with ``act`` tanh or relu; state ``h``,
    ``(N, H)``. Takes ``nonlinearity`` after ``bias``, as torch.
    """

    __doc__ += _DOC.replace(
        "    dtype :",
        '    nonlinearity : {"tanh", "relu"}, default "tanh"\n        The activation.\n    dtype :',
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        cells = {"tanh": RNN_TANH, "relu": RNN_RELU}
        if nonlinearity not in cells:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity, self._cell = nonlinearity, cells[nonlinearity]
        super().__init__(input_size, hidden_size, bias, dtype=dtype, device=device, xp=xp, seed=seed)

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        nonlinearity: str = "tanh",
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> RNNCell:
        """Build a cell from a ``torch.nn.RNNCell``-style state dict.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as in :mod:`xrnn.nn.cell_layers`; values of any namespace.
        nonlinearity : {"tanh", "relu"}, default "tanh"
            The activation (a state dict does not record it).
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        RNNCell
            A cell holding copies of the values.
        """
        return cls._from_state_dict(sd, xp=xp, dtype=dtype, device=device, nonlinearity=nonlinearity)
