"""A cell from its scalar equations: ``define`` traces them, derives the backward, emits the code.

The user writes one step as a Python function of scalars (each gate's pre-activation
and each part of the previous state in, the new state out), with activations from
:data:`ACTIVATIONS` and arithmetic. :func:`define` calls it once on SymPy symbols,
differentiates the result (or traces the backward the user gives), shares common
subexpressions (``sympy.cse``), and prints both as Python source over the activation
names alone. That one source is the cell: bound to array activations it is the cell's
``step``/``step_backward`` on every namespace; bound to a compiler's scalar activations
it is the per-element :class:`~xrnn.cells.base.ScalarStep` that Numba and numba-cuda
compile (:meth:`DefinedCell.scalar_step`). Before the cell is returned, its backward is
held against central finite differences of its forward (float64); a backward that
disagrees is refused with the name of the wrong output.

A step keeps its inputs (pre-activations and previous state) for backward, which
evaluates the derived expressions from them: elementwise work only, no matmul again.
SymPy is needed here only (the ``define`` extra).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .._util.activations import sigmoid as _array_sigmoid
from .._util.typing import Array
from .base import Cell, ScalarStep
from .minimal import softplus as _array_softplus

__all__ = ["ACTIVATIONS", "DEFINED", "DefinedCell", "define"]

#: The activations a step may call, as ``act.<name>(x)``; ``step`` is the Heaviside step
#: (relu's derivative), there for derived backwards.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "exp", "log", "softplus", "step")
#: Every defined cell by name: what a checkpoint of a defined cell is loaded against.
DEFINED: dict[str, DefinedCell] = {}


@dataclass(frozen=True)
class DefinedCell(Cell):
    """A cell made by :func:`define`: a :class:`~xrnn.cells.base.Cell` with its equations as data.

    Attributes
    ----------
    gates : tuple of str
        Gate names, in the order of the ``G`` blocks of ``W_ih`` and ``W_hh``.
    states : tuple of str
        State parts, ``h`` first.
    separate : tuple of str
        Gates whose input and recurrent parts the step receives apart (``<gate>_x``,
        ``<gate>_h``).
    equations : tuple of str
        The forward outputs as SymPy expressions (``srepr``): the definition as data.
    source : str
        The emitted Python source of ``forward(one, *inputs)`` and
        ``backward(one, *d_states, *inputs)``.
    """

    gates: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    separate: tuple[str, ...] = ()
    equations: tuple[str, ...] = ()
    source: str = ""
    _bound: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the gates, states and equations: two definitions agree iff it does."""
        text = repr((self.gates, self.states, self.separate, self.equations))
        return hashlib.sha256(text.encode()).hexdigest()

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        """Pickled as its name and fingerprint (data): unpickling needs the same definition registered."""
        return registered, (self.name, self.fingerprint)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the step's inputs: gate pre-activations (split ones twice), then states."""
        return _inputs(self.gates, self.separate, self.states)

    def scalar_step(self, sigmoid: Callable[..., Any], tanh: Callable[..., Any], **others: Any) -> ScalarStep:
        """The per-element step on a target's activations (see :class:`~xrnn.cells.base.ScalarStep`).

        Parameters
        ----------
        sigmoid, tanh : callable
            The target's scalar activations.
        **others : callable
            ``relu``, ``exp``, ``log``, ``softplus``, ``step`` and ``cast`` (a float constant
            to the arrays' dtype) of the target; defaults: Python's scalar ones.

        Returns
        -------
        ScalarStep
            ``forward(one, *inputs) -> new states``; ``backward(one, *d_states, *inputs) ->
            gradient of every input`` (in the order of :attr:`inputs`).
        """
        space: dict[str, Any] = {**_PYTHON_SCALARS, "sigmoid": sigmoid, "tanh": tanh, **others}
        exec(compile(self.source, f"<xrnn cell {self.name}>", "exec"), space)  # our own emitted code
        return ScalarStep(space["forward"], space["backward"])


def registered(name: str, fingerprint: str) -> DefinedCell:
    """The cell registered under ``name``, if its fingerprint is ``fingerprint``.

    Raises
    ------
    ValueError
        If no cell is registered under ``name``, or one with other equations.
    """
    cell = DEFINED.get(name)
    if cell is None or cell.fingerprint != fingerprint:
        raise ValueError(
            f"cell {name!r} is not registered with the equations it was saved with: run the same "
            f"xrnn.cells.define({name!r}, ...) first"
        )
    return cell


