"""The recurrent layers' forward pass for inference: ``need_cache=False`` and ``predict``.

A call that keeps nothing for backward runs :func:`xrnn.engine.inference.infer` for each
layer and direction (no step cache written, where the backend has an inference loop), and
pays its fixed costs once per configuration instead of once per call:

- the weights as the loop reads them (``W_hh^T`` as a row-major copy, ``b_hh`` folded
  into ``b_ih`` where the cell allows, the cell's vectors joined) are prepared once per
  set of weights and kept by the layer (:class:`InferenceCache`) where every change of
  the weights shows (torch tensors, JAX arrays), else at every call (below);
- the checks of the parameters (namespace, dtype, shapes) and the choice of the
  :class:`~xrnn.engine.ops.Ops` run once per set of weights and configuration of the
  call (the namespace, shape, dtype and device of ``x`` and of the state): a later call
  of the same configuration checks only what may differ (the lengths, and the values with
  ``check_finite``).

When the prepared weights are made again: a set of weights is told by the identity of
each parameter array and, for torch tensors, by their version counter, so that these
all make them again: :meth:`~xrnn.LSTM.set_params`, an optimiser's step (new arrays, or
in place on torch tensors), assigning ``layer.params[key]``, ``load_state_dict`` and any
in-place change of a torch tensor. JAX arrays cannot be changed in place. A write into a
NumPy, CuPy or array-api-strict array in place (``layer.params["weight_hh_l0"][0, 0] =
1``) shows in neither, so the weights of such arrays are prepared again at every call (a
copy of ``W_hh``: about 1% of a call at ``T=100``); only their checks are kept, which no
write in place can change (shape, dtype, namespace, device). Inside ``jax.jit``
(parameters that are tracers) nothing is kept.

The cache holds one set of weights at a time (the last one used), pickles and deep-copies
as empty, and may be read from several threads at once.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import device as device_of
from array_api_compat import is_jax_array

from .._util.namespaces import is_traced, namespace
from .._util.typing import Array
from .._util.validation import check_dtypes, check_shape
from .._util.validation import check_finite as _check_finite
from ..backends import registry
from ..engine.inference import infer
from ..engine.ops import Ops, length_mask
from ..engine.prepare import Prepared, prepare
from ..engine.scan import Weights

#: A :class:`~xrnn.nn.recurrent.Recurrent` layer (not imported: it imports this module).
Recurrent = Any

__all__ = ["InferenceCache", "forget", "forward"]

#: Configurations remembered per set of weights; past it, the set is emptied and refilled.
_MOST_CONFIGURATIONS = 64


class _Entry(NamedTuple):
    arrays: tuple[Array, ...]  # the parameters the entry was made from, in the layer's key order
    versions: tuple[int | None, ...]  # their torch version counters (None: no counter)
    weights: tuple[Weights, ...]  # per layer and direction
    prepared: tuple[Prepared, ...]  # per layer and direction
    checked: dict[tuple[Any, ...], tuple[ModuleType, Ops]]  # configuration -> (namespace, Ops)
    tracked: bool  # every change of the arrays shows in their identity or version: prepared kept


class InferenceCache:
    """The prepared weights of a layer and the configurations whose checks passed.

    One per layer (made on first use); see the module's docstring for when it is
    renewed. Pickling or copying the layer gives a new, empty cache.
    """

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: _Entry | None = None

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (InferenceCache, ())

    def __repr__(self) -> str:
        return f"InferenceCache({'empty' if self.entry is None else 'prepared'})"


def forget(layer: Any) -> None:
    """Let go of ``layer``'s prepared weights: the next inference call prepares them again.

    Parameters
    ----------
    layer : Recurrent
        A layer (anything else is left as it is).
    """
    getattr(layer, "__dict__", {}).pop("_inference", None)


def _version(a: Array) -> int | None:
    """A torch tensor's version counter (bumped by every change in place), else None."""
    try:
        return int(a._version)
    except (AttributeError, RuntimeError):  # not torch; or an inference tensor, which has none
        return None


