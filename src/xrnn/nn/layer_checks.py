"""The argument checks of the recurrent layers: states, caches, parameters given to ``apply``, lengths.

:class:`Checks` is a base of :class:`~xrnn.nn.recurrent.Recurrent`: every message names
the argument, what was expected and what came.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from types import ModuleType
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_jax_namespace

from .._util.namespaces import is_traced
from .._util.typing import Array
from .._util.validation import check_finite as check_finite_values
from .._util.validation import check_keys, check_shape, lengths_list
from ..cells import Cell
from ..engine.lengths import length_mask
from ..engine.scan import Weights
from .layer_cache import LayerCache

__all__ = ["Checks", "segment_of"]


class Checks:
    """Checks of what the layer's ``forward``, ``backward`` and ``apply`` are given."""

    _cell: Cell
    num_layers: int
    hidden_size: int
    proj_size: int
    dropout: float
    training: bool

    @property
    def num_directions(self) -> int:
        """1, or 2 for a bidirectional layer (defined by the layer)."""
        raise NotImplementedError

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _weights(self, k: int, direction: int, params: dict[str, Array] | None = None) -> Weights:
        raise NotImplementedError

    def _state_tuple(self, state: Any, name: str = "state") -> tuple[Array | None, ...]:
        """Split a user state (``h`` or ``(h, c)``) into a tuple, checking its structure."""
        if self._cell.n_states == 1:
            return (state,)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name} of an LSTM must be a tuple (h, c), got {type(state).__name__}")
        return tuple(state)

    def _check_state(self, parts: tuple[Any, ...], n: int, name: str, xp: ModuleType) -> None:
        stacked = self.num_layers * self.num_directions
        labels = ("h",) if len(parts) == 1 else ("h", "c")
        for j, (label, part) in enumerate(zip(labels, parts)):
            if part is not None:
                full = name if len(parts) == 1 else f"{name}[{j}] ({label})"
                size, axis = (
                    (self.proj_size, "proj_size")
                    if j == 0 and self.proj_size
                    else (self.hidden_size, "hidden_size")
                )
                check_shape(full, part, (stacked, n, size), f"(num_layers * num_directions, N, {axis})")

    def _check_dy(
        self,
        cache: LayerCache,
        dy: Array | None,
        dstate: dict[str, Any],
        xp: ModuleType,
        *,
        check_finite: bool,
    ) -> None:
        """Check ``dy`` against forward's ``y``, and with ``check_finite`` it and ``dstate`` (by name).

        As forward's check of ``x``: what ``dy`` holds past each length is never read.
        """
        t_steps, n, _ = cache.shape
        if dy is not None:
            size = "D*proj_size" if self.proj_size else "D*H"
            layout = f"(N, T, {size})" if cache.batch_first else f"(T, N, {size})"
            width = self.num_directions * (self.proj_size or self.hidden_size)
            expected = (n, t_steps, width) if cache.batch_first else (t_steps, n, width)
            check_shape("dy", dy, expected, f"{layout} like forward's y")
        if check_finite:
            lens = cache.scans[0].lengths
            valid = dy
            if dy is not None and lens is not None:
                mask = length_mask(lens, t_steps, xp=xp)
                mask = xp.permute_dims(mask, (1, 0, 2)) if cache.batch_first else mask
                valid = xp.where(mask, dy, xp.zeros_like(dy))
            check_finite_values(xp, dy=valid, **dstate)

    def _checked_params(self, params: Any) -> dict[str, Array]:
        """``params`` as a new dict, once checked to hold exactly the layer's keys.

        Parameters
        ----------
        params : dict of str to array
            What ``apply`` was given (shapes are checked by the forward pass).

        Returns
        -------
        dict of str to array
        """
        if self.training and self.dropout > 0:
            raise ValueError(
                f"apply is a pure function and draws no dropout masks, but this {type(self).__name__} "
                f"has dropout={self.dropout} in training mode: call layer.eval() first (no dropout), "
                "or build it with dropout=0 and apply dropout between layers yourself"
            )
        zoneout = getattr(self, "zoneout", 0.0)
        if self.training and (any(zoneout) if isinstance(zoneout, tuple) else zoneout):
            raise ValueError(
                f"apply is a pure function and draws no zoneout masks, but this {type(self).__name__} "
                f"has zoneout={zoneout} in training mode: call layer.eval() first (the expectation)"
            )
        shapes = self._param_shapes()
        check_keys("params", params, list(shapes))
        unexpected = sorted(set(params) - set(shapes))
        if unexpected:
            raise ValueError(f"params has key(s) {unexpected} that this {type(self).__name__} does not use")
        return dict(params)

    def _check_cache(self, cache: Any) -> None:
        if not isinstance(cache, LayerCache):
            raise TypeError(f"cache must be the LayerCache returned by forward, got {type(cache).__name__}")
        if cache.cell != self._cell.name or len(cache.scans) != self.num_layers * self.num_directions:
            raise ValueError(
                f"cache was made by another layer ({cache.cell}, {len(cache.scans)} scans), "
                f"not by this {type(self).__name__}"
            )
        for idx, sc in enumerate(cache.scans):
            k, direction = divmod(idx, self.num_directions)
            expected = self._weights(k, direction)
            if cache.weight_masks:  # DropConnect ran on W_hh * mask: the other weights tell
                expected = expected._replace(w_hh=sc.weights.w_hh)
            if not self._same_weights(sc.weights, expected):
                raise ValueError(
                    "cache was made with other parameters than the layer holds now: "
                    "run forward again after changing the parameters"
                )

    @staticmethod
    def _same_weights(made: Any, held: Any) -> bool:
        """Whether a cache's weights (``Weights``) are those the layer holds now: by identity."""
        return all(a is b for a, b in zip(made, held))

    @staticmethod
    def _lengths(lengths: Any, n: int, t_steps: int, *, xp: ModuleType, like: Array) -> Array | None:
        if lengths is None:
            return None
        if is_traced(lengths):  # no values to check (jax.jit): clipped, as no step lies outside 0..T
            if not xp.isdtype(lengths.dtype, "integral"):
                raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
            check_shape("lengths", lengths, (n,), "(N,)")
            return xp.clip(lengths, min=0, max=t_steps)
        values = lengths_list(lengths, n, t_steps)
        if all(v == t_steps for v in values):
            return None
        int64 = None if is_jax_namespace(xp) else xp.int64  # JAX's default: int64 only with jax_enable_x64
        return xp.asarray(values, dtype=int64, device=device_of(like))


def segment_of(checkpoint: Any) -> Callable[[int], int] | None:
    """The segment length of ``checkpoint`` as a function of ``T`` (None: no segments)."""
    if checkpoint is None:
        return None
    if is_traced(checkpoint):  # a segment length shapes the program: it cannot be a traced value
        raise TypeError(
            "checkpoint must be a static value under jax.jit (None, a positive int or 'sqrt'), got a "
            "traced value: pass it through static_argnames or a closure"
        )
    if checkpoint == "sqrt":
        return lambda t_steps: math.isqrt(t_steps - 1) + 1  # ceil(sqrt(T)) for T >= 1
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, numbers.Integral) or checkpoint < 1:
        raise ValueError(f"checkpoint must be None, a positive int or 'sqrt', got {checkpoint!r}")
    k = int(checkpoint)
    return lambda t_steps: k
