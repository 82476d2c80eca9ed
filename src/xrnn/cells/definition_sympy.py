"""What :func:`xrnn.cells.define` does with SymPy: trace, differentiate, print; and the check.

The activations are SymPy functions whose derivatives are written in the same
vocabulary (``sigmoid' = s (1 - s)``, ``softplus' = sigmoid``, ``relu' = step``), so a
derived backward prints with the activations of :data:`~xrnn.cells.definition.ACTIVATIONS`
alone. The printer writes integer powers as products and every constant through
``cast`` (the target's dtype), so float32 kernels stay float32.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import sympy
from sympy.printing.str import StrPrinter

__all__ = ["check_backward", "derive"]


class Sigmoid(sympy.Function):
    """``1 / (1 + exp(-x))``, its derivative from its output."""

    def fdiff(self, argindex: int = 1) -> Any:
        s = Sigmoid(self.args[0])
        return s * (1 - s)


class Step(sympy.Function):
    """The Heaviside step, 1 for ``x > 0``; derivative 0 (almost everywhere)."""

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Integer(0)


class Relu(sympy.Function):
    """``max(x, 0)``."""

    def fdiff(self, argindex: int = 1) -> Any:
        return Step(self.args[0])


class Softplus(sympy.Function):
    """``log(1 + exp(x))``."""

    def fdiff(self, argindex: int = 1) -> Any:
        return Sigmoid(self.args[0])


_SYMBOLIC = {
    "sigmoid": Sigmoid,
    "tanh": sympy.tanh,
    "relu": Relu,
    "exp": sympy.exp,
    "log": sympy.log,
    "softplus": Softplus,
    "step": Step,
}
_NAMES = {Sigmoid: "sigmoid", Step: "step", Relu: "relu", Softplus: "softplus"}
#: The names the printed source may call (those of xrnn.cells.definition.ACTIVATIONS).
ACTIVATIONS = tuple(_SYMBOLIC)


class _Printer(StrPrinter):
    """Python source over the activation names, ``one`` and ``cast``."""

    def _print_Function(self, expr: Any) -> str:
        name = _NAMES.get(expr.func, expr.func.__name__)
        if name not in ACTIVATIONS:
            raise ValueError(f"the step uses {name}, which is not one of the activations {ACTIVATIONS}")
        return f"{name}({self._print(expr.args[0])})"

    def _print_Pow(self, expr: Any, rational: bool = False) -> str:
        base, e = expr.args
        if not e.is_Integer or e == 0:
            raise ValueError(f"the step raises to the power {e}: only integer powers are supported")
        b = self.parenthesize(base, 1000)  # above every precedence: always parenthesised if compound
        product = "*".join([f"({b})"] * abs(int(e)))
        return f"({product})" if e > 0 else f"(one/({product}))"

    def _print_Integer(self, expr: Any) -> str:
        return "one" if expr == 1 else f"cast({int(expr)})"

    def _print_Rational(self, expr: Any) -> str:
        return f"cast({expr.p}/{expr.q})"

    def _print_Float(self, expr: Any) -> str:
        return f"cast({float(expr)!r})"

    def _print_Exp1(self, expr: Any) -> str:
        return "exp(one)"


def _function(head: str, args: Sequence[str], exprs: Sequence[Any], first: str) -> str:
    replacements, reduced = sympy.cse(list(exprs), symbols=sympy.numbered_symbols("_t"))
    printer = _Printer()
    lines = [f"def {head}(one, {', '.join(args)}):"]
    lines += [f"    {s} = {printer.doprint(e)}" for s, e in replacements]
    results = [f"cast(0) * {first}" if e == 0 else printer.doprint(e) for e in reduced]
    lines.append(f"    return ({', '.join(results)},)")
    return "\n".join(lines) + "\n"


def _as_tuple(value: Any, count: int, what: str) -> tuple[Any, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(values) != count:
        raise ValueError(f"{what} must return {count} value(s), got {len(values)}")
    return tuple(sympy.sympify(v) for v in values)


def derive(
    name: str,
    names: tuple[str, ...],
    states: tuple[str, ...],
    step: Callable[..., Any],
    backward: Callable[..., Any] | None,
) -> tuple[tuple[str, ...], str]:
    """The equations (``srepr`` of the forward outputs) and the emitted source of a definition."""
    taken = {*ACTIVATIONS, "one", "cast"}
    bad = [n for n in names if not n.isidentifier() or n in taken or n.startswith("_")]
    if bad:
        raise ValueError(f"gate and state names must be identifiers other than {sorted(taken)}, got {bad}")
    act = SimpleNamespace(**_SYMBOLIC)
    inputs = [sympy.Symbol(n, real=True) for n in names]
    outputs = _as_tuple(step(act, *inputs), len(states), f"step of cell {name!r}")
    d_states = [sympy.Symbol(f"_d_{s}", real=True) for s in states]
    if backward is None:
        grads = tuple(
            sympy.factor_terms(sum(d * sympy.diff(out, u) for d, out in zip(d_states, outputs)))
            for u in inputs
        )
    else:
        grads = _as_tuple(backward(act, *d_states, *inputs), len(inputs), f"backward of cell {name!r}")
    source = _function("forward", names, outputs, names[0])
    source += _function("backward", [str(d) for d in d_states] + list(names), grads, names[0])
    return tuple(sympy.srepr(out) for out in outputs), source


def check_backward(cell: Any, scalars: dict[str, Any], points: int = 32, eps: float = 1e-6) -> None:
    """Hold ``cell``'s backward against central differences of its forward, in float64.

    ``cell`` is a :class:`~xrnn.cells.definition.DefinedCell`; ``scalars`` its Python
    scalar activations.

    Raises
    ------
    ValueError
        Naming the first input whose gradient disagrees, and by how much.
    """
    forward, backward = cell.scalar_step(**scalars)
    names, rng = cell.inputs, random.Random(0)
    for _ in range(points):
        u = [rng.uniform(-2.0, 2.0) for _ in names]
        d = [rng.gauss(0.0, 1.0) for _ in cell.states]

        def loss(v: list[float], d: list[float] = d) -> float:
            return sum(di * oi for di, oi in zip(d, forward(1.0, *v)))

        try:
            analytic = backward(1.0, *d, *u)
            base = loss(u)
        except (ValueError, ZeroDivisionError, OverflowError):  # outside the step's domain (log)
            continue
        if not math.isfinite(base):
            continue
        for j, name in enumerate(names):
            up, down = list(u), list(u)
            up[j] += eps
            down[j] -= eps
            numeric = (loss(up) - loss(down)) / (2 * eps)
            if abs(analytic[j] - numeric) > 1e-5 * (1.0 + abs(numeric)):
                raise ValueError(
                    f"backward of cell {cell.name!r} is wrong for output {j} (the gradient of "
                    f"{name!r}): {analytic[j]!r} where finite differences give {numeric!r} at "
                    f"inputs {dict(zip(names, (round(x, 4) for x in u)))}"
                )
