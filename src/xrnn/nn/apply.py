"""A layer as a pure function of its parameters: ``y, state = layer.apply(params, x)``.

The layer classes take :meth:`Functional.apply` from here. On NumPy, CuPy and
array-api-strict it is the forward pass; on JAX arrays and torch tensors it is also
differentiable by the framework, with xrnn's own backward as the gradient
(:mod:`xrnn.nn.apply_jax`, :mod:`xrnn.nn.apply_torch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from array_api_compat import is_jax_namespace

from .._util.namespaces import namespace
from .._util.typing import Array
from .layer_checks import segment_of
from .recurrent import Recurrent

__all__ = ["Functional"]


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
        segment_of(checkpoint)  # checked once for every path, before anything is traced
        if type(x).__module__.startswith("torch"):  # first: torch.compile traces nothing of xrnn
            from .apply_torch import apply_torch

            return apply_torch(layer, params, x, state, lengths, checkpoint=checkpoint)
        params = layer._checked_params(params)
        xp = namespace(x=x, **{f"params[{k!r}]": v for k, v in params.items()})
        if is_jax_namespace(xp):
            from .apply_jax import apply_jax

            return apply_jax(layer, params, x, state, lengths, checkpoint=checkpoint)
        y, out, _ = layer._forward(params, x, state, lengths, checkpoint=checkpoint, need_cache=False)
        return y, out
