"""A pause before each timed sample, so that every implementation starts from idle thread pools.

With more than one thread, OpenBLAS's idle workers keep spinning for about 0.1 s after each
call (``2**28`` cycles), and torch's OpenMP workers for a while after each parallel region;
whatever runs next shares the cores with them. On the 2-core machine, 2 threads, an LSTM
training step (T=100, N=64, I=H=256, float32) of ``torch.nn.LSTM`` took 229 ms timed right
after xrnn's and 136-150 ms after a pause, in the same process: without the pause an
alternating benchmark measures the order of its implementations. ``benchmarks/run.py``
pauses the same way (its ``PAUSE``).

The helpers the alternating benchmarks share live here too: :func:`alternate` (the rounds,
with each implementation checked first), :func:`shuffled_rounds` (a new order each round),
:func:`on_threads` and :func:`replace_tables` (a run's tables into their place in
``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
import random
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

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


def alternate(
    runs: Mapping[str, Callable[[], Any]], reference: Mapping[str, Any], rounds: int
) -> dict[str, dict[str, Any]]:
    """Time ``runs`` round by round, alternating, after checking each against ``reference``.

    Each run is called once first (compilation, warm-up) and its result, a mapping of
    arrays with the keys of ``reference`` (or None: nothing to check, a floor), compared:
    the largest of ``max|got - ref| / max|ref|`` over the keys (NaN for None). Then every
    round takes one :func:`sample` of each run, each sample at least 0.05 s of calls, the
    runs in a new order each round (:func:`shuffled_rounds`).

    Returns
    -------
    dict
        ``median_seconds``, ``all_seconds`` and ``agreement_max_rel_err``, each by run name.
    """
    import numpy as np

    agreement = {}
    for name, run in runs.items():
        got = run()
        agreement[name] = (
            float("nan")
            if got is None
            else max(
                float(np.max(np.abs(np.asarray(got[k]) - reference[k])) / np.max(np.abs(reference[k])))
                for k in reference
            )
        )
    repeat = {name: repeats(run) for name, run in runs.items()}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for order in shuffled_rounds(runs, rounds):
        for name in order:
            seconds[name].append(sample(runs[name], repeat[name]))
    return {
        "median_seconds": {name: statistics.median(s) for name, s in seconds.items()},
        "all_seconds": seconds,
        "agreement_max_rel_err": agreement,
    }


def shuffled_rounds(names: Iterable[str], rounds: int, seed: int = 0) -> Iterator[list[str]]:
    """The order of each of ``rounds`` rounds: ``names`` shuffled anew every round (seeded).

    In a fixed order each implementation always follows the same other and inherits what
    it leaves behind (threads still spinning, memory to fault in again): in one run on two
    threads xrnn's LSTM, always timed after torch's LayerNorm LSTM, took 0.1714 s against
    0.1584 s for the same LSTM with DropConnect, timed after IndRNN; shuffled, the two came
    within 1-4%.
    """
    order, shuffle = list(names), random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        yield list(order)


def on_threads(threads: int | None, run: Callable[[], T]) -> T:
    """``run()`` with NumPy's BLAS and torch on ``threads`` threads; None leaves them as they are.

    NumPy's BLAS is loaded by then: its threads are set through threadpoolctl.
    """
    if not threads:
        return run()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        return run()


def replace_tables(path: Path, section: str, markers: tuple[str, str], text: str) -> None:
    """Put ``text`` (which starts and ends with ``markers``) in ``path`` in place of its old tables.

    The old text between the same markers is replaced; without one, ``text`` goes at the end
    of the file, under ``section`` (a heading) where the file does not have it yet.
    """
    doc = path.read_text()
    start, end = markers
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text, doc)
    elif section in doc:  # another run's tables are there: these after them
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    else:
        doc = doc.rstrip("\n") + f"\n\n{section}\n\n" + text + "\n"
    path.write_text(doc)
