"""A layer's ``apply`` on torch tensors: a ``torch.autograd.Function`` whose backward is xrnn's own.

When a tensor given to ``apply`` requires a gradient (and autograd is on), the forward pass
keeps the layer's cache and ``loss.backward()`` runs the layer's exact
:meth:`~xrnn.LSTM.backward`, filling the ``.grad`` of ``x``, the initial state and the
parameter tensors. The code follows the tensors' device: CPU tensors here, CUDA tensors
where present.

``torch.compile`` cannot trace the engine (Python loops over the sequence, array-api-compat
wrappers): :func:`apply_torch` is marked ``torch.compiler.disable``, so a compiled module
that calls ``apply`` compiles everything around it and runs the layer as it is (one graph
break); with ``fullgraph=True`` the compile fails, and its message gives this reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from .._util.namespaces import namespace
from .._util.typing import Array

if TYPE_CHECKING:
    from .recurrent import Recurrent

__all__ = ["apply_torch"]


def _needs_autograd(params: Mapping[str, Array], x: Array, state: Any) -> bool:
    """Whether autograd is on and any tensor given requires a gradient.

    Parameters
    ----------
    params : dict of str to tensor
        The parameters.
    x : tensor
        The input.
    state : tensor, tuple of tensors (or None entries), or None
        The initial state.

    Returns
    -------
    bool
    """
    if not torch.is_grad_enabled():
        return False
    parts = state if isinstance(state, (tuple, list)) else (state,)
    tensors = [x, *params.values(), *parts]
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


@torch.compiler.disable(
    reason="xrnn's layer.apply runs its own time loop and backward (a torch.autograd.Function over "
    "array-API code): torch.compile runs it outside the graph, as one graph break, so it cannot "
    "be part of a fullgraph=True compile"
)
def apply_torch(
    layer: Recurrent,
    params: dict[str, Array],
    x: Array,
    state: Any,
    lengths: Any,
    *,
    checkpoint: int | str | None,
) -> tuple[Array, Any]:
    """``layer.apply`` for torch tensors (see :meth:`xrnn.LSTM.apply`).

    Without autograd (no tensor requires a gradient, or ``torch.no_grad``) it is the
    layer's forward pass without a cache.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer whose configuration runs.
    params : dict of str to tensor
        Its parameters.
    x : tensor, shape (T, N, I), or (N, T, I) if batch_first
        Input.
    state : tensor (L*D, N, H), tuple (h, c), or None
        Initial state.
    lengths : sequence of int, integer tensor (N,), or None
        Valid steps per sequence.
    checkpoint : None, int or "sqrt"
        What the forward pass keeps for the backward pass.

    Returns
    -------
    y : tensor
        As :meth:`xrnn.LSTM.forward` (with a ``grad_fn`` under autograd).
    state : tensor or tuple (h, c)
        As :meth:`xrnn.LSTM.forward` (with a ``grad_fn`` under autograd).
    """
    params = layer._checked_params(params)
    namespace(x=x, **{f"params[{k!r}]": v for k, v in params.items()})
    if not _needs_autograd(params, x, state):
        y, out, _ = layer._forward(params, x, state, lengths, checkpoint=checkpoint, need_cache=False)
        return y, out
    keys = list(params)
    if state is None:
        parts: tuple[Any, ...] = ()
    elif layer._cell.n_states == 1:
        parts = (state,)
    else:
        parts = tuple(layer._state_tuple(state))
    spec = _Spec(layer, keys, len(parts), lengths, checkpoint)
    y, *out = _LayerFunction.apply(spec, x, *(params[k] for k in keys), *parts)
    return y, (out[0] if len(out) == 1 else tuple(out))


class _Spec:
    """What the autograd function is given besides tensors."""

    def __init__(
        self, layer: Recurrent, keys: list[str], n_parts: int, lengths: Any, checkpoint: Any
    ) -> None:
        self.layer, self.keys, self.n_parts = layer, keys, n_parts
        self.lengths, self.checkpoint = lengths, checkpoint


class _LayerFunction(torch.autograd.Function):
    """Forward: the layer's forward with a cache; backward: the layer's backward."""

    @staticmethod
    def forward(ctx: Any, spec: _Spec, x: Array, *tensors: Array) -> tuple[Array, ...]:  # noqa: D102
        layer, n_keys = spec.layer, len(spec.keys)
        params = dict(zip(spec.keys, tensors[:n_keys]))
        parts = tensors[n_keys:]
        state = None if not parts else (parts[0] if layer._cell.n_states == 1 else tuple(parts))
        y, out, cache = layer._forward(params, x, state, spec.lengths, checkpoint=spec.checkpoint)
        ctx.spec, ctx.cache, ctx.given = spec, cache, tuple(p is not None for p in parts)
        ctx.save_for_backward(x, *(t for t in tensors if t is not None))  # torch's in-place checks
        ctx.set_materialize_grads(False)
        outs = (out,) if layer._cell.n_states == 1 else tuple(out)
        # new tensor objects (sharing memory and version counter) for the caller: the cache
        # holds y, and ctx holding the very tensor it returns would be a reference cycle
        return (y.detach(), *(s.detach() for s in outs))

    @staticmethod
    def backward(ctx: Any, dy: Array | None, *dstate: Array | None) -> tuple[Any, ...]:  # noqa: D102
        _ = ctx.saved_tensors  # raises if an input was changed in place since forward
        if torch.is_grad_enabled():  # create_graph=True: the cache holds no graph to go on with
            raise RuntimeError(
                "xrnn's layer.apply has first derivatives only: its backward runs on the cache of "
                "the forward pass, outside autograd, so a gradient of the gradient "
                "(create_graph=True, torch.autograd.functional.hessian) would be wrong"
            )
        spec, layer = ctx.spec, ctx.spec.layer
        if all(d is None for d in dstate):
            ds: Any = None
        else:
            ds = dstate[0] if layer._cell.n_states == 1 else tuple(dstate)
        # x's gradient only where autograd asks for it (x requires grad): one product fewer
        dx, dstate0, grads = layer._backward(ctx.cache, dy, ds, need_dx=bool(ctx.needs_input_grad[1]))
        d0 = (dstate0,) if layer._cell.n_states == 1 else tuple(dstate0)
        dparts = tuple(d if given else None for given, d in zip(ctx.given, d0))
        return (None, dx, *(grads[k] for k in spec.keys), *dparts)
