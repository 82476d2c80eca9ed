"""A recurrent layer with a fixed default initial state: ONNX's constant ``initial_h``/``initial_c``.

xrnn's layers start from zeros when no state is given. A recurrent node of an ONNX graph may
instead hold its initial state as a constant; :func:`xrnn.load_onnx` keeps it by wrapping
the layer in :class:`WithInitialState`, which passes that state whenever the caller gives
none. The state is a constant of the graph, not a trained parameter: it is not in
:attr:`params`, and its gradient is returned by ``backward`` as ``dstate0`` like any state's.
"""

from __future__ import annotations

from typing import Any

from .._util.namespaces import convert
from .._util.typing import Array
from .layers import GRU, LSTM, RNN
from .reversed import Reversed
from .wrapper import LayerWrapper

__all__ = ["WithInitialState"]


class WithInitialState(LayerWrapper):
    """A layer whose state before the first step is ``state`` unless the caller passes another.

    Parameters
    ----------
    layer : RNN, LSTM, GRU or Reversed
        The layer; its parameters are shared, not copied.
    state : array (L*D, N, H), or tuple (h, c) of arrays (L*D, N, H) and (L*D, N, H) for the LSTM
        The default initial state, in the layer's state layout (layer ``k``, direction ``d``
        at index ``k*D + d``), of any array namespace; stored as an array of the layer's
        namespace, dtype and device. Its batch size ``N`` is the only batch size the default
        serves: a call with another batch size must pass ``state=``.

    Attributes
    ----------
    layer : RNN, LSTM, GRU or Reversed
        The wrapped layer.
    state : array or tuple of arrays
        The default initial state.
    """

    def __init__(self, layer: Any, state: Any) -> None:
        inner = layer.layer if isinstance(layer, Reversed) else layer
        if not isinstance(inner, (RNN, LSTM, GRU)):
            raise TypeError(
                f"layer must be an xrnn RNN, LSTM, GRU or Reversed layer, got {type(layer).__name__}"
            )
        is_lstm = isinstance(inner, LSTM)
        parts = state if isinstance(state, tuple) else (state,)
        if len(parts) != (2 if is_lstm else 1):
            want = "a tuple (h, c)" if is_lstm else "one array h"
            raise TypeError(f"state must be {want} for a {type(inner).__name__}, got {len(parts)} arrays")
        sizes = (inner.proj_size or inner.hidden_size, inner.hidden_size) if is_lstm else (inner.hidden_size,)
        rows = inner.num_layers * inner.num_directions
        place = {"xp": inner.xp, "dtype": inner.dtype, "device": inner.device}
        converted = []
        for name, part, size in zip(("h", "c"), parts, sizes):
            shape = tuple(getattr(part, "shape", ()))
            if len(shape) != 3 or shape[0] != rows or shape[2] != size:
                raise ValueError(
                    f"state {name} must have shape ({rows}, N, {size}) (num_layers * num_directions, "
                    f"batch, size), got {shape}"
                )
            converted.append(convert(part, **place))
        if is_lstm and converted[0].shape[1] != converted[1].shape[1]:
            raise ValueError(
                f"state h and c must have one batch size, got {converted[0].shape[1]} and "
                f"{converted[1].shape[1]}"
            )
        self.layer = layer
        self.state = tuple(converted) if is_lstm else converted[0]
        self._batch = int(converted[0].shape[1])

    def forward(
        self, x: Array, state: Any = None, lengths: Any = None, **options: Any
    ) -> tuple[Array, Any, Any]:
        """Run the layer from ``state``, or from the default initial state when it is None.

        Parameters
        ----------
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences; without ``state``, ``N`` must be the default state's batch size.
        state : array (L*D, N, H), or tuple (h, c) for the LSTM, optional
            The initial state; the default one if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence, each in 1..T.
        **options
            Passed to the layer's ``forward`` (``need_cache``, ``checkpoint``, ``check_finite``).

        Returns
        -------
        y : array, shape (T, N, D*H) (``(N, T, D*H)`` if batch_first)
        state : array (L*D, N, H), or tuple (h, c)
            The final state.
        cache : object or None
            Input to :meth:`backward` (None with ``need_cache=False``).
        """
        if state is None:
            shape = tuple(getattr(x, "shape", ()))
            if len(shape) == 3:
                n = shape[0] if self.batch_first else shape[1]
                if n != self._batch:
                    raise ValueError(
                        f"x has batch size {n}, but the default initial state is for batch size "
                        f"{self._batch}; pass state= for another batch size"
                    )
            state = self.state
        return self.layer.forward(x, state, lengths, **options)

    __call__ = forward

    def backward(
        self, cache: Any, dy: Array | None, dstate: Any = None, **options: Any
    ) -> tuple[Array, Any, Any]:
        """Backpropagate through :meth:`forward`: the wrapped layer's backward.

        Parameters
        ----------
        cache : object
            Third result of :meth:`forward`.
        dy : array, shape like forward's ``y``, or None
            Gradient of the loss with respect to ``y``.
        dstate : array or tuple, optional
            Gradient with respect to the final state.
        **options
            The wrapped layer's backward options (``check_finite``, ``need_dx``).

        Returns
        -------
        dx : array, shape like ``x``, or None without ``need_dx``
        dstate0 : array or tuple
            Gradient with respect to the initial state (the default one when it was used).
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        return self.layer.backward(cache, dy, dstate, **options)

    def __repr__(self) -> str:
        return f"WithInitialState({self.layer!r})"