def _tracked(a: Array) -> bool:
    """Whether every change of ``a`` shows: a torch tensor (its version counter), a JAX array (immutable)."""
    return _version(a) is not None or is_jax_array(a)


def _prepare_all(
    layer: Recurrent, p: dict[str, Array], xp: ModuleType
) -> tuple[tuple[Weights, ...], tuple[Prepared, ...]]:
    """The weights of every layer and direction, and their prepared form."""
    weights = tuple(
        layer._weights(k, d, p) for k in range(layer.num_layers) for d in range(layer.num_directions)
    )
    return weights, tuple(prepare(layer._cell, w.w_hh, w.b_ih, w.b_hh, xp=xp) for w in weights)


def _entry(layer: Recurrent, p: dict[str, Array], xp: ModuleType | None) -> _Entry | None:
    """The cache entry of the parameters ``p``: the layer's, or a new one (None inside ``jax.jit``)."""
    cache = layer.__dict__.get("_inference")
    if cache is None:
        cache = layer.__dict__.setdefault("_inference", InferenceCache())
    arrays = tuple(p.values())
    entry = cache.entry
    if (
        entry is not None
        and len(entry.arrays) == len(arrays)
        and all(a is b for a, b in zip(entry.arrays, arrays))
        and entry.versions == tuple(_version(a) for a in arrays)
    ):
        return entry
    if xp is None or any(is_traced(a) for a in arrays):
        return None
    weights, prepared = _prepare_all(layer, p, xp)
    versions = tuple(_version(a) for a in arrays)
    tracked = all(_tracked(a) for a in arrays)
    cache.entry = entry = _Entry(arrays, versions, weights, prepared, {}, tracked)
    return entry


def step_work(layer: Recurrent, n: int) -> int:
    """Multiply-adds of one step of ``layer``'s first layer on ``n`` sequences (:meth:`Ops.running`)."""
    return n * layer._cell.n_gates * layer.hidden_size * (layer.input_size + layer.output_size)


