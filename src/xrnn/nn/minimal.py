"""Layers ``MinGRU`` and ``MinLSTM`` (Feng et al. 2024): gates of the input alone, parallel in time.

================================  ==================  =========================================
key                               shape               meaning
================================  ==================  =========================================
``weight_ih_l{k}``                ``(G*H, I_k)``      input-to-gates weights of layer ``k``
``bias_ih_l{k}``                  ``(G*H,)``          their bias (``bias=True``)
``..._reverse``                   as above            the reverse direction (bidirectional)
================================  ==================  =========================================

``G`` is 2 (minGRU, gates ``z, h~``) or 3 (minLSTM, gates ``f, i, h~``); there is no
recurrent weight. ``I_0 = input_size``, ``I_k = D*H`` above. The maths is in
:mod:`xrnn.cells.minimal`, the run over a sequence in :mod:`xrnn.engine.min_scan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from array_api_compat import device as device_of

from .._util.namespaces import convert, namespace, on_host
from .._util.typing import Array
from .._util.validation import check_dtypes, check_shape
from ..backends import registry
from ..cells.minimal import MINGRU_CELL, MINLSTM_CELL, MinCell
from ..engine.min_scan import MinScanCache, min_scan, min_scan_backward
from .layer_cache import LayerCache
from .layers import _INIT_DOC
from .recurrent import Recurrent

__all__ = ["MinGRU", "MinLSTM", "MinRecurrent"]

#: Below this many steps ``parallel=None`` runs the generic loop rather than the scan.
_PARALLEL_FROM = 16
#: From this many elements per step (``N*H``) ``parallel=None`` runs the generic loop on the host:
#: each step's few operations then cost more than their dispatch, and the loop does ``O(T)`` work
#: where the scan does several times more (docs/benchmarks.md, "minGRU: the scan and the loop").
_HOST_LOOP_FROM = 2048


class MinRecurrent(Recurrent):
    """What :class:`MinGRU` and :class:`MinLSTM` share; see :class:`MinGRU`."""

    _cell: MinCell  # type: ignore[assignment]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        parallel: bool | None = None,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        if parallel is not None and not isinstance(parallel, bool):
            raise TypeError(f"parallel must be True, False or None, got {parallel!r}")
        self.parallel = parallel
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
        )

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        gates = self._cell.n_gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(self.num_layers):
            n_in = self.input_size if k == 0 else self.num_directions * self.hidden_size
            for suffix in ("", "_reverse")[: self.num_directions]:
                shapes[f"weight_ih_l{k}{suffix}"] = (gates, n_in)
                if self.bias:
                    shapes[f"bias_ih_l{k}{suffix}"] = (gates,)
        return shapes

    def _weights(self, k: int, direction: int, params: dict[str, Array] | None = None) -> Any:
        s = f"l{k}" + ("_reverse" if direction else "")
        p = self.params if params is None else params
        return (p[f"weight_ih_{s}"], p.get(f"bias_ih_{s}"))

    @classmethod
    def _build_from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        batch_first: bool,
        dropout: float,
        xp: str | ModuleType | None,
        dtype: Any,
        device: Any,
        **extra: Any,
    ) -> Any:
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        w = sd.get("weight_ih_l0")
        gates = cls._cell.n_gates
        if w is None or len(w.shape) != 2 or w.shape[0] % gates:
            raise ValueError(
                f"state_dict must hold weight_ih_l0 of shape ({gates}*H, input_size) for a "
                f"{cls.__name__}, got {None if w is None else tuple(w.shape)}"
            )
        layers = 1 + max(int(k.split("_l")[1].split("_")[0]) for k in sd if k.startswith("weight_ih_l"))
        layer = cls(
            int(w.shape[1]),
            int(w.shape[0]) // gates,
            num_layers=layers,
            bias="bias_ih_l0" in sd,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=any(k.endswith("_reverse") for k in sd),
            xp=xp,
            dtype=dtype if dtype is not None else str(w.dtype).rsplit(".", 1)[-1],
            device=device,
        )
        expected = layer._param_shapes()
        got = {k: tuple(v.shape) for k, v in sd.items()}
        if got != expected:
            raise ValueError(
                f"state_dict must have the keys and shapes {expected} for this {cls.__name__}, got {got}"
            )
        layer.params = {k: convert(sd[k], xp=layer.xp, dtype=layer.dtype, device=device) for k in expected}
        return layer

    def _run_parallel(self, t_steps: int, n: int, compiled: bool, host: bool) -> bool:
        """The doubling scan or the loop: ``parallel``, or when None chosen by where and how large.

        The loop where it is compiled (one pass, faster than the scan at every size measured),
        where ``T`` is short, or on the host where a step holds ``N*H >= 2048`` elements; else
        the scan (many short steps, or a device where each step's launches cost more).
        """
        if self.parallel is not None:
            return self.parallel
        if compiled or t_steps < _PARALLEL_FROM:
            return False
        return not (host and n * self.hidden_size >= _HOST_LOOP_FROM)

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
        drop = self._drops(training)
        if checkpoint is not None:
            raise ValueError(f"checkpoint must be None for a {type(self).__name__}, got {checkpoint!r}")
        if check_finite:
            raise ValueError(f"check_finite is not supported by a {type(self).__name__}")
        params = p["weight_ih_l0"]
        xp = namespace(x=x, parameters=params, state=state)
        check_shape("x", x, (None, None, self.input_size), "(N, T, I)" if self.batch_first else "(T, N, I)")
        for key, shape in self._param_shapes().items():
            check_shape(f"params[{key!r}]", p[key], shape, "(see xrnn.nn.minimal)")
        check_dtypes(xp, parameters=params, x=x, state=state, **{f"params[{k!r}]": v for k, v in p.items()})
        if self.batch_first:
            x = xp.permute_dims(x, (1, 0, 2))
        t_steps, n, _ = x.shape
        if t_steps == 0 or n == 0:
            raise ValueError(f"x must hold at least one step of one sequence, got shape {tuple(x.shape)}")
        self._check_state((state,), n, "state", xp)
        ops = registry.linear_ops_for(xp, x.dtype)
        parallel = self._run_parallel(t_steps, n, ops.name != "generic", on_host(x))
        lens = self._lengths(lengths, n, t_steps, xp=xp, like=x)
        zero = xp.zeros((n, self.hidden_size), dtype=x.dtype, device=device_of(x))
        scans: list[MinScanCache] = []
        finals, masks, inp = [], [], x
        for k in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                idx = k * self.num_directions + direction
                h0 = zero if state is None else state[idx, ...]
                y, h_last, sc = min_scan(
                    self._cell,
                    inp,
                    h0,
                    self._weights(k, direction, p),
                    lengths=lens,
                    reverse=bool(direction),
                    parallel=parallel,
                    ops=ops,
                    xp=xp,
                )
                outs.append(y)
                finals.append(h_last)
                scans.append(sc)
            inp = outs[0] if len(outs) == 1 else xp.concat(outs, axis=2)
            if drop and k < self.num_layers - 1:  # between layers, in training mode only
                mask = self._dropout_mask(tuple(inp.shape), device_of(x))
                inp = inp * mask
                masks.append(mask)
        y = xp.permute_dims(inp, (1, 0, 2)) if self.batch_first else inp
        out_state = xp.stack(finals)
        if not need_cache:
            return y, out_state, None
        shape = (t_steps, n, self.input_size)
        return y, out_state, LayerCache(scans, shape, self.batch_first, self._cell.name, None, tuple(masks))  # type: ignore[arg-type]

    def _backward(
        self,
        cache: LayerCache,
        dy: Array | None,
        dstate: Any = None,
        *,
        check_finite: bool = False,
        need_dx: bool = True,
    ) -> tuple[Array, Any, dict[str, Array]]:
        if check_finite:
            raise ValueError(f"check_finite is not supported by a {type(self).__name__}")
        t_steps, n, _ = cache.shape
        hidden, dirs = self.hidden_size, self.num_directions
        h0 = cache.scans[0].h0
        xp = namespace(cached=h0, dy=dy, dstate=dstate)
        check_dtypes(xp, cached=h0, dy=dy, dstate=dstate)
        if dy is not None:
            layout = "(N, T, D*H)" if cache.batch_first else "(T, N, D*H)"
            expected = (n, t_steps, dirs * hidden) if cache.batch_first else (t_steps, n, dirs * hidden)
            check_shape("dy", dy, expected, f"{layout} like forward's y")
            if cache.batch_first:
                dy = xp.permute_dims(dy, (1, 0, 2))
        self._check_state((dstate,), n, "dstate", xp)
        ops = registry.linear_ops_for(xp, h0.dtype)
        grads: dict[str, Array] = {}
        d0: list[Array] = [h0] * (self.num_layers * dirs)
        d_above = dy
        for k in reversed(range(self.num_layers)):
            d_below = None
            for direction in range(dirs):
                idx = k * dirs + direction
                dy_d = (
                    None if d_above is None else d_above[:, :, direction * hidden : (direction + 1) * hidden]
                )
                ds = None if dstate is None else dstate[idx, ...]
                sc: Any = cache.scans[idx]
                dx_d, d0[idx], (dw, db) = min_scan_backward(
                    self._cell, sc, dy_d, ds, ops=ops, xp=xp, need_dx=need_dx or k > 0
                )
                d_below = dx_d if d_below is None else d_below + dx_d
                s = f"l{k}" + ("_reverse" if direction else "")
                grads[f"weight_ih_{s}"] = dw
                if db is not None:
                    grads[f"bias_ih_{s}"] = db
            if k > 0 and cache.masks:
                d_below = d_below * cache.masks[k - 1]
            d_above = d_below
        dx = xp.permute_dims(d_above, (1, 0, 2)) if cache.batch_first and need_dx else d_above
        return dx, xp.stack(d0), {key: grads[key] for key in self._param_shapes()}


_DOC = _INIT_DOC.replace(
    "    dtype :",
    "    parallel : bool or None, default None\n"
    "        True: the parallel doubling scan (``ceil(log2 T)`` elementwise rounds over the\n"
    "        whole sequence); False: the sequential loop (compiled by Numba for NumPy);\n"
    "        None: the loop where it is compiled, where ``T`` is short, or on the host where a\n"
    "        step holds ``N*H >= 2048`` elements; else the scan. The results are equal to\n"
    "        rounding.\n    dtype :",
    1,
).replace("``b_ih`` and ``b_hh``; False leaves them out", "``b_ih``; False leaves it out")


class MinGRU(MinRecurrent):
    """minGRU layer (Feng et al. 2024), with the paper's log-space coefficients and ``g``.

    Gates ``z, h~`` of the input alone, no recurrent weight::

        z = sigmoid(W_z x + b_z),  h~ = g(W_h x + b_h),  h' = (1 - z) * h + z * h~

    with ``g(p) = p + 1/2`` for ``p >= 0`` and ``sigmoid(p)`` below. A linear recurrence
    in ``h``, so it runs as a parallel scan as well as a loop (``parallel``). State is
    ``h``, ``(L*D, N, H)``; :meth:`forward` and :meth:`backward` are those of
    :class:`xrnn.GRU` (no ``checkpoint``, no ``check_finite``).
    """

    __doc__ += _DOC
    _cell = MINGRU_CELL


class MinLSTM(MinRecurrent):
    """minLSTM layer (Feng et al. 2024), with the paper's log-space coefficients and ``g``.

    Gates ``f, i, h~`` of the input alone, no recurrent weight, normalised forget and
    input gates::

        f, i = sigmoid(W_f x + b_f), sigmoid(W_i x + b_i),  h~ = g(W_h x + b_h)
        h' = f / (f + i) * h + i / (f + i) * h~

    State is ``h`` alone, ``(L*D, N, H)`` (no cell state). See :class:`MinGRU`.
    """

    __doc__ += _DOC
    _cell = MINLSTM_CELL
