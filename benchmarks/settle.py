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

import time

#: Seconds to wait before each timed sample: over twice the spin of OpenBLAS's workers.
PAUSE_SECONDS = 0.25


def settle() -> None:
    """Wait until the thread pools of whatever ran before have gone idle."""
    time.sleep(PAUSE_SECONDS)
