"""What the ranks of :func:`xrnn.distributed.train` must share beyond the model, and what each owns.

- :func:`task_facts`: the task's class, its numeric options and the shapes and dtypes of
  a batch drawn from a copy of the shared batch generator (so the global batch size and
  the sequence length), compared across the ranks by the same check as the model's
  (:func:`~xrnn.distributed._mpi.check_agreement`) before the first step.
- :func:`dropout_generator`: each rank's dropout masks come from its own generator,
  ``numpy.random.default_rng([base, rank])``, with ``base`` drawn from a copy of the
  shared batch generator: the ranks draw different masks for their different sequences
  (as one process does for the rows of one batch), the run is reproducible from its
  ``seed``, and the parameters stay identical on every rank.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

__all__ = ["dropout_generator", "task_facts"]


def task_facts(task: Any, rng: Any, own_batches: bool) -> dict[str, Any]:
    """What every rank's task must agree on.

    Parameters
    ----------
    task : AddingTask, ReberTask, TextTask or alike
        The task.
    rng : numpy.random.Generator
        The batch generator, the same on every rank (after the broadcast); not advanced.
    own_batches : bool
        True when each rank gives its own batches (then no batch is drawn).

    Returns
    -------
    dict
        ``class``, the task's public numeric options, and (without own batches) the
        shape and dtype of every item of a batch.
    """
    facts: dict[str, Any] = {"class": type(task).__name__}
    for name, value in sorted(vars(task).items()) if hasattr(task, "__dict__") else ():
        if not name.startswith("_") and isinstance(value, numbers.Number):
            facts[name] = value
    if not own_batches and callable(getattr(task, "batch", None)):
        batch = task.batch(copy.deepcopy(rng))
        facts["batch"] = [(tuple(a.shape), str(a.dtype)) for a in batch if hasattr(a, "shape")]
    return facts


def dropout_generator(rng: Any, rank: int) -> Any:
    """Rank ``rank``'s dropout generator, derived from the shared batch generator and the rank.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator, the same on every rank; not advanced.
    rank : int
        This process's rank.

    Returns
    -------
    numpy.random.Generator
        ``numpy.random.default_rng([base, rank])``, ``base`` the first 63-bit integer of a
        copy of ``rng``.
    """
    import numpy as np

    base = int(copy.deepcopy(rng).integers(2**63))
    return np.random.default_rng([base, rank])
