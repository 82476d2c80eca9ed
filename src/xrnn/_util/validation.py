"""Checks of user input, shared by the public functions.

Every failure is a ``ValueError`` or ``TypeError`` whose message names the argument,
says what was expected and shows what came. Nothing here runs inside a time loop.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from array_api_compat import is_array_api_obj

from .namespaces import is_traced, to_host

__all__ = ["check_dtypes", "check_finite", "check_int", "check_keys", "check_shape", "lengths_list"]


def check_shape(name: str, a: Any, expected: Sequence[int | None], meaning: str) -> None:
    """Check that ``a.shape`` matches ``expected`` (None matches any size).

    Parameters
    ----------
    name : str
        Argument name for the message.
    a : array
        The array to check.
    expected : sequence of int or None
        Expected sizes; ``len(expected)`` is the expected number of dimensions.
    meaning : str
        What the axes are, e.g. ``"(n_x, m, T_x)"``, shown in the message.
    """
    shape = tuple(a.shape)
    if len(shape) != len(expected):
        raise ValueError(f"{name} must have {len(expected)} dimensions {meaning}, got shape {shape}")
    if any(e is not None and s != e for s, e in zip(shape, expected)):
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        if len(expected) == 1:
            want = want[:-1] + ",)"
        raise ValueError(f"{name} must have shape {want} {meaning}, got shape {shape}")


def check_bool(name: str, value: Any) -> None:
    """Check that ``value`` is True or False (a string such as ``"False"`` is refused).

    Parameters
    ----------
    name : str
        Argument name for the message.
    value : object
        The value to check; Python and NumPy bools pass.
    """
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_int(name: str, value: Any, *, least: int = 1) -> None:
    """Check that ``value`` is an integer (not a bool) of at least ``least``.

    Parameters
    ----------
    name : str
        Argument name for the message.
    value : object
        The value to check; Python and NumPy integers pass.
    least : int, default 1
        The smallest value allowed.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        want = "a positive int" if least == 1 else f"an int >= {least}"
        raise ValueError(f"{name} must be {want}, got {value!r}")


def check_dtypes(xp: ModuleType, **arrays: Any) -> Any:
    """Check that the named arrays share one real floating dtype, and return it.

    Parameters
    ----------
    xp : module
        Their namespace.
    **arrays : array or None
        Arrays keyed by argument name; None values are skipped.

    Returns
    -------
    dtype
        The common dtype.
    """
    given = {name: a for name, a in arrays.items() if a is not None}
    first_name, first = next(iter(given.items()))
    for name, a in given.items():  # the dtypes compared first: one isdtype per distinct dtype
        if a is not first and a.dtype == first.dtype:
            continue
        if not xp.isdtype(a.dtype, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype, got {a.dtype}")
        if a.dtype != first.dtype:
            raise TypeError(
                f"all arrays must share one dtype: {first_name} is {first.dtype} but {name} is {a.dtype}"
            )
    return first.dtype


def check_finite(xp: ModuleType, **arrays: Any) -> None:
    """Check that the named arrays hold no NaN and no infinity (asked for by ``check_finite=True``).

    Parameters
    ----------
    xp : module
        Their namespace.
    **arrays : array or None
        Arrays keyed by argument name; None values are skipped.

    Notes
    -----
    Inside ``jax.jit``, ``jax.grad`` or ``jax.vmap`` the arrays are tracers without values:
    the check cannot run there and says so (a ``TypeError``) rather than pass unchecked.
    """
    for name, a in arrays.items():
        if a is None:
            continue
        if is_traced(a):
            raise TypeError(
                f"check_finite=True needs the values of {name}, but it is a JAX tracer (inside "
                "jax.jit, jax.grad or jax.vmap): check the arrays before the traced function, "
                "or leave check_finite False there"
            )
        bad = ~xp.isfinite(a)
        if bool(xp.any(bad)):
            count = int(xp.sum(xp.astype(bad, xp.int64)))
            raise ValueError(
                f"{name} must be finite (check_finite=True), got {count} NaN or infinite "
                f"value(s) among {a.size if isinstance(a.size, int) else '?'}"
            )


def check_keys(name: str, given: Mapping[str, Any], required: Sequence[str]) -> None:
    """Check that the mapping ``given`` holds every key of ``required``.

    Parameters
    ----------
    name : str
        Argument name for the message.
    given : mapping
        The dictionary to check.
    required : sequence of str
        Keys it must contain.
    """
    if not isinstance(given, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(given).__name__}")
    missing = [k for k in required if k not in given]
    if missing:
        raise ValueError(
            f"{name} is missing key(s) {missing}; expected keys {list(required)}, got {sorted(given)}"
        )


def lengths_list(lengths: Any, n: int, t: int) -> list[int]:
    """Validate sequence lengths and return them as Python ints.

    Parameters
    ----------
    lengths : sequence of int or 1-d integer array
        One length per sequence of the batch.
    n : int
        Batch size N.
    t : int
        Number of time steps T of the padded input.

    Returns
    -------
    list of int
        The lengths, each in ``1..t``.
    """
    if not is_array_api_obj(lengths) and hasattr(lengths, "__array__"):  # a pandas Series
        import numpy as np

        lengths = np.asarray(lengths)
    shape = getattr(lengths, "shape", None)
    if shape is not None:
        dtype = lengths.dtype
        if "int" not in str(dtype) or "bool" in str(dtype):
            raise TypeError(f"lengths must hold integers, got dtype {dtype}")
        if len(shape) != 1:
            raise ValueError(f"lengths must have 1 dimension (N,), got shape {tuple(shape)}")
        values = [int(v) for v in to_host(lengths).tolist()]  # one transfer, not one per sequence
    elif isinstance(lengths, Sequence) and not isinstance(lengths, str):
        values = []
        for v in lengths:
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise TypeError(f"lengths must hold integers, got {v!r:.80}")
            values.append(operator.index(v))
    else:
        raise TypeError(f"lengths must be a sequence of int or a 1-d array, got {lengths!r:.80}")
    if len(values) != n:
        raise ValueError(f"lengths must have one entry per sequence (N={n}), got {len(values)}")
    out_of_range = [v for v in values if not 1 <= v <= t]
    if out_of_range:
        where = values.index(out_of_range[0])
        raise ValueError(
            f"lengths must lie in 1..T={t}, got {out_of_range[0]} at index {where} "
            f"({len(out_of_range)} of {len(values)} out of range)"
        )
    return values
