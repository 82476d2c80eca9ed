"""A recurrent layer run backwards in time only: ONNX's ``direction="reverse"``.

Each sequence is read from its own last valid step back to its first; the outputs are put
back in the order of the input, as the reverse half of a bidirectional layer has them. It is
the layer run on the input reversed within each sequence's length, with its output reversed
the same way; reversal is its own inverse and linear, so backward reverses ``dy``, runs the
layer's backward and reverses ``dx``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._util.namespaces import namespace
from .._util.typing import Array
from ..engine.lengths import reversal_order, reversed_in_time
from .layer_cache import LayerCache
from .layers import GRU, LSTM, RNN
from .wrapper import LayerWrapper

__all__ = ["Reversed", "ReversedCache"]


class ReversedCache(NamedTuple):
    """What :meth:`Reversed.backward` needs: the layer's cache and the reversal order."""

    layer: LayerCache
    order: Array | None


class Reversed(LayerWrapper):
    """A one-direction RNN, LSTM or GRU layer that reads each sequence backwards.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        A layer with ``bidirectional=False``; its parameters are the reverse direction's
        (they are shared, not copied: :attr:`params` is the layer's).

    Attributes
    ----------
    layer : RNN, LSTM or GRU
        The wrapped layer.
    """

    def __init__(self, layer: Any) -> None:
        if not isinstance(layer, (RNN, LSTM, GRU)):
            raise TypeError(f"layer must be an xrnn RNN, LSTM or GRU layer, got {type(layer).__name__}")
        if layer.bidirectional:
            raise ValueError("layer must have bidirectional=False (it is run backwards as a whole), got True")
        self.layer = layer

    def _reverse(self, a: Array, order: Array | None) -> Array:
        xp = namespace(a=a)
        if self.layer.batch_first:
            return xp.permute_dims(reversed_in_time(xp.permute_dims(a, (1, 0, 2)), order, xp=xp), (1, 0, 2))
        return reversed_in_time(a, order, xp=xp)

    def forward(
        self, x: Array, state: Any = None, lengths: Any = None, **options: Any
    ) -> tuple[Array, Any, Any]:
        """Run the layer from each sequence's last valid step back to its first.

        Parameters
        ----------
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        state : array (L, N, H), or tuple (h, c) for the LSTM, optional
            The state before each sequence's last valid step; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence, each in 1..T.
        **options
            Passed to the layer's ``forward`` (``need_cache``, ``checkpoint``, ``check_finite``).

        Returns
        -------
        y : array, shape (T, N, H) (``(N, T, H)`` if batch_first)
            Outputs in the order of ``x``: ``y[t]`` is the state after reading steps
            ``length-1`` down to ``t``; zeros past each sequence's length.
        state : array (L, N, H), or tuple (h, c)
            The state after reading each sequence back to its step 0.
        cache : ReversedCache or None
            Input to :meth:`backward` (None with ``need_cache=False``).
        """
        xp = namespace(x=x)
        if len(x.shape) != 3:
            raise ValueError(f"x must have 3 dimensions, got shape {tuple(x.shape)}")
        t_steps, n = (x.shape[1], x.shape[0]) if self.layer.batch_first else (x.shape[0], x.shape[1])
        lens = self.layer._lengths(lengths, n, t_steps, xp=xp, like=x)
        order = None if lens is None else reversal_order(lens, t_steps, n, xp=xp)
        y, state, cache = self.layer.forward(self._reverse(x, order), state, lens, **options)
        return self._reverse(y, order), state, None if cache is None else ReversedCache(cache, order)

    __call__ = forward

    def backward(
        self, cache: ReversedCache, dy: Array | None, dstate: Any = None, **options: Any
    ) -> tuple[Array, Any, Any]:
        """Backpropagate through :meth:`forward`.

        Parameters
        ----------
        cache : ReversedCache
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
            Gradient with respect to the initial state.
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        if not isinstance(cache, ReversedCache):
            raise TypeError(
                f"cache must be the ReversedCache returned by forward, got {type(cache).__name__}"
            )
        dy = None if dy is None else self._reverse(dy, cache.order)
        dx, dstate0, grads = self.layer.backward(cache.layer, dy, dstate, **options)
        return None if dx is None else self._reverse(dx, cache.order), dstate0, grads

    def __repr__(self) -> str:
        return f"Reversed({self.layer!r})"
