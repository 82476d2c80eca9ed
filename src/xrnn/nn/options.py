"""The configuration of a layer or model: the constructor options that rebuild it.

A layer's options are read from its constructor's signature (everything but ``dtype``,
``device``, ``xp`` and ``seed``) and its attributes of the same names, so an option that a
layer class gains is recorded, checked and restored without a list to keep in step.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any

__all__ = ["PLACEMENT", "config_of", "option_types", "options", "plain"]

#: Constructor arguments that place the arrays, not part of a configuration.
PLACEMENT = ("dtype", "device", "xp", "seed")
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def options(cls: type) -> dict[str, inspect.Parameter]:
    """The named constructor options of ``cls``, in the order of its signature."""
    signature = inspect.signature(cls)  # the constructor, without self
    return {
        name: p
        for name, p in signature.parameters.items()
        if name != "self"
        and name not in PLACEMENT
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }


def option_types(cls: type) -> dict[str, tuple[type, bool]]:
    """``{option: (JSON type, required)}``: the type of its default, else of its annotation."""
    out: dict[str, tuple[type, bool]] = {}
    for name, p in options(cls).items():
        if p.default is not inspect.Parameter.empty:
            out[name] = (type(p.default), False)
        elif str(p.annotation) in _TYPES:
            out[name] = (_TYPES[str(p.annotation)], True)
        else:
            raise TypeError(f"{cls.__name__} option {name!r} has no default and no plain type")
    return out


def plain(value: Any) -> Any:
    """``value`` as a JSON scalar (NumPy integers and floats become Python's)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def config_of(obj: Any) -> dict[str, Any]:
    """The options that rebuild ``obj``: ``type(obj)(**config_of(obj))`` (JSON-serialisable)."""
    return {name: plain(getattr(obj, name)) for name in options(type(obj))}
