"""Checkpoints: a model's parameters, configuration and optimiser state in one ``.npz`` file.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) that never holds a
pickle, so loading it runs no code:

============================  ==================================================================
member                        content
============================  ==================================================================
``header``                    UTF-8 JSON as ``uint8``: format tag, version, model configuration,
                              dtype, optimiser name, hyperparameters and step, user metadata,
                              and the name, shape and dtype of every array below
``param/<key>``               each parameter of :attr:`SequenceModel.params`
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
those of its arrays. Every problem is a :class:`CheckpointError` (a ``ValueError``)
that says what it is.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from ._atomic_write import to_host, write_atomically
from ._backend import convert, resolve_dtype, resolve_namespace
from ._npz_reader import HEADER, CheckpointError, read_npz
from .model import LAYERS, SequenceModel
from .optim import OPTIMIZERS

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

#: Format tag in every header.
FORMAT = "xrnn-checkpoint"
#: Version written; files of a higher version are refused.
VERSION = 1

_CONFIG_KEYS = {"cell": str, "input_size": int, "hidden_size": int, "output_size": int, "num_layers": int}


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns.

    Parameters
    ----------
    model : SequenceModel
        The model with the saved parameters.
    optimizer : SGD, Adam or None
        The optimiser with its saved state, if one was saved.
    metadata : dict
        The JSON metadata given to :func:`save_checkpoint` (empty if none).
    """

    model: SequenceModel
    optimizer: Any
    metadata: dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike[str],
    model: SequenceModel,
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
    model : SequenceModel
        The model; its arrays (any namespace, any device) are copied to the host.
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
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    if optimizer is not None and type(optimizer) not in OPTIMIZERS.values():
        raise TypeError(f"optimizer must be an xrnn SGD or Adam, got {type(optimizer).__name__}")
    arrays = {f"param/{k}": to_host(v) for k, v in model.params.items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config,
        "dtype": str(arrays["param/head.weight"].dtype),
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
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable, got {metadata!r} ({exc})") from None
    arrays[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_atomically(pathlib.Path(path), arrays)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: SequenceModel | None = None,
    xp: str | ModuleType | None = None,
    device: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path
        The file.
    model : SequenceModel, optional
        A model to load into: its configuration must equal the file's, and the values
        are converted to its namespace, dtype and device. Without it a model is built
        from the file's configuration.
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
    header, arrays = read_npz(path, functools.partial(_check_file, path))
    config = header["model"]
    if model is None:
        target = resolve_namespace(xp)
        model = SequenceModel(
            **config, dtype=resolve_dtype(header["dtype"], target), device=device, xp=target
        )
    elif not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    elif model.config != config:
        differ = {k: (config[k], v) for k, v in model.config.items() if config[k] != v}
        raise CheckpointError(
            f"{path} holds another model: "
            + ", ".join(
                f"{k} is {saved!r} in the file but {want!r} in the model"
                for k, (saved, want) in differ.items()
            )
        )
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    expected = model.param_shapes()
    if set(params) != set(expected):
        raise CheckpointError(
            f"{path} has parameters {sorted(params)} but a {config['cell']} model with this configuration "
            f"has {sorted(expected)}"
        )
    for key, shape in expected.items():
        if params[key].shape != shape:
            raise CheckpointError(
                f"{path}: parameter {key!r} has shape {params[key].shape}, expected {shape} for the "
                f"configuration {config}"
            )
    place = {"xp": model.xp, "dtype": model.dtype, "device": model.device}
    model.set_params({k: convert(v, **place) for k, v in params.items()})
    optimizer = None
    if header["optimizer"] is not None:
        optimizer = _build_optimizer(path, header["optimizer"], arrays, expected, place)
    return Checkpoint(model, optimizer, header["metadata"])


def _check_file(
    path: pathlib.Path, header: Any, declared: dict[str, tuple[tuple[int, ...], np.dtype[Any]]]
) -> dict[str, Any]:
    """The header, checked; then its list of arrays and its model's sizes against ``declared``."""
    header = _check_header(path, header)
    _check_manifest(path, header, declared)
    _check_sizes(path, header["model"], {name: shape for name, (shape, _) in declared.items()})
    return header


def _check_header(path: pathlib.Path, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an xrnn checkpoint: format tag is not {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {version!r}; this xrnn reads versions 1..{VERSION}"
        )
    required = {"model": dict, "dtype": str, "metadata": dict, "arrays": dict}
    for key, kind in required.items():
        if not isinstance(header.get(key), kind):
            raise CheckpointError(
                f"{path}: header entry {key!r} must be a {kind.__name__}, got {header.get(key)!r}"
            )
    config = header["model"]
    if set(config) != set(_CONFIG_KEYS) or any(
        not isinstance(config[k], kind) or isinstance(config[k], bool) for k, kind in _CONFIG_KEYS.items()
    ):
        raise CheckpointError(
            f"{path}: model configuration must have {', '.join(_CONFIG_KEYS)} of types "
            f"{', '.join(t.__name__ for t in _CONFIG_KEYS.values())}, got {config!r}"
        )
    if config["cell"] not in LAYERS or min(config[k] for k in _CONFIG_KEYS if k != "cell") < 1:
        raise CheckpointError(f"{path}: model configuration is not valid: {config!r}")
    if header["dtype"] not in ("float32", "float64"):
        raise CheckpointError(f"{path}: dtype must be float32 or float64, got {header['dtype']!r}")
    optimizer = header.get("optimizer")
    if optimizer is not None and not (
        isinstance(optimizer, dict)
        and optimizer.get("name") in OPTIMIZERS
        and isinstance(optimizer.get("hyperparameters"), dict)
        and isinstance(optimizer.get("step"), int)
        and optimizer["step"] >= 0
    ):
        raise CheckpointError(f"{path}: optimizer entry is not valid: {optimizer!r}")
    return header


def _check_manifest(
    path: pathlib.Path, header: dict[str, Any], declared: dict[str, tuple[tuple[int, ...], np.dtype[Any]]]
) -> None:
    """The archive holds exactly the arrays the header lists, of those shapes and dtypes."""
    listed = header["arrays"]
    if set(listed) != set(declared):
        missing, extra = sorted(set(listed) - set(declared)), sorted(set(declared) - set(listed))
        raise CheckpointError(
            f"{path}: arrays do not match its header; missing {missing}, unexpected {extra}"
        )
    for name, (shape, dtype) in declared.items():
        entry = listed[name]
        if (
            not isinstance(entry, dict)
            or entry.get("shape") != list(shape)
            or entry.get("dtype") != str(dtype)
        ):
            raise CheckpointError(
                f"{path}: array {name!r} has shape {shape} and dtype {dtype}, but the header says {entry!r}"
            )
        if dtype != np.dtype(header["dtype"]):
            raise CheckpointError(f"{path}: array {name!r} has dtype {dtype}, expected {header['dtype']}")


def _check_sizes(path: pathlib.Path, config: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    """The configuration's sizes are those of the arrays, so the model built from it is no larger.

    Read from ``rnn.weight_ih_l0`` ``(G*hidden_size, input_size)``, ``rnn.weight_hh_l0``
    ``(G*hidden_size, hidden_size)``, ``head.weight`` ``(output_size, hidden_size)`` and
    the number of ``rnn.weight_hh_l<k>``; every shape is checked against the built model.
    """
    found: dict[str, tuple[int, ...]] = {}
    for key in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
        found[key] = shapes.get(f"param/{key}", ())
        if len(found[key]) != 2:
            raise CheckpointError(
                f"{path}: parameter {key!r} must be a 2-d array, got shape {found[key] or None}"
            )
    layers = sum(1 for name in shapes if re.fullmatch(r"param/rnn\.weight_hh_l\d+", name))
    sizes = {
        "input_size": ("rnn.weight_ih_l0", 1),
        "hidden_size": ("rnn.weight_hh_l0", 1),
        "output_size": ("head.weight", 0),
    }
    for size, (key, axis) in sizes.items():
        if config[size] != found[key][axis]:
            raise CheckpointError(
                f"{path}: the header says {size} {config[size]} but its arrays have {size} "
                f"{found[key][axis]} ({key!r} has shape {found[key]})"
            )
    if config["num_layers"] != layers:
        raise CheckpointError(
            f"{path}: the header says num_layers {config['num_layers']} but its arrays have num_layers "
            f"{layers} (arrays 'rnn.weight_hh_l<k>')"
        )


def _build_optimizer(
    path: pathlib.Path,
    entry: dict[str, Any],
    arrays: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    place: dict[str, Any],
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
    return optimizer
