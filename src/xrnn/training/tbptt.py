"""Truncated backpropagation through time: a state carried across chunks, the gradient cut between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._util.namespaces import namespace
from .._util.typing import Array
from .._util.validation import check_int

__all__ = ["truncated_bptt"]


def truncated_bptt(
    layer: Any,
    x: Array,
    chunk_size: int,
    loss_and_grad: Callable[[Array, int], tuple[Any, Array]],
    state: Any = None,
) -> tuple[Any, dict[str, Array], Any]:
    """Run ``layer`` over ``x`` in chunks of ``chunk_size`` steps, back-propagating within each.

    The state reached at the end of one chunk is the initial state of the next, as a
    constant: no gradient flows across a chunk boundary. Memory holds one chunk's cache
    at a time, so it grows with ``chunk_size``, not with ``T``.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer to run; its parameters are not changed.
    x : array, shape (T, N, input_size), or (N, T, input_size) if ``layer.batch_first``
        The whole sequence batch (all sequences of full length ``T``).
    chunk_size : int
        Steps per chunk, ``>= 1``; the last chunk may be shorter.
    loss_and_grad : callable
        ``loss_and_grad(y_chunk, start) -> (loss, dy_chunk)`` for the chunk's output
        ``y_chunk`` (layout as ``y`` of :meth:`LSTM.forward`) whose first step is step
        ``start`` of ``x``; ``dy_chunk`` is the gradient of ``loss`` with respect to ``y_chunk``.
    state : array or tuple (h, c), optional
        Initial state, as for ``layer.forward``.

    Returns
    -------
    loss : scalar
        Sum of the chunk losses.
    grads : dict of str to array
        Sum over chunks of each chunk's parameter gradients, keys as ``layer.params``.
    state : array or tuple (h, c)
        State after the last step, ready to carry into the next call.

    Examples
    --------
    >>> import numpy as np, xrnn
    >>> lstm = xrnn.LSTM(2, 3, dtype="float64", seed=0)
    >>> x = np.ones((10, 4, 2))
    >>> loss, grads, (h, c) = xrnn.truncated_bptt(lstm, x, 4, lambda y, t0: (float(y.sum()), np.ones_like(y)))
    >>> grads["weight_hh_l0"].shape, h.shape
    ((12, 3), (1, 4, 3))
    """
    namespace(x=x)  # an array of a supported namespace, or a TypeError naming x
    check_int("chunk_size", chunk_size)
    if x.ndim != 3:
        raise ValueError(f"x must have 3 dimensions, got shape {tuple(x.shape)}")
    time_axis = 1 if layer.batch_first else 0
    t_steps = x.shape[time_axis]
    total: Any = 0
    grads: dict[str, Array] = {}
    for start in range(0, t_steps, chunk_size):
        stop = min(start + chunk_size, t_steps)
        chunk = x[:, start:stop, :] if time_axis else x[start:stop, ...]
        y, next_state, cache = layer.forward(chunk, state)
        loss, dy = loss_and_grad(y, start)
        _, _, g = layer.backward(cache, dy, need_dx=False)
        grads = g if not grads else {k: grads[k] + g[k] for k in grads}
        total = total + loss
        state = next_state
    return total, grads, state
