"""What the three layer classes share: parameters, state dicts, and the run over layers and directions.

See :mod:`xrnn.nn.layers` for the parameter table and :class:`xrnn.LSTM` for the API.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Literal, overload

from array_api_compat import device as device_of

from .._util.namespaces import host_rng, namespace, random_uniform, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_bool, check_dtypes, check_int, check_shape
from .._util.validation import check_finite as _check_finite
from ..backends import registry
from ..cells import Cell
from ..engine.ops import length_mask
from ..engine.scan import ScanCache, Weights, scan, scan_backward
from . import cell_vectors, inference
from .layer_cache import LayerCache, check_unchanged, guard
from .layer_checks import Checks, segment_of
from .modes import Modes, check_options
from .parameters import Parameters
from .pickling import NamespaceByName
from .state_dict import StateDict
from .weight_drop import WeightDrop, check_weight_drop
from .zoneout import Zoneout, check_zoneout

__all__ = ["LayerCache", "Recurrent"]


class Recurrent(StateDict, Modes, Checks, Parameters, NamespaceByName, WeightDrop, Zoneout):
    """Shared machinery of the three layer classes; see :class:`LSTM`."""

    _cell: Cell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        *,
        proj_size: int = 0,
        weight_drop: float = 0.0,
        zoneout: Any = 0.0,
        dtype: Any,
        device: Any,
        xp: str | ModuleType | None,
        seed: Any,
    ) -> None:
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers}
        for name, size in sizes.items():
            check_int(name, size)
        self.weight_drop = check_weight_drop(weight_drop)
        check_options(hidden_size, num_layers, dropout, proj_size)
        self.zoneout = check_zoneout(zoneout, self._cell.n_states, proj_size)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            check_bool(name, flag)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        self.dropout, self.proj_size = float(dropout), int(proj_size)
        self.training = True
        self.xp = resolve_namespace(xp)
        self.dtype = resolve_dtype(dtype, self.xp)
        bound = 1.0 / math.sqrt(hidden_size)
        self.generator = host_rng(seed)  # initial values first, then the dropout masks
        where = {"xp": self.xp, "dtype": self.dtype, "device": device}
        self.params: dict[str, Array] = {
            key: random_uniform(shape, bound, seed=self.generator, **where)
            for key, shape in self._param_shapes().items()
        }

    # ---------------------------------------------------------------- parameters

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    @property
    def device(self) -> Any:
        """Device of the parameters."""
        return device_of(self.params["weight_ih_l0"])

    @property
    def output_size(self) -> int:
        """Size of ``h`` per direction: ``proj_size`` when there is a projection, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keys and shapes in the order of torch's ``state_dict`` (see :mod:`xrnn.nn.layers`)."""
        gates, h_out = self._cell.n_gates * self.hidden_size, self.output_size
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(self.num_layers):
            n_in = self.input_size if k == 0 else self.num_directions * h_out
            for suffix in ("", "_reverse")[: self.num_directions]:
                shapes[f"weight_ih_l{k}{suffix}"] = (gates, n_in)
                shapes[f"weight_hh_l{k}{suffix}"] = (gates,) if self._cell.diagonal else (gates, h_out)
                if self.bias:
                    shapes[f"bias_ih_l{k}{suffix}"] = (gates,)
                    shapes[f"bias_hh_l{k}{suffix}"] = (gates,)
                if self.proj_size:
                    shapes[f"weight_hr_l{k}{suffix}"] = (self.proj_size, self.hidden_size)
                shapes |= cell_vectors.shapes(self._cell, self.hidden_size, f"l{k}{suffix}")
        return shapes

    def _weights(self, k: int, direction: int, params: dict[str, Array] | None = None) -> Weights:
        s = f"l{k}" + ("_reverse" if direction else "")
        p = self.params if params is None else params
        return Weights(
            p[f"weight_ih_{s}"],
            p[f"weight_hh_{s}"],
            p.get(f"bias_ih_{s}"),
            p.get(f"bias_hh_{s}"),
            p.get(f"weight_hr_{s}"),
            cell_vectors.joined(self._cell, p, s),
        )

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in self._options_beyond_defaults())
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
            f"num_layers={self.num_layers}{options}, bidirectional={self.bidirectional}, "
            f"batch_first={self.batch_first}, dtype={self.dtype})"
        )

    @overload
    def forward(
        self,
        x: Array,
        state: Any = None,
        lengths: Any = None,
        *,
        check_finite: bool = False,
        checkpoint: int | str | None = None,
        need_cache: Literal[True] = True,
        training: bool | None = None,
    ) -> tuple[Array, Any, LayerCache]: ...

    @overload
    def forward(
        self,
        x: Array,
        state: Any = None,
        lengths: Any = None,
        *,
        check_finite: bool = False,
        checkpoint: int | str | None = None,
        need_cache: bool,
        training: bool | None = None,
    ) -> tuple[Array, Any, LayerCache | None]: ...

    def forward(
        self,
        x: Array,
        state: Any = None,
        lengths: Any = None,
        *,
        check_finite: bool = False,
        checkpoint: int | str | None = None,
        need_cache: bool = True,
        training: bool | None = None,
    ) -> tuple[Array, Any, LayerCache | None]:
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences, same namespace, device and dtype as the parameters.
        state : array (L*D, N, H_out), or tuple (h, c) of two for the LSTM, optional
            Initial state; zeros if omitted. ``H_out`` is ``proj_size`` with a projection
            (the LSTM's ``c`` stays ``(L*D, N, H)``), else ``H``.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence, each in 1..T; steps past it are padding. A JAX
            tracer (inside ``jax.jit``) has no values to check: it is clipped to 0..T.
        check_finite : bool, default False
            Raise ``ValueError`` if ``x``, ``state`` or a parameter holds NaN or infinity
            (costs one reduction per array and a device-to-host sync; a ``TypeError``
            on JAX tracers, which hold no values).
        checkpoint : None, int or "sqrt", default None
            What forward keeps for backward. None: every step's cache (fastest backward).
            An int ``k``: only the state every ``k`` steps; backward recomputes one
            segment of ``k`` steps at a time from its state (one more forward pass in all,
            memory ``O(T/k + k)`` states instead of ``O(T)`` step caches). ``"sqrt"``:
            ``k = ceil(sqrt(T))``, the least memory. Gradients are those of ``None`` (see
            Notes).
        need_cache : bool, default True
            False for inference: keep nothing for backward (``cache`` is None), prepare the
            weights once per set of weights, and run a long sequence in segments, so that it
            costs little memory beyond ``y`` (see the documentation's Inference page).
        training : bool, optional
            The mode of this call: True applies dropout between layers, False does not;
            None (default) follows :attr:`training`. The layer is never changed, so
            calls with ``training=False`` may run at once from several threads.

        Returns
        -------
        y : array, shape (T, N, D*H_out), or (N, T, D*H_out) if batch_first
            Top layer's hidden state at each step (both directions concatenated),
            zero past each sequence's length.
        state : array (L*D, N, H_out), or tuple (h, c) for the LSTM
            Each sequence's state at its own last valid step (step 0 for the reverse
            direction), layers and directions stacked as in torch.
        cache : LayerCache or None
            Everything :meth:`backward` needs (None with ``need_cache=False``).

        Notes
        -----
        With ``checkpoint``, the outputs, the state and the gradients of ``x`` and of the
        initial state are bit for bit those of ``checkpoint=None`` (the same operations in
        the same order); the weight gradients are the same sums over all steps, added
        segment by segment, so they may differ from ``None``'s in the last bits.
        """
        return self._forward(self.params, x, state, lengths, check_finite, checkpoint, need_cache, training)

    def _forward(
        self,
        p: dict[str, Array],
        x: Array,
        state: Any,
        lengths: Any,
        check_finite: bool = False,
        checkpoint: int | str | None = None,
        need_cache: bool = True,
        training: bool | None = None,
    ) -> tuple[Array, Any, LayerCache | None]:
        """:meth:`forward` with the parameters ``p`` (the layer's own, or those given to ``apply``)."""
        segment = segment_of(checkpoint)
        if not isinstance(need_cache, bool):
            raise TypeError(f"need_cache must be True or False, got {need_cache!r}")
        fast = not need_cache and segment is None  # the inference path (nn/inference.py), where it applies
        if fast and (done := inference.forward(self, p, x, state, lengths, check_finite, training)):
            return done
        drop = self._drops(training)
        params = p["weight_ih_l0"]
        parts = (None,) * self._cell.n_states if state is None else self._state_tuple(state)
        names = ("state",) if len(parts) == 1 else ("state[0]", "state[1]")
        xp = namespace(x=x, parameters=params, **dict(zip(names, parts)))
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        check_shape("x", x, (None, None, self.input_size), layout)
        for key, shape in self._param_shapes().items():  # params may have been replaced since
            check_shape(f"params[{key!r}]", p[key], shape, "(as in torch.nn's state_dict)")
        named = {f"params[{k!r}]": v for k, v in p.items()}
        check_dtypes(xp, parameters=params, x=x, **dict(zip(names, parts)), **named)
        if self.batch_first:
            x = xp.permute_dims(x, (1, 0, 2))
        t_steps, n, _ = x.shape
        if t_steps == 0 or n == 0:
            raise ValueError(f"x must hold at least one step of one sequence, got shape {tuple(x.shape)}")
        self._check_state(parts, n, "state", xp)
        p, weight_masks = self._drop_weights(p, device_of(x), training)  # DropConnect, in training mode
        ops = registry.ops_for(xp, x.dtype)
        lens = self._lengths(lengths, n, t_steps, xp=xp, like=x)
        if check_finite:  # padding past each length may hold anything: only valid steps count
            valid = x if lens is None else xp.where(length_mask(lens, t_steps, xp=xp), x, xp.zeros_like(x))
            _check_finite(xp, x=valid, **dict(zip(names, parts)), **named)
        sizes = (self.output_size, self.hidden_size)[: self._cell.n_states]  # h (N, proj_size) if projected
        zeros = tuple(xp.zeros((n, size), dtype=x.dtype, device=device_of(x)) for size in sizes)
        zoned = self._zoneout_masks(
            (self.num_layers * self.num_directions, t_steps, n), sizes, device_of(x), training
        )
        scans: list[ScanCache] = []
        finals: list[tuple[Array, ...]] = []
        masks: list[Array] = []
        inp = x
        with ops.running(x, inference.step_work(self, n)):  # the backend's setting for the whole call
            for k in range(self.num_layers):
                outs = []
                for direction in range(self.num_directions):
                    idx = k * self.num_directions + direction
                    s0 = tuple(z if p is None else p[idx, ...] for z, p in zip(zeros, parts))
                    y, s_t, sc = scan(
                        self._cell,
                        inp,
                        s0,
                        self._weights(k, direction, p),
                        lengths=lens,
                        reverse=bool(direction),
                        segment=None if segment is None else min(segment(t_steps), t_steps),
                        keep=need_cache,
                        zoneout=None if zoned is None else zoned[idx],
                        ops=ops,
                        xp=xp,
                    )
                    outs.append(y)
                    finals.append(s_t)
                    if sc is not None:
                        scans.append(sc)
                inp = outs[0] if len(outs) == 1 else xp.concat(outs, axis=2)
                if drop and k < self.num_layers - 1:  # between layers, in training mode only (as torch)
                    mask = self._dropout_mask(tuple(inp.shape), device_of(x))
                    inp = inp * mask
                    masks.append(mask)
            y = xp.permute_dims(inp, (1, 0, 2)) if self.batch_first else inp
            # one direction's y is its scan's own (bidirectional: a fresh concatenation)
            y, output = guard(y, xp=xp) if need_cache and self.num_directions == 1 else (y, None)
            stacked = tuple(xp.stack([f[j] for f in finals]) for j in range(self._cell.n_states))
            out_state = stacked[0] if self._cell.n_states == 1 else stacked
            if not need_cache:
                return y, out_state, None
            shape = (t_steps, n, self.input_size)
            cache = LayerCache(
                scans, shape, self.batch_first, self._cell.name, output, tuple(masks), weight_masks
            )
            return y, out_state, cache

    def backward(
        self,
        cache: LayerCache,
        dy: Array | None,
        dstate: Any = None,
        *,
        check_finite: bool = False,
        need_dx: bool = True,
    ) -> tuple[Array, Any, dict[str, Array]]:
        """Backpropagate through the forward pass that made ``cache``.

        Parameters
        ----------
        cache : LayerCache
            Third result of :meth:`forward` with the current parameters.
        dy : array, shape like forward's ``y``, or None
            Gradient of the loss with respect to ``y`` (None: zero).
        dstate : array or tuple (dh, dc), shapes like forward's ``state``, optional
            Gradient of the loss with respect to the returned final state; an entry
            may be None (zero).
        check_finite : bool, default False
            Raise ``ValueError`` if ``dy`` or ``dstate`` holds NaN or infinity.
        need_dx : bool, default True
            False: ``dx`` is not computed (None), as torch's autograd skips the gradient of
            an input that requires none: the first layer does one product fewer.

        Returns
        -------
        dx : array, shape like ``x``, or None without ``need_dx``
            Gradient with respect to the input.
        dstate0 : array (L*D, N, H_out), or tuple (dh0, dc0) for the LSTM
            Gradient with respect to the initial state.
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        self._check_cache(cache)
        check_bool("need_dx", need_dx)
        return self._backward(cache, dy, dstate, check_finite=check_finite, need_dx=need_dx)

    def _backward(
        self,
        cache: LayerCache,
        dy: Array | None,
        dstate: Any = None,
        *,
        check_finite: bool = False,
        need_dx: bool = True,
    ) -> tuple[Array, Any, dict[str, Array]]:
        """:meth:`backward` of a cache made with any parameters (the weights it holds)."""
        check_unchanged(cache)
        h0, hidden, dirs = cache.scans[0].h0, self.output_size, self.num_directions
        parts = (None,) * self._cell.n_states if dstate is None else self._state_tuple(dstate, "dstate")
        names = ("dstate",) if len(parts) == 1 else ("dstate[0]", "dstate[1]")
        xp = namespace(cached=h0, dy=dy, **dict(zip(names, parts)))
        check_dtypes(xp, cached=h0, dy=dy, **dict(zip(names, parts)))
        self._check_dy(cache, dy, dict(zip(names, parts)), xp, check_finite=check_finite)
        if dy is not None and cache.batch_first:
            dy = xp.permute_dims(dy, (1, 0, 2))
        self._check_state(parts, h0.shape[0], "dstate", xp)
        ops = registry.ops_for(xp, h0.dtype)
        with ops.running(h0, inference.step_work(self, h0.shape[0])):
            grads: dict[str, Array] = {}
            d0: list[tuple[Array, ...]] = [()] * (self.num_layers * dirs)
            d_above = dy
            for k in reversed(range(self.num_layers)):
                d_below = None
                for direction in range(dirs):
                    idx = k * dirs + direction
                    columns = slice(direction * hidden, (direction + 1) * hidden)
                    dy_d = None if d_above is None else d_above[:, :, columns]
                    ds = tuple(None if p is None else p[idx, ...] for p in parts)
                    dx_d, d0[idx], g = scan_backward(
                        self._cell, cache.scans[idx], dy_d, ds, ops=ops, xp=xp, need_dx=need_dx or k > 0
                    )
                    d_below = dx_d if d_below is None else d_below + dx_d
                    s = f"l{k}" + ("_reverse" if direction else "")
                    for name, grad in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"), g):
                        grads[f"{name}_{s}"] = grad
                    grads |= cell_vectors.split(self._cell, g.vectors, self.hidden_size, s)
                if k > 0 and cache.masks:  # the input of layer k was layer k-1's output times its mask
                    d_below = d_below * cache.masks[k - 1]
                d_above = d_below
            dx = xp.permute_dims(d_above, (1, 0, 2)) if cache.batch_first and need_dx else d_above
            stacked = tuple(xp.stack([d[j] for d in d0]) for j in range(self._cell.n_states))
            ordered = {key: grads[key] for key in self._param_shapes()}
            grads = self._undrop_gradients(ordered, cache.weight_masks)
            return dx, stacked[0] if self._cell.n_states == 1 else stacked, grads
