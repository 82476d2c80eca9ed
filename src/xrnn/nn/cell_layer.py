"""``CellLayer``: the layer API over any cell, a user's defined one included.

A cell made by :func:`xrnn.cells.define` runs in a :class:`CellLayer` exactly as the
built-in cells run in :class:`xrnn.LSTM` and :class:`xrnn.GRU` (stacking, both directions,
variable lengths, dropout, checkpointed recomputation), with the parameters of
:mod:`xrnn.nn.layers` (``G`` the cell's gate count). In a :class:`xrnn.SequenceModel` and
its checkpoints a defined cell is named by :func:`reference`, ``"<name>@<fingerprint>"``:
data, which loads only where the same definition is registered.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from ..cells import Cell
from ..cells.definition import DEFINED, DefinedCell
from .layers import _INIT_DOC
from .recurrent import Recurrent

__all__ = ["CellLayer", "bound_layer", "reference", "resolve"]


class CellLayer(Recurrent):
    """A recurrent layer over any cell, e.g. one made by :func:`xrnn.cells.define`.

    State is ``h`` of shape ``(L*D, N, H)``, or a tuple ``(h, c)`` of two such arrays for
    a cell of two state parts. :meth:`forward` and :meth:`backward` are those of
    :class:`xrnn.LSTM`.
    """

    __doc__ += _INIT_DOC.replace(
        "    Parameters\n    ----------\n",
        "    Parameters\n    ----------\n    cell : Cell\n        The cell (a :class:`~xrnn.cells.definition."
        "DefinedCell`, or a built-in one).\n",
        1,
    )

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        if not isinstance(cell, Cell) or cell.output is not None:
            raise TypeError(f"cell must be a Cell without a projection (xrnn.cells.define), got {cell!r}")
        self._cell = cell
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

    def _state_tuple(self, state: Any, name: str = "state") -> tuple[Any, ...]:
        if self._cell.n_states == 1:
            return (state,)
        if not isinstance(state, (tuple, list)) or len(state) != self._cell.n_states:
            raise TypeError(
                f"{name} of cell {self._cell.name!r} must be a tuple (h, c), got {type(state).__name__}"
            )
        return tuple(state)


def reference(cell: DefinedCell) -> str:
    """``"<name>@<fingerprint>"``: how a model and its checkpoints name a defined cell."""
    return f"{cell.name}@{cell.fingerprint}"


def resolve(name: str) -> DefinedCell | None:
    """The registered cell that :func:`reference` gave ``name``, or None if it names no defined cell.

    Raises
    ------
    ValueError
        If ``name`` refers to a defined cell that is not registered, or registered with
        other equations.
    """
    if not isinstance(name, str) or "@" not in name:
        return None
    base, _, fingerprint = name.partition("@")
    cell = DEFINED.get(base)
    if cell is None:
        raise ValueError(
            f"cell {base!r} is a defined cell that is not registered here: run the same "
            f"xrnn.cells.define({base!r}, ...) before building or loading the model"
        )
    if cell.fingerprint != fingerprint:
        raise ValueError(
            f"cell {base!r} is registered with other equations than the model was made with "
            f"(fingerprint {cell.fingerprint[:12]}..., expected {fingerprint[:12]}...)"
        )
    return cell


@functools.cache
def bound_layer(cell: DefinedCell) -> type[CellLayer]:
    """A :class:`CellLayer` class with ``cell`` fixed, whose options are those of every layer."""

    class Bound(CellLayer):
        def __init__(
            self,
            input_size: int,
            hidden_size: int,
            num_layers: int = 1,
            bias: bool = True,
            batch_first: bool = False,
            dropout: float = 0.0,
            bidirectional: bool = False,
            *,
            dtype: Any = None,
            device: Any = None,
            xp: str | ModuleType | None = None,
            seed: Any = None,
        ) -> None:
            super().__init__(
                cell,
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

        def __reduce__(self) -> tuple[Any, tuple[DefinedCell], dict[str, Any]]:
            """Pickled as its cell (by name and fingerprint: data) and its attributes, not its class."""
            return _bound_instance, (cell,), self.__getstate__()

    Bound.__name__ = Bound.__qualname__ = f"CellLayer[{cell.name}]"
    return Bound


def _bound_instance(cell: DefinedCell) -> CellLayer:
    """An empty instance of ``bound_layer(cell)``, for unpickling to fill (see ``Bound.__reduce__``)."""
    cls = bound_layer(cell)
    return cls.__new__(cls)
