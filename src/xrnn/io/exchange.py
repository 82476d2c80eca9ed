"""What the ONNX and Keras exchanges share: gate orders, the layer options they need, building a layer.

xrnn keeps torch's gate orders (LSTM ``i, f, g, o``, GRU ``r, z, n``, peepholes ``i, f, o``).
ONNX orders the LSTM's gates ``i, o, f, c`` and its peepholes ``i, o, f``, and the GRU's
``z, r, h``; Keras keeps ``i, f, c, o`` for the LSTM and orders the GRU's ``z, r, h``. A
permutation ``perm`` here says which xrnn block goes to each place of the other format:
``other = concat([xrnn_block[j] for j in perm])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from .._util.namespaces import convert, resolve_namespace, to_host
from ..nn.indrnn import IndRNN
from ..nn.layers import GRU, LSTM, RNN
from ..nn.model import SequenceModel

__all__ = [
    "GRU_ZRH",
    "KINDS",
    "LSTM_IFCO",
    "LSTM_IOFC",
    "PEEPHOLE_IOF",
    "build_layer",
    "build_model",
    "host_params",
    "inverse",
    "kind_of",
    "permute_blocks",
    "split_model",
]

#: xrnn LSTM (i, f, g, o) -> ONNX (i, o, f, c).
LSTM_IOFC = (0, 3, 1, 2)
#: xrnn LSTM (i, f, g, o) -> Keras (i, f, c, o): the same order.
LSTM_IFCO = (0, 1, 2, 3)
#: xrnn GRU (r, z, n) -> ONNX and Keras (z, r, h).
GRU_ZRH = (1, 0, 2)
#: xrnn peepholes (i, f, o) -> ONNX P (i, o, f).
PEEPHOLE_IOF = (0, 2, 1)
#: The layer class of each kind.
KINDS: dict[str, type[RNN] | type[LSTM] | type[GRU]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``perm``."""
    out = [0] * len(perm)
    for place, block in enumerate(perm):
        out[block] = place
    return tuple(out)


def permute_blocks(a: Any, perm: Sequence[int], *, axis: int = 0) -> Any:
    """``a`` (NumPy) cut into ``len(perm)`` equal blocks along ``axis``, put in the order ``perm``."""
    import numpy as np

    blocks = np.split(a, len(perm), axis=axis)
    return np.concatenate([blocks[j] for j in perm], axis=axis)


def kind_of(layer: Any) -> str:
    """``"rnn"``, ``"lstm"`` or ``"gru"`` for an xrnn layer; a TypeError for anything else.

    An IndRNN is a ValueError: neither ONNX nor Keras has an operator or layer for it.
    """
    if isinstance(layer, IndRNN):
        raise ValueError(
            "ONNX and Keras have no IndRNN (their recurrent operators are RNN, LSTM and GRU, whose "
            "recurrent weight is a matrix, not IndRNN's per-unit vector): cannot exchange an xrnn.IndRNN"
        )
    for kind, cls in KINDS.items():
        if isinstance(layer, cls):
            return kind
    if getattr(getattr(layer, "_cell", None), "row_step", None) is not None:  # the LayerNorm cells
        raise TypeError(
            f"a {type(layer).__name__} normalises its pre-activations inside each step, which the RNN, "
            "LSTM and GRU of ONNX and Keras cannot express: it cannot be exported"
        )
    raise TypeError(
        f"model must be an xrnn.SequenceModel or an xrnn.RNN, LSTM or GRU layer, got {type(layer).__name__}"
    )


def split_model(model: Any) -> tuple[Any, Any]:
    """``(layer, model or None)``: the recurrent layer of a SequenceModel, or a bare layer."""
    if isinstance(model, SequenceModel):
        kind_of(model.rnn)
        return model.rnn, model
    kind_of(model)
    return model, None


def host_params(layer: Any) -> dict[str, Any]:
    """The layer's parameters as NumPy copies."""
    return {k: to_host(v) for k, v in layer.params.items()}


