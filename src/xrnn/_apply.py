"""A layer as a pure function of its parameters: ``y, state = layer.apply(params, x)``.

The layer classes take :meth:`Functional.apply` from here. On NumPy, CuPy and
array-api-strict it is the forward pass; on JAX arrays and torch tensors it is also
differentiable by the framework, with xrnn's own backward as the gradient
(:mod:`xrnn._backends.jax.apply`, :mod:`xrnn._backends.torch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from array_api_compat import is_jax_namespace

from ._backend import namespace
from ._typing import Array
from ._validation import check_keys

if TYPE_CHECKING:
    from ._recurrent import Recurrent

__all__ = ["Functional", "checked_params"]


class Functional:
    """The pure-function face of a recurrent layer (mixed into the layer classes)."""

    def apply(
        self,
        params: Mapping[str, Array],
        x: Array,
        state: Any = None,
        lengths: Any = None,
        *,
        checkpoint: int | str | None = None,
    ) -> tuple[Array, Any]:
        """Run the layer with the parameters ``params``: a pure function for JAX and torch.

        Nothing is read from :attr:`params` or written anywhere: the layer contributes its
        configuration (sizes, cell, directions, ``batch_first``, ``bias``, ``proj_size``)
        only. Dropout between layers needs random masks, which a pure function does not
        draw: a layer with ``dropout > 0`` runs ``apply`` in eval mode only.

        Parameters
        ----------
        params : dict of str to array
            Exactly the keys and shapes of :attr:`params`, in the namespace, dtype and
            device of ``x``.
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        state : array (L*D, N, H), or tuple (h, c) for the LSTM, optional
            Initial state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence, each in 1..T (see :meth:`forward`; a JAX tracer
            has no values to check and is clipped to 0..T).
        checkpoint : None, int or "sqrt", default None
            What the forward pass keeps for the gradient (see :meth:`forward`); static
            (under ``jax.jit``, pass it through ``static_argnames`` or a closure).

        Returns
        -------
        y : array, shape (T, N, D*H), or (N, T, D*H) if batch_first
            Top layer's output at each step, zero past each length.
        state : array (L*D, N, H), or tuple (h, c) for the LSTM
            Each sequence's state at its own last valid step.

        Notes
        -----
        JAX: ``jax.grad`` and ``jax.vjp`` of ``apply`` run :meth:`backward`'s exact
        gradient (a ``jax.custom_vjp``), ``jax.jit`` compiles it with one ``lax.scan`` per
        direction and ``jax.vmap`` maps it. torch: when a tensor given requires a gradient,
        ``apply`` is a ``torch.autograd.Function`` whose backward is :meth:`backward`, so
        ``loss.backward()`` fills the ``.grad`` of ``x``, ``state`` and the parameters.
        ``torch.compile`` leaves the call to ``apply`` out of the graph (a graph break)
        and runs it as it is.

        Examples
        --------
        >>> import numpy as np, xrnn
        >>> gru = xrnn.GRU(3, 4, xp="numpy", seed=0)
        >>> params = {k: 2 * v for k, v in gru.params.items()}
        >>> y, h = gru.apply(params, np.ones((5, 2, 3), np.float32))
        >>> y.shape, h.shape
        ((5, 2, 4), (1, 2, 4))
        """
        layer = cast("Recurrent", self)
        if type(x).__module__.startswith("torch"):  # first: torch.compile traces nothing of xrnn
            from ._backends.torch import apply_torch

            return apply_torch(layer, params, x, state, lengths, checkpoint=checkpoint)
        params = checked_params(layer, params)
        xp = namespace(x=x, **{f"params[{k!r}]": v for k, v in params.items()})
        if is_jax_namespace(xp):
            from ._backends.jax.apply import apply_jax

            return apply_jax(layer, params, x, state, lengths, checkpoint=checkpoint)
        y, out, _ = layer._forward(params, x, state, lengths, checkpoint=checkpoint, need_cache=False)
        return y, out


def checked_params(layer: Recurrent, params: Any) -> dict[str, Array]:
    """``params`` as a new dict, once checked to hold exactly the layer's keys.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.
    params : dict of str to array
        What ``apply`` was given (shapes are checked by the forward pass).

    Returns
    -------
    dict of str to array
    """
    if layer.training and layer.dropout > 0:
        raise ValueError(
            f"apply is a pure function and draws no dropout masks, but this {type(layer).__name__} "
            f"has dropout={layer.dropout} in training mode: call layer.eval() first (no dropout), "
            "or build it with dropout=0 and apply dropout between layers yourself"
        )
    shapes = layer._param_shapes()
    check_keys("params", params, list(shapes))
    unexpected = sorted(set(params) - set(shapes))
    if unexpected:
        raise ValueError(f"params has key(s) {unexpected} that this {type(layer).__name__} does not use")
    return dict(params)
