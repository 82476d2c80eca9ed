"""The layer ``IndRNN`` (Li et al. 2018): each unit recurs on itself through a per-unit weight.

================================  ==================  =========================================
key                               shape               meaning
================================  ==================  =========================================
``weight_ih_l{k}``                ``(H, I_k)``        input-to-hidden weights of layer ``k``
``weight_hh_l{k}``                ``(H,)``            the recurrent vector ``u`` (not a matrix)
``bias_ih_l{k}``                  ``(H,)``            input-to-hidden bias
``bias_hh_l{k}``                  ``(H,)``            recurrent bias
``..._reverse``                   as above            the reverse direction (bidirectional)
================================  ==================  =========================================

The keys are those of :class:`xrnn.RNN` (torch's names); only ``weight_hh`` differs, a
vector. The maths is in :mod:`xrnn.cells.indrnn`; the layer runs on the engine's one time
loop (:mod:`xrnn.engine.scan`) with every feature of the other layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..cells import INDRNN_RELU, INDRNN_TANH
from .apply import Functional
from .layers import _INIT_DOC, Call
from .recurrent import Recurrent

__all__ = ["IndRNN"]


class IndRNN(Call, Recurrent, Functional):
    """Independently recurrent layer, IndRNN (Li et al. 2018).

    ``h' = act(W_ih x + b_ih + u * h + b_hh)`` with ``act`` tanh or relu and ``u`` a
    per-unit recurrent weight: ``weight_hh_l{k}`` has shape ``(hidden_size,)``, the vector
    ``u``, not a matrix. Each unit reads only its own previous value, so the recurrence
    costs no matmul: after the hoisted input projection the whole sequence is one
    elementwise loop (compiled by Numba for NumPy, one CUDA kernel for CuPy). State is
    ``h``, ``(L*D, N, H)``. Takes ``nonlinearity`` after ``num_layers``, as
    :class:`xrnn.RNN`. Stacking layers (``num_layers``) is how IndRNN mixes units; the
    paper constrains ``|u|`` (``|u| <= 1`` for tanh) to keep gradients bounded over long
    sequences, which is left to the user (clip ``weight_hh_l{k}`` after each update).
    """

    __doc__ += _INIT_DOC.replace(
        "    bias :",
        '    nonlinearity : {"tanh", "relu"}, default "tanh"\n        The activation.\n    bias :',
    ).replace("(see :mod:`xrnn.nn.layers`)", "(see :mod:`xrnn.nn.indrnn`)")
    _cell = INDRNN_TANH

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        cells = {"tanh": INDRNN_TANH, "relu": INDRNN_RELU}
        if nonlinearity not in cells:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity, self._cell = nonlinearity, cells[nonlinearity]
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
        )

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        nonlinearity: str = "tanh",
        batch_first: bool = False,
        dropout: float = 0.0,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> IndRNN:
        """Build a layer from a state dict with the keys of :mod:`xrnn.nn.indrnn`.

        Parameters
        ----------
        sd : mapping of str to array
            ``weight_ih_l{k}`` ``(H, I_k)``, ``weight_hh_l{k}`` ``(H,)`` and the biases
            ``(H,)``; values of any namespace (torch tensors included).
        nonlinearity : {"tanh", "relu"}, default "tanh"
            The cell's activation (a state dict does not record it).
        batch_first : bool, default False
            Layout of ``x`` for the new layer.
        dropout : float, default 0
            Dropout between layers in training mode (a state dict does not record it).
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        IndRNN
            A layer holding copies of the values.
        """
        return cls._build_from_state_dict(
            sd,
            batch_first=batch_first,
            dropout=dropout,
            xp=xp,
            dtype=dtype,
            device=device,
            nonlinearity=nonlinearity,
        )