def _inputs(gates: Sequence[str], separate: Sequence[str], states: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for g in gates:
        names += [f"{g}_x", f"{g}_h"] if g in separate else [g]
    return (*names, *states)


_PYTHON_SCALARS: dict[str, Any] = {
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "tanh": math.tanh,
    "relu": lambda x: x if x > 0 else 0.0 * x,
    "exp": math.exp,
    "log": math.log,
    "softplus": lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
    "step": lambda x: 1.0 if x > 0 else 0.0,
    "cast": float,
}


def array_activations(xp: ModuleType) -> dict[str, Any]:
    """The activations of :data:`ACTIVATIONS` on arrays of namespace ``xp``."""
    return {
        "sigmoid": lambda x: _array_sigmoid(x, xp=xp),
        "tanh": xp.tanh,
        "relu": lambda x: xp.where(x > 0, x, xp.zeros_like(x)),
        "exp": xp.exp,
        "log": xp.log,
        "softplus": lambda x: _array_softplus(x, xp=xp),
        "step": lambda x: xp.where(x > 0, xp.ones_like(x), xp.zeros_like(x)),
        "cast": float,
    }


def define(
    name: str,
    gates: Sequence[str],
    states: Sequence[str],
    step: Callable[..., Any],
    *,
    separate: Sequence[str] = (),
    backward: Callable[..., Any] | None = None,
    register: bool = True,
) -> DefinedCell:
    """Define a recurrent cell from its scalar step; derive (or check) its backward.

    Parameters
    ----------
    name : str
        The cell's name (a Python identifier), under which it is registered for checkpoints.
    gates : sequence of str
        Gate names ``G``, in the order of the ``H``-wide blocks of ``W_ih`` and ``W_hh``.
    states : sequence of str
        State parts, ``h`` first (``("h",)`` or ``("h", "c")``).
    step : callable
        ``step(act, *inputs) -> new state`` (a tuple when there are several parts), over
        scalars: ``inputs`` are each gate's pre-activation ``W_ih x + b_ih + W_hh h + b_hh``
        (for a gate in ``separate``: two arguments, its input part then its recurrent
        part), then each previous state part; ``act`` offers :data:`ACTIVATIONS`.
    separate : sequence of str, default ()
        Gates whose recurrent part enters other than added (the GRU's ``n``:
        ``tanh(n_x + r * n_h)``).
    backward : callable, optional
        ``backward(act, *d_states, *inputs) -> gradients`` of every input, in the order of
        ``inputs``. Default: derived by SymPy. Either is checked against finite differences.
    register : bool, default True
        Register the cell in :data:`DEFINED` under ``name``.

    Returns
    -------
    DefinedCell
        A cell that the layers (:class:`xrnn.nn.CellLayer`) and the engine take.

    Raises
    ------
    ValueError
        On a bad name or names, a step that does not return one value per state part, or a
        backward that disagrees with finite differences (the message names the output).
    """
    from . import definition_sympy  # SymPy, only here

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    gates, states, separate = tuple(gates), tuple(states), tuple(separate)
    names = _inputs(gates, separate, states)
    if not gates or not 1 <= len(states) <= 2 or len(set(names)) != len(names):
        raise ValueError(
            f"gates must be one or more names and states one or two, all distinct, got gates {gates}, "
            f"states {states}"
        )
    if set(separate) - set(gates):
        raise ValueError(f"separate must name gates among {gates}, got {separate}")
    equations, source = definition_sympy.derive(name, names, states, step, backward)
    cell = _build(name, gates, states, separate, equations, source)
    definition_sympy.check_backward(cell, _PYTHON_SCALARS)
    if register:
        DEFINED[name] = cell
    return cell


def _build(
    name: str,
    gates: tuple[str, ...],
    states: tuple[str, ...],
    separate: tuple[str, ...],
    equations: tuple[str, ...],
    source: str,
) -> DefinedCell:
    bound: dict[Any, Any] = {}

    def functions(xp: ModuleType) -> tuple[Any, Any]:
        if xp not in bound:
            space: dict[str, Any] = dict(array_activations(xp))
            exec(compile(source, f"<xrnn cell {name}>", "exec"), space)  # our own emitted code
            bound[xp] = (functools.partial(space["forward"], 1.0), functools.partial(space["backward"], 1.0))
        return bound[xp]

    step, step_backward = array_steps(gates, separate, functions)
    return DefinedCell(
        name, len(gates), len(states), not separate, step, step_backward, None,
        gates, states, separate, equations, source, bound,
    )  # fmt: skip


def array_steps(
    gates: tuple[str, ...], separate: tuple[str, ...], functions: Callable[[ModuleType], tuple[Any, Any]]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A cell's ``step`` and ``step_backward`` over elementwise ``forward``, ``backward`` functions.

    ``functions(xp)`` gives the pair for namespace ``xp``: the emitted source on arrays, or a
    backend's compiled kernels of it.
    """
    n_gate_args = len(_inputs(gates, separate, ()))

    def step(gx: Array, gh: Array, state: tuple[Array, ...], *, xp: ModuleType) -> Any:
        hidden = state[0].shape[1]
        args: list[Array] = []
        for j, gate in enumerate(gates):
            x, h = gx[:, j * hidden : (j + 1) * hidden], gh[:, j * hidden : (j + 1) * hidden]
            args += [x, h] if gate in separate else [x + h]
        out = functions(xp)[0](*args, *state)
        return tuple(out), (*args, *state)

    def step_backward(dstate: tuple[Array, ...], cache: tuple[Array, ...], *, xp: ModuleType) -> Any:
        grads = list(functions(xp)[1](*dstate, *cache))
        dgx, dgh, k = [], [], 0
        for gate in gates:
            width = 2 if gate in separate else 1
            dgx.append(grads[k])
            dgh.append(grads[k + width - 1])
            k += width
        return (
            xp.concat(dgx, axis=1),
            xp.concat(dgh, axis=1) if separate else None,
            tuple(grads[n_gate_args:]),
        )

    return step, step_backward
