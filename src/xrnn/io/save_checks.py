"""Save only what loads: the checks of ``save_checkpoint``, made before any file is touched.

A checkpoint is checked on the way out with the checks :func:`~xrnn.io.checkpoint.load_checkpoint`
makes on the way in (:func:`~xrnn.io.checks.check_file`: header, configuration, the list of
arrays, the sizes), and the optimiser's state against the model's parameters
(:func:`~xrnn.training.state_checks.state_problem`), so a file that is written is a file
that loads. NumPy scalars in a configuration are written as plain JSON numbers.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from ..nn.options import plain
from ..training.state_checks import state_problem
from .checks import check_file
from .npz_reader import CheckpointError

__all__ = ["check_before_saving", "dtype_name", "plain_config"]


def dtype_name(arrays: dict[str, np.ndarray]) -> str:
    """The dtype a checkpoint records: that of its first parameter (every array must have it)."""
    return str(next(iter(arrays.values())).dtype)


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with NumPy integers and floats as Python's, refused if not JSON then.

    Parameters
    ----------
    config : dict
        A model's configuration.

    Returns
    -------
    dict
    """
    out = {k: plain(v) for k, v in config.items()}
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model configuration must be JSON-serialisable, got {config!r} ({exc})") from None
    return out


def check_before_saving(
    path: pathlib.Path, header: dict[str, Any], arrays: dict[str, np.ndarray], model: Any, optimizer: Any
) -> None:
    """Refuse a checkpoint that :func:`~xrnn.io.checkpoint.load_checkpoint` would refuse.

    Parameters
    ----------
    path : pathlib.Path
        The target, for messages.
    header : dict
        The header to write.
    arrays : dict of str to numpy.ndarray
        The arrays to write (``param/<key>``, ``optim/<name>``), shapes as the model's.
    model : SequenceModel, RNN, LSTM, GRU or Dense
        The model saved.
    optimizer : SGD, Adam or None
        The optimiser saved.

    Raises
    ------
    CheckpointError
        Naming what would not load (nothing has been written).
    """
    if optimizer is not None:
        problem = state_problem(optimizer, model.params)
        if problem is not None:
            raise CheckpointError(f"cannot save {path}: the optimizer does not fit this model: {problem}")
    declared = {name: (tuple(a.shape), a.dtype) for name, a in arrays.items()}
    try:
        check_file(path, header, declared)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot save a checkpoint that would not load: {exc}") from None
