"""What a model holds is its own: arrays of its namespace, dtype and device, outside any autograd graph.

:func:`owned` is the one check of an array given to replace a parameter (``set_params``,
loading a state): an array of another namespace, dtype or device is refused with a
message naming its key, what was expected and what came, and a torch tensor that
requires a gradient is detached (an optimiser would otherwise chain the graph of every
update to the next, and memory would grow without bound).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj, is_torch_array
from array_api_compat import device as device_of

from .._util.namespaces import is_traced
from .._util.typing import Array

__all__ = ["owned"]


def owned(name: str, value: Any, *, xp: ModuleType, dtype: Any, device: Any) -> Array:
    """``value`` checked to be an array of ``xp``, ``dtype`` and ``device``, detached from autograd.

    Parameters
    ----------
    name : str
        The argument and key, for messages (e.g. ``"params['head.bias']"``).
    value : array
        The array given, any shape.
    xp : module
        The model's namespace.
    dtype : dtype
        The model's dtype.
    device : device
        The model's device.

    Returns
    -------
    array
        ``value`` itself, or ``value.detach()`` for a torch tensor that requires a gradient.

    Raises
    ------
    TypeError
        If ``value`` is not an array of ``xp``, or not of ``dtype``.
    ValueError
        If it sits on another device.
    """
    if not is_array_api_obj(value) or isinstance(value, (int, float, complex, bool)):
        raise TypeError(f"{name} must be an array of the model's namespace, got {type(value).__name__}")
    space = array_namespace(value)
    if space is not xp:
        raise TypeError(
            f"{name} must be an array of the model's namespace {_label(xp)}, got one of {_label(space)} "
            "(convert it first, e.g. with xrnn's from_state_dict or the array library's asarray)"
        )
    if value.dtype != dtype:
        raise TypeError(f"{name} must have the model's dtype {_name(dtype)}, got {_name(value.dtype)}")
    if not is_traced(value) and device is not None and device_of(value) != device:
        raise ValueError(f"{name} must sit on the model's device {device}, got {device_of(value)}")
    if is_torch_array(value) and value.requires_grad:
        value = value.detach()  # never an autograd graph in a parameter
    return value


def _label(xp: ModuleType) -> str:
    return xp.__name__.removeprefix("array_api_compat.")


def _name(dtype: Any) -> str:
    return str(getattr(dtype, "__name__", dtype)).removeprefix("torch.")
