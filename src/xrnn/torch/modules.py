"""The torch modules: ``torch.nn.LSTM``'s interface over xrnn's layers and exact backward.

A module keeps its parameters as registered :class:`torch.nn.Parameter` under torch's
names, and an xrnn layer of the same configuration that owns no state of the module (it
is rebuilt after unpickling or copying): each call hands the current parameters to the
layer's :meth:`~xrnn.LSTM.apply`, whose ``torch.autograd.Function`` runs xrnn's forward
and backward. Dropout between layers (training mode, ``dropout > 0``) is
:func:`torch.nn.functional.dropout` between one-layer applies, so masks come from torch's
generator as in ``torch.nn``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from ..nn.layers import GRU as _GRU
from ..nn.layers import LSTM as _LSTM
from ..nn.layers import RNN as _RNN

__all__ = ["GRU", "LSTM", "RNN"]

_DOC = """

    Parameters
    ----------
    input_size : int
        Features of the input ``I``.
    hidden_size : int
        Features of the hidden state ``H``.
    num_layers : int, default 1
        Stacked layers ``L``.{extra}
    bias : bool, default True
        Whether the layers have ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output are ``(N, T, F)`` instead of ``(T, N, F)``.
    dropout : float, default 0.0
        Dropout on the outputs of each layer but the last, in training mode.
    bidirectional : bool, default False
        Run each layer in both directions (``D = 2``).{proj}
    device, dtype : optional
        Of the parameters, as for ``torch.nn`` (``dtype`` defaults to torch's default).

    Notes
    -----
    Call: ``out, state = module(x, hx=None, lengths=None)`` with ``x`` of shape
    ``(T, N, I)`` (or ``(N, T, I)`` with ``batch_first``, or ``(T, I)`` unbatched),
    ``state`` {state}, and ``lengths`` (N integers, optional) the valid steps of each
    sequence: outputs past a sequence's length are zero and the state is each sequence's
    own last one, as with a packed sequence in ``torch.nn``.
"""


class _Module(nn.Module):
    """What the three modules share: parameters, the xrnn layer, the call."""

    _layer_class: type[Any]  # an xrnn layer class (Recurrent and Functional)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        device: Any,
        dtype: Any,
        **cell: Any,
    ) -> None:
        super().__init__()
        self._options = {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "bias": bias,
            "batch_first": batch_first,
            "dropout": dropout,
            "bidirectional": bidirectional,
            **cell,
        }
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        for name, value in cell.items():  # proj_size (LSTM), nonlinearity (RNN)
            setattr(self, name, value)
        layer = self._layers[0]  # checks every argument, as xrnn's layers do
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} acts between layers, and this module has num_layers=1: "
                "it has no effect (as in torch.nn)",
                UserWarning,
                stacklevel=2,
            )
        factory = {"device": device, "dtype": dtype if dtype is not None else torch.get_default_dtype()}
        for key, value in layer.params.items():
            self.register_parameter(key, nn.Parameter(torch.empty(tuple(value.shape), **factory)))
        self.reset_parameters()

    @property
    def _layers(self) -> list[Any]:
        """The xrnn layer of the whole stack, then one per layer (for dropout in training)."""
        made: list[Any] | None = self.__dict__.get("_xrnn_layers")
        if made is None:
            options = {**self._options, "dropout": 0.0}
            whole = self._layer_class(**options, xp="numpy", dtype="float32", seed=0)
            made = [whole.eval()]
            if self.num_layers > 1:
                d = 2 if self.bidirectional else 1
                for k in range(self.num_layers):
                    size = self.input_size if k == 0 else d * whole.output_size
                    one = {**options, "num_layers": 1, "input_size": size}
                    made.append(self._layer_class(**one, xp="numpy", dtype="float32", seed=0).eval())
            self.__dict__["_xrnn_layers"] = made
        return made

    def __getstate__(self) -> dict[str, Any]:
        """The module's state without the xrnn layers (rebuilt on first use)."""
        state = dict(self.__dict__)
        state.pop("_xrnn_layers", None)
        return state

    def reset_parameters(self) -> None:
        """Every parameter drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` with torch's generator, as ``torch.nn``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """Nothing to do (the parameters are used as they are): kept for code written for ``torch.nn``."""

    def extra_repr(self) -> str:
        """The constructor's arguments that differ from their defaults, for ``repr``.

        Returns
        -------
        str
            ``"input_size, hidden_size"`` and ``name=value`` for each other argument changed.
        """
        defaults: dict[str, Any] = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0}
        defaults |= {"bidirectional": False, "proj_size": 0, "nonlinearity": "tanh"}
        text = f"{self.input_size}, {self.hidden_size}"
        for name, value in self._options.items():
            if name in defaults and value != defaults[name]:
                text += f", {name}={value!r}"
        return text

    def forward(  # noqa: D417  (torch's own name for the input, documented below)
        self,
        input: torch.Tensor,  # noqa: A002  (torch.nn's keyword)
        hx: Any = None,
        lengths: Any = None,
    ) -> tuple[torch.Tensor, Any]:
        """Run the stack over ``input`` (see the class Notes for the shapes).

        Parameters
        ----------
        input : tensor, shape (T, N, I), (N, T, I) with batch_first, or (T, I)
            The sequences.
        hx : tensor (L*D, N, H), or tuple (h0, c0) for the LSTM, optional
            Initial state (without the N axis for an unbatched input); zeros if omitted.
        lengths : sequence of int or integer tensor (N,), optional
            Valid steps of each sequence.

        Returns
        -------
        output : tensor, shape (T, N, D*H), or (N, T, D*H) with batch_first
            The last layer's output at each step.
        state : tensor (L*D, N, H), or tuple (h, c) for the LSTM
            Each layer's and direction's final state.
        """
        unbatched = isinstance(input, torch.Tensor) and input.dim() == 2
        if unbatched:
            input = input.unsqueeze(0 if self.batch_first else 1)
            hx = _each(hx, lambda a: a.unsqueeze(1))
        params = {key: getattr(self, key) for key in self._layers[0].params}
        if self.training and self.dropout > 0 and self.num_layers > 1:
            out, state = self._with_dropout(params, input, hx, lengths)
        else:
            out, state = self._layers[0].apply(params, input, hx, lengths)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            state = _each(state, lambda a: a.squeeze(1))
        return out, state

    def _with_dropout(self, params: dict[str, Any], x: Any, hx: Any, lengths: Any) -> tuple[Any, Any]:
        """One layer at a time, with torch's dropout on the outputs between them."""
        d = 2 if self.bidirectional else 1
        states = []
        for k, layer in enumerate(self._layers[1:]):
            if k > 0:
                x = nn.functional.dropout(x, self.dropout, training=True)
            own = {key: params[key.replace("_l0", f"_l{k}")] for key in layer.params}
            x, state = layer.apply(own, x, _each(hx, lambda a, k=k: a[k * d : (k + 1) * d]), lengths)
            states.append(state if isinstance(state, tuple) else (state,))
        joined = tuple(torch.cat(parts, 0) for parts in zip(*states))
        return x, (joined if len(joined) > 1 else joined[0])


def _each(state: Any, f: Any) -> Any:
    """``f`` on a state tensor or on each tensor of a tuple state (None stays None)."""
    if state is None:
        return None
    return tuple(f(a) for a in state) if isinstance(state, (tuple, list)) else f(state)


class LSTM(_Module):
    """``torch.nn.LSTM`` on xrnn: the same constructor, parameters, state dict and call."""

    __doc__ += _DOC.format(
        extra="",
        proj="\n    proj_size : int, default 0\n        Project ``h`` to this size (``weight_hr``).",
        state="a tuple ``(h, c)`` of ``(L*D, N, H)`` tensors (``h (L*D, N, proj_size)`` if projected)",
    )
    _layer_class = _LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        options = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        super().__init__(*options, device, dtype, proj_size=proj_size)


class GRU(_Module):
    """``torch.nn.GRU`` on xrnn: the same constructor, parameters, state dict and call."""

    __doc__ += _DOC.format(extra="", proj="", state="an ``(L*D, N, H)`` tensor")
    _layer_class = _GRU

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype
        )


class RNN(_Module):
    """``torch.nn.RNN`` on xrnn: the same constructor, parameters, state dict and call."""

    __doc__ += _DOC.format(
        extra='\n    nonlinearity : {"tanh", "relu"}, default "tanh"\n        The activation.',
        proj="",
        state="an ``(L*D, N, H)`` tensor",
    )
    _layer_class = _RNN

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
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        options = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        super().__init__(*options, device, dtype, nonlinearity=nonlinearity)
