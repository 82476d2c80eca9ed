"""How the kernels are compiled: ``numba.njit``, cached on disk where numba can write.

Compiled code is cached on disk (``cache=True``), so a new process does not compile the
kernels again. Numba looks for a writable place next to the source (``__pycache__``),
then in the user's cache directory (``NUMBA_CACHE_DIR``, else ``~/.cache``); where it
finds none (a read-only install and home), it refuses ``cache=True`` outright. The
kernels are then compiled without the disk cache, in each process on first use: slower
to start, the same results, and nothing to warn about.

The first compilation in a process is said once, as one ``logging`` record (INFO, logger
``"xrnn.compile"``): it takes seconds to tens of seconds, and later processes load the
kernels from the disk cache instead. ``python -m xrnn`` prints that record as one line.

Numba tells a cached kernel is stale by its own source file only, while the kernels
inline the cells' scalar maths (:mod:`xrnn.cells`) and the activations of
:mod:`.activations`: the cache key of every kernel here also holds a hash of those
sources, so an edit there compiles the kernels again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import numba
from numba.core import event
from numba.core.caching import FunctionCache

__all__ = ["LOGGER", "inline", "jit"]

#: Where the first compilation of a process is said (see the module docstring).
LOGGER = logging.getLogger("xrnn.compile")

_OPTIONS = {"nogil": True, "error_model": "numpy"}


@functools.cache
def _sources_hash() -> str:
    """A hash of the sources that the kernels inline: the cells and the activations."""
    here = pathlib.Path(__file__).parent
    files = [here / "activations.py", *sorted((here.parents[1] / "cells").glob("*.py"))]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _key_on_sources(dispatcher: Any) -> None:
    """Add :func:`_sources_hash` to the disk-cache key of ``dispatcher`` (made with ``cache=True``)."""
    cache = getattr(dispatcher, "_cache", None)
    if not isinstance(cache, FunctionCache):  # another numba's internals: numba's own key stays
        return

    class DependentCache(FunctionCache):  # type: ignore[misc]
        def _index_key(self, sig: Any, codegen: Any) -> Any:
            return (*super()._index_key(sig, codegen), _sources_hash())

    dispatcher._cache = DependentCache(dispatcher.py_func)


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
        dispatcher = numba.njit(cache=True, **_OPTIONS)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available": nowhere to write
        return numba.njit(cache=False, **_OPTIONS)(function)
    _key_on_sources(dispatcher)
    return dispatcher


def inline(function: Callable[..., Any]) -> Any:
    """``function`` for the kernels to inline into their loops (Numba IR, ``inline="always"``).

    A cell's scalar step called from a kernel's loop must be inlined, or the loop is not
    vectorised (10x slower); left to LLVM, a step with several results is not.

    Parameters
    ----------
    function : callable
        Python function in Numba's nopython subset (a cell's scalar step).

    Returns
    -------
    numba dispatcher
    """
    return numba.njit(inline="always", **_OPTIONS)(function)


class _FirstCompilation(event.Listener):  # type: ignore[misc]
    """Say, once per process, that xrnn's kernels are being compiled, and where they are cached."""

    said = False

    def on_start(self, ev: Any) -> None:
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if self.said or not module.startswith("xrnn."):
            return
        type(self).said = True
        path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        later = (
            f"later runs load them from the cache in {path}"
            if path
            else "no cache can be written here, so each new process compiles them again"
        )
        LOGGER.info("compiling the kernels for this machine (once, seconds to a minute); %s", later)

    def on_end(self, ev: Any) -> None:
        pass


event.register("numba:compile", _FirstCompilation())
