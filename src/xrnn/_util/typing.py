"""Type aliases shared by the modules of xrnn.

``Array`` stands for an array of any Array API namespace (NumPy, CuPy, torch, JAX,
array-api-strict): the standard defines no common base class to name instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Array", "State"]

Array = Any
State = tuple[Array, ...]
