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

Writing is atomic: the archive goes to a temporary file in the same directory, is
flushed to disk, and replaces the target with :func:`os.replace`; a crash mid-write
leaves the previous file as it was. Loading checks everything against the header and
the configuration and raises :class:`CheckpointError` (a ``ValueError``) with the reason.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import zipfile
import zlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import is_array_api_obj

from ._backend import convert, resolve_dtype, resolve_namespace
from .model import LAYERS, SequenceModel
from .optim import OPTIMIZERS

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

#: Format tag in every header.
FORMAT = "xrnn-checkpoint"
#: Version written; files of a higher version are refused.
VERSION = 1

_HEADER = "header"
_CONFIG_KEYS = {"cell": str, "input_size": int, "hidden_size": int, "output_size": int, "num_layers": int}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, malformed, or not what was expected."""


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
        file is replaced only once the new one is completely written.
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
    """
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    if optimizer is not None and type(optimizer) not in OPTIMIZERS.values():
        raise TypeError(f"optimizer must be an xrnn SGD or Adam, got {type(optimizer).__name__}")
    arrays = {f"param/{k}": _to_host(v) for k, v in model.params.items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config,
        "dtype": str(arrays["param/head.weight"].dtype),
        "optimizer": None,
        "metadata": dict(metadata or {}),
    }
    if optimizer is not None:
        arrays |= {f"optim/{k}": _to_host(v) for k, v in optimizer.state_arrays().items()}
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
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_atomically(pathlib.Path(path), arrays)


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
        configuration implies; or if ``path`` is a directory or a symbolic link.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = pathlib.Path(path)
    arrays = _read(path)
    header = _parse_header(path, arrays.pop(_HEADER, None))
    _check_manifest(path, header, arrays)
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


# --------------------------------------------------------------------------------- writing


def _to_host(a: Any) -> np.ndarray:
    if not is_array_api_obj(a):
        raise TypeError(f"expected an array, got {type(a).__name__}")
    if hasattr(a, "get"):  # CuPy
        return np.asarray(a.get())
    if hasattr(a, "detach"):  # torch
        return a.detach().cpu().numpy()
    try:
        return np.from_dlpack(a).copy()
    except (TypeError, RuntimeError, BufferError):
        return np.asarray(a)


def _write_atomically(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file beside ``path``, then :func:`os.replace` it."""
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {str(directory)!r} of the checkpoint does not exist")
    _refuse_links_and_folders(path)
    # A new name in the same directory (so os.replace is atomic), created exclusively with
    # the usual mode of a new file (0o666 less the umask).
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # NumPy's stub reads **kwds as allow_pickle
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------- reading


def _refuse_links_and_folders(path: pathlib.Path) -> None:
    """A checkpoint is a regular file: a symbolic link or a directory in its place is an error."""
    if path.is_symlink():
        raise CheckpointError(
            f"{path} is a symbolic link; a checkpoint must be a regular file (give the link's target)"
        )
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; a checkpoint must be a regular file")


def _read(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every member of the archive, read eagerly so that a damaged file fails here."""
    _refuse_links_and_folders(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        with open(path, "rb") as file:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path} is a single .npy array, not an xrnn checkpoint (.npz)")
            with archive:
                return {name: archive[name] for name in archive.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path} is not a readable xrnn checkpoint (truncated, or not an .npz archive): {exc}"
        ) from None


def _parse_header(path: pathlib.Path, raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None:
        raise CheckpointError(f"{path} is not an xrnn checkpoint: it has no {_HEADER!r} member")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: the {_HEADER!r} member must be 1-d uint8 JSON text")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: the header is not valid JSON ({exc})") from None
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


def _check_manifest(path: pathlib.Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The archive holds exactly the arrays the header lists, of those shapes and dtypes."""
    listed = header["arrays"]
    if set(listed) != set(arrays):
        missing, extra = sorted(set(listed) - set(arrays)), sorted(set(arrays) - set(listed))
        raise CheckpointError(
            f"{path}: arrays do not match its header; missing {missing}, unexpected {extra}"
        )
    for name, a in arrays.items():
        entry = listed[name]
        if (
            not isinstance(entry, dict)
            or entry.get("shape") != list(a.shape)
            or entry.get("dtype") != str(a.dtype)
        ):
            raise CheckpointError(
                f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                f"but the header says {entry!r}"
            )
        if a.dtype != np.dtype(header["dtype"]):
            raise CheckpointError(f"{path}: array {name!r} has dtype {a.dtype}, expected {header['dtype']}")


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
