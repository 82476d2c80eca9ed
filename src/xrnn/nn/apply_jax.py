"""A layer's ``apply`` on JAX arrays: a ``jax.custom_vjp`` whose backward is xrnn's own.

``jax.grad`` of a plain JAX function traces through the forward loop and differentiates
every operation of every step. Here the forward pass keeps the layer's cache (post-activation
values, or only checkpoints with ``checkpoint``) as the residuals, and the backward pass is
the layer's exact :meth:`~xrnn.LSTM.backward`, one ``lax.scan`` per direction (:mod:`.ops`).

What needs values runs before anything is traced: the lengths are checked and made an
array here, outside the ``custom_vjp``; under ``jax.jit`` they are tracers already, and
are clipped to ``0..T`` instead (see :meth:`~xrnn.LSTM.forward`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax

from .._util.typing import Array
from .._util.validation import check_shape

if TYPE_CHECKING:
    from .recurrent import Recurrent

__all__ = ["apply_jax"]


def apply_jax(
    layer: Recurrent,
    params: dict[str, Array],
    x: Array,
    state: Any,
    lengths: Any,
    *,
    checkpoint: int | str | None,
) -> tuple[Array, Any]:
    """``layer.apply`` for JAX arrays (see :meth:`xrnn.LSTM.apply`).

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer whose configuration runs.
    params : dict of str to array
        Its parameters (JAX arrays or tracers).
    x : array, shape (T, N, I), or (N, T, I) if batch_first
        Input.
    state : array (L*D, N, H), tuple (h, c), or None
        Initial state.
    lengths : sequence of int, integer array (N,), or None
        Valid steps per sequence.
    checkpoint : None, int or "sqrt"
        What the forward pass keeps for the backward pass.

    Returns
    -------
    y : array
        As :meth:`xrnn.LSTM.forward`.
    state : array or tuple (h, c)
        As :meth:`xrnn.LSTM.forward`.
    """
    xp = jax.numpy
    layout = "(N, T, input_size)" if layer.batch_first else "(T, N, input_size)"
    check_shape("x", x, (None, None, layer.input_size), layout)
    t_steps, n = (x.shape[1], x.shape[0]) if layer.batch_first else x.shape[:2]
    lens = layer._lengths(lengths, n, t_steps, xp=xp, like=x)
    if isinstance(state, (tuple, list)):  # a tuple, so that its gradient has the structure of the state
        state = layer._state_tuple(state)
    return _compiled(_Config(layer, checkpoint), params, x, state, lens)


#: A layer's attributes that are not its configuration (apply reads neither).
_STATE = ("params", "generator")


class _Config:
    """A layer's configuration and ``checkpoint``: the static argument of :func:`_compiled`.

    Equal for two layers whose every attribute but the parameters and the dropout masks'
    generator is equal (type, cell, sizes, directions, layout, and any option a layer class
    adds), so that a layer made again with the same configuration reuses the compiled
    program. The program keeps the first such layer alive (one per configuration).
    """

    def __init__(self, layer: Recurrent, checkpoint: int | str | None) -> None:
        self.layer, self.checkpoint = layer, checkpoint
        options = sorted((k, v) for k, v in vars(layer).items() if k not in _STATE)
        self.key = (type(layer), layer._cell, checkpoint, tuple((k, _hashable(v)) for k, v in options))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Config) and self.key == other.key


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))
    return value


@functools.partial(jax.jit, static_argnums=0)
def _compiled(config: _Config, params: dict[str, Array], x: Array, state: Any, lengths: Any) -> Any:
    """The layer under ``jax.jit``: one XLA program, compiled once per configuration and shapes.

    Called eagerly (even inside ``jax.grad``), the engine's operations around the scans
    would otherwise each be dispatched, and compiled for every new shape, one by one.
    """
    return _function(config.layer, config.checkpoint)(params, x, state, lengths)


def _function(layer: Recurrent, checkpoint: int | str | None) -> Any:
    """A fresh ``custom_vjp`` over the layer's forward and backward, for one call.

    The residuals of a ``custom_vjp`` must be arrays; the cache also holds Python values
    (sizes, flags, the cell's name), fixed by the layer and the shapes. Forward keeps them
    beside the function, for the one backward of this call.
    """
    kept: dict[str, Any] = {}

    @jax.custom_vjp
    def run(params: dict[str, Array], x: Array, state: Any, lengths: Array | None) -> tuple[Array, Any]:
        y, out, _ = layer._forward(params, x, state, lengths, checkpoint=checkpoint)
        return y, out

    def forward(
        params: dict[str, Array], x: Array, state: Any, lengths: Array | None
    ) -> tuple[tuple[Array, Any], list[Array]]:
        y, out, cache = layer._forward(params, x, state, lengths, checkpoint=checkpoint)
        leaves, kept["tree"] = jax.tree_util.tree_flatten(cache)
        kept["static"] = [_ARRAY if isinstance(a, jax.Array) else a for a in leaves]
        kept["given"] = tuple(s is not None for s in state) if isinstance(state, tuple) else state is not None
        return (y, out), [a for a in leaves if isinstance(a, jax.Array)]

    def backward(arrays: list[Array], cotangents: tuple[Array, Any]) -> tuple[Any, ...]:
        given = iter(arrays)
        leaves = [next(given) if a is _ARRAY else a for a in kept["static"]]
        cache = jax.tree_util.tree_unflatten(kept["tree"], leaves)
        dy, dstate = cotangents
        dx, dstate0, grads = layer._backward(cache, dy, dstate)
        given = kept["given"]
        if isinstance(given, tuple):  # a gradient only where a state was given
            dstate0 = tuple(d if g else None for g, d in zip(given, dstate0))
        elif not given:
            dstate0 = None
        return grads, dx, dstate0, None

    run.defvjp(forward, backward)
    return run


#: Marks where an array of the cache stood among its leaves.
_ARRAY = object()
