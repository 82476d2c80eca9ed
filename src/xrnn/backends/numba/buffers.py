"""Where the compiled loops' big arrays live: recycled buffers, and C-contiguous inputs.

Fresh memory costs a page fault per page, so the loops take one buffer per sequence
for their outputs and step caches (not one per step), and :class:`Recycler` hands
the same memory out again once nothing refers to it.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

from ..._util.typing import Array

__all__ = ["RECYCLER", "Recycler", "contiguous", "int64_lengths", "release"]


def contiguous(a: Array) -> Array:
    """``a`` as a C-contiguous array (a copy only when it is a strided view).

    The loops' own arrays are C-contiguous; states and caches may come from the caller
    (the classic API transposes them).
    """
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def int64_lengths(lengths: Array | None) -> Array:
    """Lengths as the loops take them: int64, no entries when every sequence is full."""
    return np.empty(0, np.int64) if lengths is None else np.ascontiguousarray(lengths, dtype=np.int64)


class Recycler:
    """Sequence buffers that are reused once nothing refers to them any more.

    The OS zeroes fresh memory page by page on first touch; for an LSTM training step at
    I=H=512 that zeroing took 13% of the time on the benchmark machine (``perf``, see
    docs/benchmarks.md), more than all the fused kernels together. A buffer handed out
    here is a view of a byte array kept in this list; when every view of it has been
    dropped (its reference count is back to the list's own), a later request of the same
    size reuses it. At most ``keep`` idle buffers stay; older idle ones are let go.
    :func:`release` lets go of all idle buffers.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.raw: list[Array] = []
        self.lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes == 0:
            return np.empty(shape, dtype)
        with self.lock:
            idle = [j for j in range(len(self.raw)) if sys.getrefcount(self.raw[j]) == _IDLE_REFS]
            fits = [j for j in idle if self.raw[j].nbytes == nbytes + _ALIGN]
            if fits:
                raw = self.raw.pop(fits[0])  # and back at the end: most recently used
            else:
                raw = np.empty(nbytes + _ALIGN, np.uint8)
                drop = set(idle[: max(0, len(idle) + 1 - self.keep)])  # the oldest idle ones
                self.raw = [r for j, r in enumerate(self.raw) if j not in drop]
            self.raw.append(raw)
        start = -raw.ctypes.data % _ALIGN  # aligned, so that JAX can take the buffer without a copy
        return raw[start : start + nbytes].view(dtype).reshape(shape)

    def release(self) -> None:
        """Let go of every idle buffer."""
        with self.lock:
            busy = [j for j in range(len(self.raw)) if sys.getrefcount(self.raw[j]) > _IDLE_REFS]
            self.raw = [self.raw[j] for j in busy]


_ALIGN = 64  # bytes: the alignment XLA asks of a CPU buffer it imports (DLPack) without copying
_IDLE_REFS = 2  # references to an idle buffer in ``getrefcount(self.raw[j])``: the list's and the argument
RECYCLER = Recycler(keep=8)


def release() -> None:
    """Free the idle sequence buffers that the fast path keeps for reuse."""
    RECYCLER.release()
