"""One thread policy for the command line and the Python API.

xrnn leaves the CPU thread pools of the matrix products as the process has them: BLAS's
own default (usually one thread per core, or ``OMP_NUM_THREADS``), in ``python -m xrnn``
and in a Python session alike; only a layer call on torch CPU tensors sets them, for its
own length (``TorchViews.running`` in :mod:`xrnn.backends.views`). The command line and
the API limit them the same way when asked: ``--threads N`` on the command line is
``with xrnn.cpu_threads(N):`` around the command. The matrices of small models are small,
and on a busy machine several threads mostly wait for each other: there one thread can be
faster per step (see the README's section on speed).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from .._util.validation import check_int

__all__ = ["cpu_threads"]


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Limit the BLAS and OpenMP thread pools, and torch's, inside a ``with`` block.

    Parameters
    ----------
    threads : int or None
        Threads of the matrix products, positive; None leaves the pools as they are.

    Yields
    ------
    None
        The pools are restored on leaving the block.

    Notes
    -----
    NumPy's BLAS (and the Numba loops, which call the same BLAS) is limited through
    threadpoolctl, when it is installed (the ``cli`` extra); without it the BLAS pool is
    left as it is. torch's intra-op pool is limited with ``torch.set_num_threads`` when
    torch has been imported.

    Examples
    --------
    >>> import xrnn
    >>> with xrnn.cpu_threads(1):
    ...     model = xrnn.SequenceModel("lstm", 1, 8, 1, seed=0)
    """
    if threads is None:
        yield
        return
    check_int("threads", threads)
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads))
        torch = sys.modules.get("torch")
        if torch is not None:
            stack.callback(torch.set_num_threads, torch.get_num_threads())
            torch.set_num_threads(threads)
        yield
