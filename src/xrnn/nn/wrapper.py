"""What a layer wrapper shares with the layer it wraps: its parameters, layout and mode."""

from __future__ import annotations

from typing import Any, TypeVar

from .._util.typing import Array

__all__ = ["LayerWrapper"]

_W = TypeVar("_W", bound="LayerWrapper")


class LayerWrapper:
    """A base for the objects that run one layer differently: the layer's parameters, layout, mode.

    :class:`~xrnn.nn.reversed.Reversed` and :class:`~xrnn.nn.initial_state.WithInitialState`.

    Attributes
    ----------
    layer : RNN, LSTM, GRU or another wrapper
        The wrapped layer.
    """

    layer: Any

    @property
    def params(self) -> dict[str, Array]:
        """The wrapped layer's parameters (the same dict)."""
        return self.layer.params

    @property
    def batch_first(self) -> bool:
        """Layout of ``x``, as the wrapped layer's."""
        return bool(self.layer.batch_first)

    def eval(self: _W) -> _W:
        """Set evaluation mode (no dropout) on the wrapped layer.

        Returns
        -------
        LayerWrapper
            The wrapper itself.
        """
        self.layer.eval()
        return self
