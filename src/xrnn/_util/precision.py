"""Dtypes that hold: float64 where a namespace can give it, a clear error where it cannot.

JAX computes in float32 unless its ``jax_enable_x64`` flag is set: with the flag off
(JAX's default), ``jnp.zeros(3, dtype=jnp.float64)`` is float32 with a warning. xrnn does
not set the flag for the user: it is one switch for the whole process, read when JAX
arrays are made, that changes the default dtype of every JAX computation of the program,
xrnn's or not. A library that turned it on would change the user's other code behind
their back (and could not turn it back without breaking arrays already made). So asking
for float64 on JAX with the flag off is an error that says how to turn it on.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from array_api_compat import is_jax_namespace

__all__ = ["check_float64"]

HOW = (
    "enable it before making any JAX array with jax.config.update('jax_enable_x64', True) "
    "or the environment variable JAX_ENABLE_X64=1, or ask for dtype='float32'"
)


def check_float64(dtype: Any, xp: ModuleType, what: str = "dtype") -> None:
    """Refuse float64 in a namespace that would silently give float32 (JAX with x64 off).

    Parameters
    ----------
    dtype : dtype
        A dtype of ``xp`` (already resolved).
    xp : module
        The namespace.
    what : str, default "dtype"
        What asked for it, for the message.

    Raises
    ------
    ValueError
        If ``dtype`` is float64 and ``xp`` is JAX with ``jax_enable_x64`` off.
    """
    if not is_jax_namespace(xp) or dtype != xp.float64:
        return
    if xp.zeros(0).dtype != xp.float64:  # JAX's default float is float64 exactly when x64 is on
        raise ValueError(
            f"{what} float64 was asked for on JAX, but JAX's 64-bit mode (jax_enable_x64) is off, "
            f"so its arrays would be float32: {HOW}"
        )
