"""Checkpoints: a model's or layer's parameters, configuration and optimiser state in one ``.npz`` file.

A checkpoint holds any of :class:`SequenceModel`, :class:`RNN`, :class:`LSTM`,
:class:`GRU` and :class:`Dense`, and loading it rebuilds that class with the same
configuration (every constructor option: sizes, layers, directions, layout, head, and
the layer's further options).

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) that never holds a
pickle, so loading it runs no code:

============================  ==================================================================
member                        content
============================  ==================================================================
``header``                    UTF-8 JSON as ``uint8``: format tag, version, the model's class and
                              configuration, dtype, optimiser name, hyperparameters and step,
                              user metadata, and the name, shape and dtype of every array below
``param/<key>``               each parameter of the model's ``params``
``optim/<name>``              each array of the optimiser's state (``m.<key>``, ``v.<key>``, ...)
============================  ==================================================================

Writing is atomic: the archive goes to a temporary file ``.<name>.<16 hex digits>.tmp``
in the same directory, is flushed to disk, and replaces the target with
:func:`os.replace`; a crash, an exception or SIGTERM mid-write leaves the previous file
as it was and removes the temporary one. Replacing a file keeps its permission bits, and
a file the user may not write is not replaced.

Loading refuses a hostile file cheaply, before inflating or building anything large:
the archive may inflate to at most 64 MiB or 16 times the file's size, whichever is
more; each member's ``.npy`` header must agree with its zip entry on its size; the
header is UTF-8 JSON of valid Unicode, nested less deeply than Python's recursion
limit, with integers of at most 100 digits; and the model's sizes in the header must be
those of its arrays. Version 1 files (a :class:`SequenceModel` of the five sizes
``cell``, ``input_size``, ``hidden_size``, ``output_size``, ``num_layers``) load as
before; in version 2 an option a file does not record takes its default. Every problem
is a :class:`CheckpointError` (a ``ValueError``) that says what it is.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .._util.namespaces import convert, resolve_dtype, resolve_namespace, to_host
from .._util.precision import check_float64
from ..nn.model import SequenceModel
from ..nn.model_base import layer_class
from ..nn.options import config_of, options
from ..training.optim import OPTIMIZERS
from ..training.state_checks import state_problem
from .atomic_write import write_atomically
from .checks import CLASSES, FORMAT, VERSION, check_file, option_types_of, saved_class
from .npz_reader import HEADER, CheckpointError, read_npz
from .save_checks import check_before_saving, dtype_name, plain_config

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns.

    Parameters
    ----------
    model : SequenceModel, RNN, LSTM, GRU or Dense
        The model (of the saved class and configuration) with the saved parameters.
    optimizer : SGD, Adam or None
        The optimiser with its saved state, if one was saved.
    metadata : dict
        The JSON metadata given to :func:`save_checkpoint` (empty if none).
    """

    model: Any
    optimizer: Any
    metadata: dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    optimizer: Any = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` (and ``optimizer``) to ``path`` atomically.

    Parameters
    ----------
    path : str or path
        Target file, conventionally ``*.npz``; its directory must exist. An existing
        file is replaced only once the new one is completely written, and the new one
        has its permission bits (read, write and execute for owner, group and others).
    model : SequenceModel, RNN, LSTM, GRU or Dense
        The model or layer; its arrays (any namespace, any device) are copied to the
        host, its class and configuration recorded.
    optimizer : SGD or Adam, optional
        An optimiser whose state (step and moment arrays) is saved too.
    metadata : dict, optional
        JSON-serialisable data kept beside the model (e.g. a vocabulary).

    Raises
    ------
    CheckpointError
        If ``path`` is a directory or a symbolic link (nothing is written).
    FileNotFoundError
        If the directory of ``path`` does not exist.
    PermissionError
        If ``path`` exists and this user may not write it (nothing is written; a
        writable directory would let it be replaced, so this is checked).

    Notes
    -----
    The archive is written to ``.<name>.<16 hex digits>.tmp`` beside ``path``, which is
    removed when the write fails or is interrupted (an exception, Ctrl-C). SIGTERM,
    whose default action ends the process without any cleanup, is handled too while
    the file is written, when it is called from the main thread and SIGTERM has its
    default action: the temporary file is removed, then the process ends by SIGTERM
    as it would have. A SIGTERM handler of your own (or SIG_IGN) is left in place and
    runs as usual; an exception it raises also removes the file. The temporary file is
    left behind only by SIGKILL, a crash of the interpreter or the machine, or SIGTERM
    with its default action while the save runs in another thread; any
    ``.<name>.*.tmp`` beside a checkpoint is such a leftover and can be deleted.
    Ownership, ACLs and extended attributes of a replaced file are not carried over:
    the new file belongs to the user who saved it.
    """
    name = _class_name(model)
    if optimizer is not None and type(optimizer) not in OPTIMIZERS.values():
        raise TypeError(f"optimizer must be an xrnn SGD or Adam, got {type(optimizer).__name__}")
    arrays = {f"param/{k}": to_host(v) for k, v in model.params.items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"class": name, **plain_config(_config(model))},
        "dtype": dtype_name(arrays),
        "optimizer": None,
        "metadata": dict(metadata or {}),
    }
    if optimizer is not None:
        arrays |= {f"optim/{k}": to_host(v) for k, v in optimizer.state_arrays().items()}
        header["optimizer"] = {
            "name": optimizer.name,
            "hyperparameters": optimizer.hyperparameters(),
            "step": optimizer.state["step"],
        }
    header["arrays"] = {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}
    check_before_saving(pathlib.Path(path), header, arrays, model, optimizer)  # what is written loads
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable, got {metadata!r} ({exc})") from None
    arrays[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_atomically(pathlib.Path(path), arrays)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Any = None,
    xp: str | ModuleType | None = None,
    device: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path
        The file.
    model : SequenceModel, RNN, LSTM, GRU or Dense, optional
        A model to load into: its class and configuration must equal the file's, and
        the values are converted to its namespace, dtype and device. Without it a model
        of the saved class is built from the file's configuration.
    xp : str or module, optional
        Namespace of a built model (default: ``XRNN_BACKEND``); values saved from any
        backend load onto any other.
    device : device, optional
        Device of a built model.

    Returns
    -------
    Checkpoint
        ``(model, optimizer, metadata)``; ``optimizer`` is None if none was saved.

    Raises
    ------
    CheckpointError
        If the file is truncated, is not an xrnn checkpoint, is of a newer version, does
        not match ``model``, or holds arrays of other names, shapes or dtypes than its
        configuration implies; if it would inflate to more than 64 MiB or 16 times its
        size, whichever is more, or its header is not UTF-8 JSON of valid Unicode within
        the limits of the module's docstring; or if ``path`` is a directory or a
        symbolic link.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = pathlib.Path(path)
    header, arrays = read_npz(path, functools.partial(check_file, path))
    name, config = saved_class(header)
    if model is None:
        target = resolve_namespace(xp)
        check_float64(
            getattr(target, header["dtype"]), target, f"{path} holds {header['dtype']} arrays: dtype"
        )
        place = {"dtype": resolve_dtype(header["dtype"], target), "device": device, "xp": target}
        try:
            model = CLASSES[name](**config, **place)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: model configuration is not valid: {exc}") from None
    else:
        _check_target(path, model, name, config)
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    expected = {k: tuple(v.shape) for k, v in model.params.items()}
    if set(params) != set(expected):
        raise CheckpointError(
            f"{path} has parameters {sorted(params)} but a {name} with this configuration "
            f"has {sorted(expected)}"
        )
    for key, shape in expected.items():
        if params[key].shape != shape:
            raise CheckpointError(
                f"{path}: parameter {key!r} has shape {params[key].shape}, expected {shape} for the "
                f"configuration {config}"
            )
    like = next(iter(model.params.values()))
    place = {"xp": array_namespace(like), "dtype": like.dtype, "device": device_of(like)}
    values = {k: convert(v, **place) for k, v in params.items()}
    if isinstance(model, SequenceModel):
        model.set_params(values)
    else:
        model.params = {k: values[k] for k in model.params}
    optimizer = None
    if header["optimizer"] is not None:
        optimizer = _build_optimizer(path, header["optimizer"], arrays, expected, place, model.params)
    return Checkpoint(model, optimizer, header["metadata"])


def _class_name(model: Any) -> str:
    """The name under which ``model``'s class is saved (its exact class: a subclass is refused)."""
    for name, cls in CLASSES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"model must be a SequenceModel, RNN, LSTM, GRU or Dense, got {type(model).__name__}")


def _config(model: Any) -> dict[str, Any]:
    return model.config if isinstance(model, SequenceModel) else config_of(model)


def _check_target(path: pathlib.Path, model: Any, name: str, config: dict[str, Any]) -> None:
    """``model`` is of the saved class, and of its configuration (options not saved: defaults)."""
    try:
        mine = _class_name(model)
    except TypeError:
        raise TypeError(
            f"model must be a SequenceModel, RNN, LSTM, GRU or Dense, got {type(model).__name__}"
        ) from None
    if mine != name:
        raise CheckpointError(f"{path} holds a {name}, not a {mine} like the model given")
    cls = layer_class(config["cell"])[1] if name == "SequenceModel" else CLASSES[name]
    defaults = {k: p.default for k, p in options(cls).items()}
    saved = {k: v for k, v in defaults.items() if k in option_types_of(name, config)} | config
    want = _config(model)
    differ = {k: (saved.get(k), v) for k, v in want.items() if saved.get(k) != v}
    if differ:
        raise CheckpointError(
            f"{path} holds another model: "
            + ", ".join(
                f"{k} is {old!r} in the file but {new!r} in the model" for k, (old, new) in differ.items()
            )
        )


def _build_optimizer(
    path: pathlib.Path,
    entry: dict[str, Any],
    arrays: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    place: dict[str, Any],
    params: dict[str, Any],
) -> Any:
    try:
        optimizer = OPTIMIZERS[entry["name"]](**entry["hyperparameters"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: optimizer hyperparameters are not valid: {exc}") from None
    state = {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")}
    for name, a in state.items():
        key = name.partition(".")[2]
        if key not in shapes or a.shape != shapes[key]:
            raise CheckpointError(
                f"{path}: optimizer state {name!r} of shape {a.shape} matches no parameter of the model"
            )
    try:
        optimizer.load_state(entry["step"], {k: convert(v, **place) for k, v in state.items()})
    except ValueError as exc:
        raise CheckpointError(f"{path}: optimizer state is not valid: {exc}") from None
    problem = state_problem(optimizer, params)
    if problem is not None:
        raise CheckpointError(f"{path}: optimizer state is not valid: {problem}")
    return optimizer
