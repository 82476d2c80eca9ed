"""Inputs as they come: array-likes into the model's namespace, dtypes cast only when asked.

The policy, for ``SequenceModel.forward``, ``predict`` and :func:`xrnn.fit`:

- An array of the model's namespace is taken as it is. Its dtype must be the model's
  unless the call says ``cast=True``: a float64 array never becomes float32 silently.
- An array-like of no namespace (a list, a tuple, a pandas ``Series`` or ``DataFrame``,
  anything with ``__array__`` or ``__dlpack__``) is converted into the model's namespace
  and device, as scikit-learn's estimators take array-likes. A list or tuple of Python
  numbers carries no dtype of its own: its floats are built in the model's dtype. An
  object with a dtype (pandas, a NumPy array given to a torch model through
  ``__array__``) keeps the same rule as an array: another float dtype needs ``cast=True``.
- An array of another Array API namespace (a NumPy array for a torch model) is refused,
  as everywhere in xrnn: no silent copy between libraries or devices.

Integer class indices (``y`` for ``loss="cross_entropy"``) stay integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj

from .._util.namespaces import convert
from .._util.typing import Array

__all__ = ["as_array", "batch_axis_hint", "short"]


def short(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a message stays short for any N.

    Parameters
    ----------
    value : object
        Anything.
    limit : int, default 120
        Most characters kept.

    Returns
    -------
    str
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def _is_floating(dtype: Any) -> bool:
    return "float" in str(dtype)


def as_array(
    name: str, a: Any, *, xp: ModuleType, dtype: Any, device: Any, cast: bool, integers: bool = False
) -> Array:
    """``a`` as an array of the model's namespace ``xp``, by the policy of this module.

    Parameters
    ----------
    name : str
        The argument's name, for messages (``"x"``, ``"y_val"``).
    a : array or array-like
        The value given, of any shape.
    xp : module
        The model's namespace.
    dtype : dtype
        The model's dtype (floating values end in it).
    device : device
        The model's device.
    cast : bool
        Whether a floating dtype other than ``dtype`` may be converted to it.
    integers : bool, default False
        Whether integer values are kept as they are (class indices); else they are
        refused unless ``cast`` (an input must be floating).

    Returns
    -------
    array
        ``a`` itself where nothing needs to change, else a new array of ``xp``.
    """
    if not isinstance(cast, bool):
        raise TypeError(f"cast must be True or False, got {cast!r}")
    if isinstance(a, (str, bytes)) or a is None or isinstance(a, (int, float, complex, bool)):
        raise TypeError(f"{name} must be an array or an array-like (list, pandas object), got {short(a)}")
    if is_array_api_obj(a):
        if array_namespace(a) is not xp:
            got = array_namespace(a).__name__.removeprefix("array_api_compat.")
            want = xp.__name__.removeprefix("array_api_compat.")
            raise TypeError(
                f"{name} must be an array of the model's namespace {want}, got an array of {got}: "
                f"convert it first (e.g. {want}.asarray or from_dlpack)"
            )
        out = a
    elif isinstance(a, Sequence):  # Python numbers: no dtype of their own
        out = _from_host(name, a)
        if _is_floating(out.dtype) or not integers:
            return convert(out, xp=xp, dtype=dtype, device=device)
        return convert(out, xp=xp, device=device)
    else:
        out = convert(_from_host(name, a), xp=xp, device=device)
    if xp.isdtype(out.dtype, "integral") and integers:
        return out
    if out.dtype != dtype:
        want = xp.empty((0,), dtype=dtype).dtype  # printed as out.dtype is
        if not cast:
            raise TypeError(
                f"{name} must have the model's dtype {want}, got {out.dtype}: convert it, or pass "
                f"cast=True to convert a copy (rounding, for float64 to float32)"
            )
        if not (xp.isdtype(out.dtype, "real floating") or xp.isdtype(out.dtype, "integral")):
            raise TypeError(f"{name} must hold real numbers, got {out.dtype}")
        out = xp.astype(out, dtype)
    return out


def _from_host(name: str, a: Any) -> Any:
    """A NumPy array of an array-like (list, pandas object, ``__array__``/``__dlpack__``)."""
    import numpy as np

    try:
        out = np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)
    except (TypeError, ValueError, RuntimeError, BufferError) as exc:
        raise TypeError(
            f"{name} must be an array or an array-like (list, pandas object), got {type(a).__name__} "
            f"({short(str(exc), 200)})"
        ) from exc
    if out.dtype == object or out.dtype.kind in "USV":
        raise TypeError(f"{name} must hold numbers, got {type(a).__name__} of dtype {out.dtype}")
    return out


def batch_axis_hint(x_shape: tuple[int, ...], batch_first: bool, count: int) -> str:
    """A sentence for a batch size ``count`` that matches ``x``'s other leading axis, else ``""``.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of ``x``, ``(T, N, I)`` or ``(N, T, I)``.
    batch_first : bool
        The model's layout.
    count : int
        The batch size another argument has (``len(lengths)``, ``y``'s leading axis).

    Returns
    -------
    str
        E.g. ``" (x is read as (T, N, I) because batch_first=False, so N=12 from its axis 1;
        its axis 0 has 40: is x batch-first?)"``.
    """
    if len(x_shape) != 3:
        return ""
    axis = 0 if batch_first else 1
    other = 1 - axis
    if count == x_shape[axis] or count != x_shape[other]:
        return ""
    layout = "(N, T, I)" if batch_first else "(T, N, I)"
    fix = "time-major (T, N, I)" if batch_first else "batch-first (N, T, I)"
    return (
        f" (x is read as {layout} because batch_first={batch_first}, so N={x_shape[axis]} from its "
        f"axis {axis}; its axis {other} has {count}: if x is {fix}, build the model with "
        f"batch_first={not batch_first})"
    )