def build_layer(
    kind: str,
    params: Mapping[str, Any],
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    batch_first: bool,
    xp: str | ModuleType | None,
    dtype: Any,
    device: Any,
    **extra: Any,
) -> Any:
    """A layer of ``kind`` holding copies of the NumPy ``params`` (keys and shapes checked).

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
        The layer kind.
    params : mapping of str to numpy.ndarray
        Every parameter under the layer's keys (see :mod:`xrnn.nn.layers`).
    input_size, hidden_size, num_layers : int
        Sizes of the layer.
    bidirectional, bias, batch_first : bool
        Options of the layer.
    xp : str or module, optional
        Target namespace.
    dtype : dtype, optional
        Target dtype (default: that of the values).
    device : device, optional
        Target device.
    **extra
        Further options of the layer class (``nonlinearity``, ``reset_after``, ``peepholes``).

    Returns
    -------
    RNN, LSTM or GRU
    """
    namespace_ = resolve_namespace(xp)
    if dtype is None:
        dtype = str(next(iter(params.values())).dtype)
    layer = KINDS[kind](
        input_size,
        hidden_size,
        num_layers=num_layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        xp=namespace_,
        dtype=dtype,
        device=device,
        **extra,
    )
    expected = {k: tuple(v.shape) for k, v in layer.params.items()}
    got = {k: tuple(v.shape) for k, v in params.items()}
    if expected != got:
        raise ValueError(f"the weights must have the keys and shapes {expected} of this layer, got {got}")
    layer.params = {k: convert(params[k], xp=namespace_, dtype=layer.dtype, device=device) for k in expected}
    return layer


def build_model(
    kind: str,
    params: Mapping[str, Any],
    head: tuple[str, Any, Any] | None,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    batch_first: bool,
    xp: str | ModuleType | None,
    dtype: Any,
    device: Any,
    **extra: Any,
) -> Any:
    """The layer of :func:`build_layer`, or with a head ``(mode, weight (O, D*H), bias (O,))`` a model.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
        The layer kind.
    params : mapping of str to numpy.ndarray
        The layer's parameters under its keys.
    head : tuple or None
        ``("every" or "last", weight, bias)`` of the dense head, NumPy arrays; None for a bare layer.
    input_size, hidden_size, num_layers : int
        Sizes of the layer.
    bidirectional, bias, batch_first : bool
        Options of the layer.
    xp : str or module, optional
        Target namespace.
    dtype : dtype, optional
        Target dtype (default: that of the values).
    device : device, optional
        Target device.
    **extra
        Further options of the layer class.

    Returns
    -------
    SequenceModel, RNN, LSTM or GRU
    """
    layer = build_layer(
        kind, params, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, bias=bias,
        bidirectional=bidirectional, batch_first=batch_first, xp=xp, dtype=dtype, device=device, **extra,
    )  # fmt: skip
    if head is None:
        return layer
    mode, weight, head_bias = head
    outputs, width = int(weight.shape[0]), (2 if bidirectional else 1) * hidden_size
    if tuple(weight.shape) != (outputs, width) or tuple(head_bias.shape) != (outputs,):
        raise ValueError(
            f"the head's weight must be (O, {width}) and its bias (O,), got {tuple(weight.shape)} and "
            f"{tuple(head_bias.shape)}"
        )
    model = SequenceModel(
        kind, input_size, hidden_size, outputs, num_layers=num_layers, bidirectional=bidirectional,
        batch_first=batch_first, head=mode, bias=bias, xp=layer.xp, dtype=layer.dtype, device=device, **extra,
    )  # fmt: skip
    place = {"xp": layer.xp, "dtype": layer.dtype, "device": device}
    model.set_params(
        {f"rnn.{k}": v for k, v in layer.params.items()}
        | {"head.weight": convert(weight, **place), "head.bias": convert(head_bias, **place)}
    )
    return model
