"""How the kernels are compiled: ``numba.njit``, cached on disk where numba can write.

Compiled code is cached on disk (``cache=True``), so a new process does not compile the
kernels again. Numba looks for a writable place next to the source (``__pycache__``),
then in the user's cache directory (``NUMBA_CACHE_DIR``, else ``~/.cache``); where it
finds none (a read-only install and home), it refuses ``cache=True`` outright. The
kernels are then compiled without the disk cache, in each process on first use: slower
to start, the same results, and nothing to warn about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

__all__ = ["jit"]

_OPTIONS = {"nogil": True, "error_model": "numpy"}


def jit(function: Callable[..., Any]) -> Any:
    """``function`` compiled by ``numba.njit``, cached on disk where a cache can be written.

    Parameters
    ----------
    function : callable
        Python function in Numba's nopython subset.

    Returns
    -------
    numba dispatcher
        Compiled on first call, for the argument types of that call.
    """
    try:
        return numba.njit(cache=True, **_OPTIONS)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available": nowhere to write
        return numba.njit(cache=False, **_OPTIONS)(function)
