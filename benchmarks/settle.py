"""A pause before each timed sample, so that every implementation starts from idle thread pools.

With more than one thread, OpenBLAS's idle workers keep spinning for about 0.1 s after each
call (``2**28`` cycles), and torch's OpenMP workers for a while after each parallel region;
whatever runs next shares the cores with them. On the 2-core machine, 2 threads, an LSTM
training step (T=100, N=64, I=H=256, float32) of ``torch.nn.LSTM`` took 229 ms timed right
after xrnn's and 136-150 ms after a pause, in the same process: without the pause an
alternating benchmark measures the order of its implementations. ``benchmarks/run.py``
pauses the same way (its ``PAUSE``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: Seconds to wait before each timed sample: over twice the spin of OpenBLAS's workers.
PAUSE_SECONDS = 0.25


def settle() -> None:
    """Wait until the thread pools of whatever ran before have gone idle."""
    time.sleep(PAUSE_SECONDS)


def repeats(run: Callable[[], object], min_sample: float = 0.05) -> int:
    """Calls of ``run`` per sample, so that a sample lasts at least ``min_sample`` seconds.

    After the pause the first call is slower (cold caches, the pools' threads waking): a
    sample of a few short calls weighs it little.
    """
    start = time.perf_counter()
    run()
    return max(1, math.ceil(min_sample / max(time.perf_counter() - start, 1e-9)))


def sample(run: Callable[[], object], repeat: int) -> float:
    """Seconds per call of ``run``, over ``repeat`` calls after :func:`settle`."""
    settle()
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - start) / repeat
