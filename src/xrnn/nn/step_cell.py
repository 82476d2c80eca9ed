"""The shared machinery of the single-step cell layers (:mod:`xrnn.nn.cell_layers`).

:class:`StepCell` holds the parameters under ``torch.nn``'s cell keys and runs one step of
its cell forward and backward through the engine's cell maths; :class:`CellCache` is what
its forward keeps for its backward.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

from array_api_compat import device as device_of

from .._util.namespaces import convert, host_rng, namespace, random_uniform, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_bool, check_dtypes, check_int, check_shape
from ..cells import Cell
from .parameters import Parameters
from .pickling import NamespaceByName

__all__ = ["CellCache", "StepCell"]

_Cell = TypeVar("_Cell", bound="StepCell")


class CellCache(NamedTuple):
    """What :meth:`LSTMCell.backward` (and the others) needs from ``forward``.

    Attributes
    ----------
    x : array, shape (N, input_size)
        The step's input.
    state : tuple of arrays, each (N, hidden_size)
        The state the step started from, ``h`` first.
    step : object
        The cell's own step cache (:mod:`xrnn.cells`).
    cell : str
        Name of the cell that made it.
    weights : tuple of arrays
        ``(W_ih, W_hh)`` the step used, to refuse a cache made with other parameters.
    """

    x: Array
    state: tuple[Array, ...]
    step: Any
    cell: str
    weights: tuple[Array, Array]


class StepCell(Parameters, NamespaceByName):
    """What the three cell classes share; see :class:`LSTMCell`."""

    _cell: Cell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_bool("bias", bias)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.xp = resolve_namespace(xp)
        self.dtype = resolve_dtype(dtype, self.xp)
        rng, bound = host_rng(seed), 1.0 / math.sqrt(hidden_size)
        self.params: dict[str, Array] = {
            key: random_uniform(shape, bound, seed=rng, xp=self.xp, dtype=self.dtype, device=device)
            for key, shape in self._param_shapes().items()
        }

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        gates = self._cell.n_gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (gates, self.input_size),
            "weight_hh": (gates, self.hidden_size),
        }
        if self.bias:
            shapes["bias_ih"], shapes["bias_hh"] = (gates,), (gates,)
        return shapes

    @property
    def device(self) -> Any:
        """Device of the parameters."""
        return device_of(self.params["weight_ih"])

    def __repr__(self) -> str:
        sizes = f"{self.input_size}, {self.hidden_size}"
        return f"{type(self).__name__}({sizes}, bias={self.bias}, dtype={self.dtype})"

    def _parts(self, state: Any, name: str) -> tuple[Any, ...]:
        """A user state (``h`` or ``(h, c)``) as a tuple, its structure checked."""
        if self._cell.n_states == 1:
            return (state,)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name} of an LSTMCell must be a tuple (h, c), got {type(state).__name__}")
        return tuple(state)

    def _check_parts(self, parts: tuple[Any, ...], n: int, name: str) -> None:
        for j, part in enumerate(parts):
            if part is not None:
                label = name if len(parts) == 1 else f"{name}[{j}]"
                check_shape(label, part, (n, self.hidden_size), "(N, hidden_size)")

    def forward(self, x: Array, state: Any = None) -> tuple[Any, CellCache]:
        """One step of a batch.

        Parameters
        ----------
        x : array, shape (N, input_size)
            The step's input, same namespace, device and dtype as the parameters.
        state : array (N, hidden_size), or tuple (h, c) of two for the LSTMCell, optional
            The state before the step; zeros if omitted (an entry of the tuple may be None).

        Returns
        -------
        state : array (N, hidden_size), or tuple (h, c)
            The state after the step.
        cache : CellCache
            Everything :meth:`backward` needs.
        """
        p = self.params
        parts = (None,) * self._cell.n_states if state is None else self._parts(state, "state")
        names = ("state",) if len(parts) == 1 else ("state[0]", "state[1]")
        named = dict(zip(names, parts))
        xp = namespace(x=x, parameters=p["weight_ih"], **named)
        check_shape("x", x, (None, self.input_size), "(N, input_size)")
        check_dtypes(
            xp, parameters=p["weight_ih"], x=x, **named, **{f"params[{k!r}]": v for k, v in p.items()}
        )
        n = x.shape[0]
        self._check_parts(parts, n, "state")
        zeros = xp.zeros((n, self.hidden_size), dtype=x.dtype, device=device_of(x))
        prev = tuple(zeros if a is None else a for a in parts)
        w_ih, w_hh = p["weight_ih"], p["weight_hh"]
        gx = x @ xp.matrix_transpose(w_ih)  # (N, GH)
        gh = prev[0] @ xp.matrix_transpose(w_hh)  # (N, GH)
        if self.bias:
            gx, gh = gx + p["bias_ih"], gh + p["bias_hh"]
        new, step = self._cell.step(gx, gh, prev, xp=xp)
        out = new[0] if self._cell.n_states == 1 else tuple(new)
        return out, CellCache(x, prev, step, self._cell.name, (w_ih, w_hh))

    def __call__(self, x: Array, state: Any = None) -> Any:
        """``state = cell(x, state)``: :meth:`forward` without the cache, as a ``torch.nn`` cell call.

        Parameters
        ----------
        x : array, shape (N, input_size)
            The step's input.
        state : array (N, hidden_size), or tuple (h, c) for the LSTMCell, optional
            The state before the step; zeros if omitted.

        Returns
        -------
        array (N, hidden_size), or tuple (h, c) for the LSTMCell
            The state after the step (``h, c = lstm_cell(x, (h, c))`` as in torch).
        """
        return self.forward(x, state)[0]

    def backward(self, cache: CellCache, dstate: Any) -> tuple[Array, Any, dict[str, Array]]:
        """Backpropagate through the step that made ``cache``.

        Parameters
        ----------
        cache : CellCache
            Second result of :meth:`forward` with the current parameters.
        dstate : array (N, hidden_size), or tuple (dh, dc) for the LSTMCell
            Gradient of the loss with respect to the state after the step; an entry of
            the tuple may be None (zero).

        Returns
        -------
        dx : array, shape (N, input_size)
            Gradient with respect to ``x``.
        dstate_prev : array (N, hidden_size), or tuple (dh, dc)
            Gradient with respect to the state before the step.
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        if not isinstance(cache, CellCache):
            raise TypeError(f"cache must be the CellCache returned by forward, got {type(cache).__name__}")
        w_ih, w_hh = self.params["weight_ih"], self.params["weight_hh"]
        if cache.cell != self._cell.name or cache.weights[0] is not w_ih or cache.weights[1] is not w_hh:
            raise ValueError(
                f"cache was made by another cell or with other parameters than this {type(self).__name__} "
                "holds now: run forward again"
            )
        parts = self._parts(dstate, "dstate")
        names = ("dstate",) if len(parts) == 1 else ("dstate[0]", "dstate[1]")
        named = dict(zip(names, parts))
        xp = namespace(cached=cache.x, **named)
        check_dtypes(xp, cached=cache.x, **named)
        self._check_parts(parts, cache.x.shape[0], "dstate")
        d = tuple(xp.zeros_like(s) if a is None else a for a, s in zip(parts, cache.state))
        dgx, dgh, direct = self._cell.step_backward(d, cache.step, xp=xp)
        dgh = dgx if dgh is None else dgh  # (N, GH)
        dh = dgh @ w_hh  # (N, H)
        if direct[0] is not None:
            dh = dh + direct[0]
        d_prev = (dh, *direct[1:])
        grads = {
            "weight_ih": xp.matrix_transpose(dgx) @ cache.x,
            "weight_hh": xp.matrix_transpose(dgh) @ cache.state[0],
        }
        if self.bias:
            grads["bias_ih"], grads["bias_hh"] = xp.sum(dgx, axis=0), xp.sum(dgh, axis=0)
        dx = dgx @ w_ih  # (N, I)
        return dx, d_prev[0] if self._cell.n_states == 1 else d_prev, grads

    def state_dict(self) -> dict[str, Array]:
        """The parameters under ``torch.nn``'s keys.

        Returns
        -------
        dict of str to array
            A new dict of the parameter arrays (not copies); convert each with
            ``torch.as_tensor`` for ``torch_module.load_state_dict``.
        """
        return dict(self.params)

    @classmethod
    def from_state_dict(
        cls: type[_Cell],
        sd: Mapping[str, Any],
        *,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> _Cell:
        """Build a cell from a ``torch.nn``-style state dict of the same kind of cell.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as in :mod:`xrnn.nn.cell_layers`; values of any namespace (torch
            tensors included). Sizes and ``bias`` are read from the keys.
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        cell
            A cell of this class holding copies of the values.
        """
        return cls._from_state_dict(sd, xp=xp, dtype=dtype, device=device)

    @classmethod
    def _from_state_dict(cls, sd: Mapping[str, Any], **options: Any) -> Any:
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        keys = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
        if set(sd) - keys or not {"weight_ih", "weight_hh"} <= set(sd):
            raise ValueError(
                f"state_dict must hold weight_ih, weight_hh (and bias_ih, bias_hh), got keys {sorted(sd)}"
            )
        w_ih, w_hh = sd["weight_ih"], sd["weight_hh"]
        if len(w_ih.shape) != 2 or len(w_hh.shape) != 2:
            raise ValueError(
                "state_dict['weight_ih'] and ['weight_hh'] must be 2-d, got shapes "
                f"{tuple(w_ih.shape)} and {tuple(w_hh.shape)}"
            )
        dtype, device = options.pop("dtype"), options["device"]
        build: Any = cls
        cell = build(
            int(w_ih.shape[1]),
            int(w_hh.shape[1]),
            bias="bias_ih" in sd or "bias_hh" in sd,
            dtype=dtype if dtype is not None else str(w_ih.dtype).rsplit(".", 1)[-1],
            **options,
        )
        expected = cell._param_shapes()
        for key, shape in expected.items():
            if key not in sd:
                raise ValueError(f"state_dict is missing {key!r}, got keys {sorted(sd)}")
            if tuple(sd[key].shape) != shape:
                raise ValueError(
                    f"state_dict[{key!r}] must have shape {shape} for a {cls.__name__} with input_size="
                    f"{cell.input_size}, hidden_size={cell.hidden_size}, got {tuple(sd[key].shape)}"
                )
        cell.params = {k: convert(sd[k], xp=cell.xp, dtype=cell.dtype, device=device) for k in expected}
        return cell