def _configuration(x: Array, parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """What the checks of a call depend on besides the parameters: kinds, shapes, dtypes, devices."""
    return tuple(
        None if a is None else (type(a), a.shape, a.dtype, getattr(a, "device", None)) for a in (x, *parts)
    )


def _check(layer: Recurrent, p: dict[str, Array], x: Array, parts: tuple[Any, ...]) -> tuple[ModuleType, Ops]:
    """The checks of :meth:`Recurrent.forward` that hold for a whole configuration; its namespace and Ops."""
    params = p["weight_ih_l0"]
    names = ("state",) if len(parts) == 1 else ("state[0]", "state[1]")
    xp = namespace(x=x, parameters=params, **dict(zip(names, parts)))
    layout = "(N, T, input_size)" if layer.batch_first else "(T, N, input_size)"
    check_shape("x", x, (None, None, layer.input_size), layout)
    for key, shape in layer._param_shapes().items():
        check_shape(f"params[{key!r}]", p[key], shape, "(as in torch.nn's state_dict)")
    named = {f"params[{k!r}]": v for k, v in p.items()}
    check_dtypes(xp, parameters=params, x=x, **dict(zip(names, parts)), **named)
    t_steps, n = (x.shape[1], x.shape[0]) if layer.batch_first else (x.shape[0], x.shape[1])
    if t_steps == 0 or n == 0:
        raise ValueError(f"x must hold at least one step of one sequence, got shape {tuple(x.shape)}")
    layer._check_state(parts, n, "state", xp)
    return xp, registry.ops_for(xp, x.dtype)


def forward(
    layer: Recurrent,
    p: dict[str, Array],
    x: Array,
    state: Any,
    lengths: Any,
    check_finite: bool,
    training: bool | None,
) -> tuple[Array, Any, None] | None:
    """:meth:`Recurrent.forward` with ``need_cache=False`` and no checkpoint, or None.

    Parameters
    ----------
    layer : Recurrent
        The layer.
    p : dict of str to array
        Its parameters (its own, or those given to ``apply``).
    x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
        Input sequences.
    state : array (L*D, N, H_out), or tuple (h, c), or None
        Initial state.
    lengths : sequence of int or integer array, shape (N,), or None
        Valid steps of each sequence.
    check_finite : bool
        Check ``x``, ``state`` and the parameters for NaN and infinity.
    training : bool or None
        The mode of this call.

    Returns
    -------
    (y, state, None) or None
        As :meth:`Recurrent.forward`; None where this path does not apply (the call draws
        dropout or DropConnect masks, the layer has zoneout, or the parameters are JAX
        tracers): the caller then
        runs the general forward pass.
    """
    if layer._drops(training) or ((layer.training if training is None else training) and layer.weight_drop):
        return None
    if any(layer.zoneout if isinstance(layer.zoneout, tuple) else (layer.zoneout,)):
        return None  # zoneout acts in both modes (its expectation in evaluation): the general pass
    parts = (None,) * layer._cell.n_states if state is None else layer._state_tuple(state)
    if any(is_traced(a) for a in (x, *parts)):
        return None
    entry = _entry(layer, p, None)
    key = _configuration(x, parts)
    found = None if entry is None else entry.checked.get(key)
    kept = entry
    if entry is None or found is None:
        found = _check(layer, p, x, parts)
        entry = _entry(layer, p, found[0])
        if entry is None:
            return None
        if len(entry.checked) >= _MOST_CONFIGURATIONS:
            entry.checked.clear()
        entry.checked[key] = found
    weights, prepared = entry.weights, entry.prepared
    if entry is kept and not entry.tracked:  # kept from an earlier call: a write in place would not show
        weights, prepared = _prepare_all(layer, p, found[0])
    xp, ops = found
    if layer.batch_first:
        x = xp.permute_dims(x, (1, 0, 2))
    t_steps, n, _ = x.shape
    lens = layer._lengths(lengths, n, t_steps, xp=xp, like=x)
    if check_finite:  # padding past each length may hold anything: only valid steps count
        valid = x if lens is None else xp.where(length_mask(lens, t_steps, xp=xp), x, xp.zeros_like(x))
        names = ("state",) if len(parts) == 1 else ("state[0]", "state[1]")
        _check_finite(xp, x=valid, **dict(zip(names, parts)), **{f"params[{k!r}]": v for k, v in p.items()})
    sizes = (layer.output_size, layer.hidden_size)[: layer._cell.n_states]
    zeros = tuple(xp.zeros((n, size), dtype=x.dtype, device=device_of(x)) for size in sizes)
    with ops.running(x, step_work(layer, n)):  # the backend's setting for the whole call
        finals: list[tuple[Array, ...]] = []
        inp = x
        dirs = layer.num_directions
        for k in range(layer.num_layers):
            outs = []
            for direction in range(dirs):
                idx = k * dirs + direction
                s0 = tuple(z if s is None else s[idx, ...] for z, s in zip(zeros, parts))
                y, s_t = infer(
                    layer._cell,
                    inp,
                    s0,
                    weights[idx],
                    lengths=lens,
                    reverse=bool(direction),
                    prepared=prepared[idx],
                    ops=ops,
                    xp=xp,
                )
                outs.append(y)
                finals.append(s_t)
            inp = outs[0] if len(outs) == 1 else xp.concat(outs, axis=2)
        y = xp.permute_dims(inp, (1, 0, 2)) if layer.batch_first else inp
        stacked = tuple(xp.stack([f[j] for f in finals]) for j in range(layer._cell.n_states))
        return y, (stacked[0] if layer._cell.n_states == 1 else stacked), None
