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

import contextlib
import json
import math
import os
import pathlib
import re
import secrets
import signal
import stat
import threading
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
_NPY_MAGIC = b"\x93NUMPY"
#: An archive may always inflate to this many bytes ...
_FREE_BYTES = 64 << 20
#: ... and beyond it to this many times the file's size: float arrays deflate by a few
#: percent and xrnn writes them uncompressed, while a zip bomb inflates a thousandfold.
_MAX_EXPANSION = 16
#: Longest integer read from a header (Python converts decimal strings in quadratic time).
_MAX_INT_DIGITS = 100
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
        configuration implies; if it would inflate to more than 64 MiB or 16 times its
        size, whichever is more, or its header is not UTF-8 JSON of valid Unicode within
        the limits of the module's docstring; or if ``path`` is a directory or a
        symbolic link.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = pathlib.Path(path)
    header, arrays = _read(path)
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
    """``np.savez`` to a temporary file beside ``path``, then :func:`os.replace` it.

    The temporary file ``.<name>.<16 hex digits>.tmp`` gets the permission bits of the
    file it replaces before any byte is written, and is removed if anything goes wrong,
    SIGTERM included (see :class:`_SigtermGuard`).
    """
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {str(directory)!r} of the checkpoint does not exist")
    _refuse_links_and_folders(path)
    mode = _mode_to_keep(path)
    # A new name in the same directory (so os.replace is atomic), created exclusively. A
    # new checkpoint gets the usual mode of a new file (0o666 less the umask); a replacing
    # one is created private and given the old file's mode before anything is written.
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    guard = _SigtermGuard()
    written = False
    try:
        guard.arm()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666 if mode is None else 0o600)
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                _chmod(f, tmp, mode)
            np.savez(f, **arrays)  # type: ignore[arg-type]  # NumPy's stub reads **kwds as allow_pickle
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        written = True
    finally:
        # First, with no call before it (a call is where Python runs signal handlers):
        # from here on SIGTERM is only recorded, so the cleanup runs to its end.
        guard.armed = False
        if not written:  # an exception is on its way; it is what the caller should see
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        guard.restore()


def _mode_to_keep(path: pathlib.Path) -> int | None:
    """The permission bits of the file ``path`` replaces (None if there is none).

    A file this process may not write is not replaced: :func:`os.replace` needs only
    the directory to be writable, so without this check a read-only file would go.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    effective = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
    if not os.access(path, os.W_OK, **effective):
        raise PermissionError(
            f"{path} exists and this user may not write it; it is not replaced "
            "(make it writable or save to another path)"
        )
    return stat.S_IMODE(st.st_mode) & 0o777


def _chmod(f: Any, tmp: pathlib.Path, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(f.fileno(), mode)
    else:  # Windows before Python 3.13
        os.chmod(tmp, mode)


class _Terminated(BaseException):
    """SIGTERM arrived while a checkpoint was being written."""


class _SigtermGuard:
    """While a checkpoint is written, SIGTERM removes the temporary file before the process ends.

    SIGTERM's default action ends the process at once, without running ``finally``
    blocks. So, where that default is in force and this is the main thread (the only one
    Python lets set a handler), the guard installs a handler that raises
    :class:`_Terminated` once, so that the writer's ``finally`` removes the temporary
    file; :meth:`restore` then puts back the default and raises SIGTERM again, so the
    process ends as SIGTERM would have ended it (exit status -15, no ``atexit``).
    A handler of the user's own, or SIG_IGN, is left alone. Elsewhere (other threads, a
    handler set outside Python) SIGTERM ends the process as before and leaves the
    temporary file.
    """

    def __init__(self) -> None:
        self.armed = self.received = self.installed = False

    def arm(self) -> None:
        """Install the handler, where SIGTERM's default action is in force in the main thread."""
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            self.installed = self.armed = True
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True
        if self.armed:
            self.armed = False
            raise _Terminated

    def restore(self) -> None:
        """Put back the default action; end the process if SIGTERM came meanwhile."""
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if self.received:
                signal.raise_signal(signal.SIGTERM)


# --------------------------------------------------------------------------------- reading


def _refuse_links_and_folders(path: pathlib.Path) -> None:
    """A checkpoint is a regular file: a symbolic link or a directory in its place is an error."""
    if path.is_symlink():
        raise CheckpointError(
            f"{path} is a symbolic link; a checkpoint must be a regular file (give the link's target)"
        )
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; a checkpoint must be a regular file")


class _Member(NamedTuple):
    """One ``.npy`` member of the archive, as its zip entry and its ``.npy`` header declare it."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def _unreadable(path: pathlib.Path, why: object) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable xrnn checkpoint (truncated, or not an .npz archive): {why}"
    )


def _size(n: int) -> str:
    """``n`` bytes for a message: ``512 bytes``, ``3.0 GiB``, ``4.0 TiB``."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _read(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array, each checked before anything large is read or built.

    In order: the zip entries' sizes (at most :data:`_FREE_BYTES`, or
    :data:`_MAX_EXPANSION` times the file's size, may be inflated), each member's
    ``.npy`` header against its entry, the JSON header, the header's list of arrays
    against the members, the model's sizes against the arrays' shapes; only then are
    the arrays read, each against its CRC.
    """
    _refuse_links_and_folders(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():  # opening a named pipe would wait for a writer
        raise CheckpointError(f"{path} is not a regular file; a checkpoint must be one")
    try:
        with open(path, "rb") as file:
            if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise CheckpointError(f"{path} is a single .npy array, not an xrnn checkpoint (.npz)")
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                members = _declared_members(path, archive, os.fstat(file.fileno()).st_size)
                header = _read_header(path, archive, members)
                declared = {name: (m.shape, m.dtype) for name, m in members.items() if name != _HEADER}
                _check_manifest(path, header, declared)
                _check_sizes(path, header["model"], {name: shape for name, (shape, _) in declared.items()})
                arrays = {
                    name: _read_member(path, archive, m) for name, m in members.items() if name != _HEADER
                }
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise _unreadable(path, exc) from None
    return header, arrays


def _declared_members(path: pathlib.Path, archive: zipfile.ZipFile, file_size: int) -> dict[str, _Member]:
    infos = archive.infolist()
    packed = sum(info.compress_size for info in infos)
    inflated = sum(info.file_size for info in infos)
    if packed > file_size:
        raise _unreadable(path, f"its members claim {_size(packed)} of data in a file of {_size(file_size)}")
    if inflated > max(_FREE_BYTES, _MAX_EXPANSION * file_size):
        raise CheckpointError(
            f"{path}: its members would inflate to {_size(inflated)} from a file of {_size(file_size)}; "
            f"a checkpoint may inflate to {_size(_FREE_BYTES)} or {_MAX_EXPANSION} times its size, "
            "whichever is more (a zip bomb is refused)"
        )
    members: dict[str, _Member] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if info.is_dir() or name == info.filename or name in members:
            raise _unreadable(path, f"member {info.filename!r} is not one .npy array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
            raise _unreadable(path, f"member {info.filename!r} is encrypted or compressed in an unknown way")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _unreadable(path, f"member {info.filename!r} is stored but its two sizes differ")
        members[name] = _declared_member(path, archive, info, name)
    return members


def _declared_member(
    path: pathlib.Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str
) -> _Member:
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise _unreadable(path, f"member {name!r} is a .npy file of version {version}")
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        try:
            shape, _, dtype = read_header(member)
        except (SyntaxError, RecursionError, MemoryError) as exc:
            raise _unreadable(
                path, f"member {name!r} has a .npy header that cannot be parsed ({exc})"
            ) from None
        offset = member.tell()
    if any(n < 0 for n in shape):
        raise _unreadable(path, f"member {name!r} declares shape {shape}")
    if dtype.hasobject:
        raise _unreadable(path, f"member {name!r} holds Python objects (a pickle), which are never loaded")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != offset + nbytes:
        raise CheckpointError(
            f"{path}: member {name!r} declares shape {shape} of {dtype} ({_size(nbytes)}) "
            f"but holds {info.file_size - offset} bytes"
        )
    return _Member(info, shape, dtype)


def _read_member(path: pathlib.Path, archive: zipfile.ZipFile, member: _Member) -> np.ndarray:
    """The array of a member checked by :func:`_declared_member`, its CRC verified."""
    with archive.open(member.info) as file:
        array = np.lib.format.read_array(file, allow_pickle=False)
        if file.read(1):  # reaching the end verifies the CRC; nothing may follow the array
            raise _unreadable(path, f"member {member.info.filename!r} holds bytes after its array")
    return array


def _read_header(path: pathlib.Path, archive: zipfile.ZipFile, members: dict[str, _Member]) -> dict[str, Any]:
    member = members.get(_HEADER)
    if member is None:
        raise CheckpointError(f"{path} is not an xrnn checkpoint: it has no {_HEADER!r} member")
    if member.dtype != np.uint8 or len(member.shape) != 1:
        raise CheckpointError(f"{path}: the {_HEADER!r} member must be 1-d uint8 JSON text")
    raw = _read_member(path, archive, member).tobytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: the header is not UTF-8 text ({exc})") from None
    try:
        header = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise CheckpointError(f"{path}: the header is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, or _bounded_int's refusal
        raise CheckpointError(f"{path}: the header is not valid JSON: {exc}") from None
    try:
        json.dumps(header, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise CheckpointError(
            f"{path}: the header holds text that is not valid Unicode (an unpaired surrogate, {bad!r})"
        ) from None
    return _check_header(path, header)


def _bounded_int(digits: str) -> int:
    """``parse_int`` of :func:`json.loads`: integers of many digits cost quadratic time to convert."""
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(
            f"an integer of {len(digits.lstrip('-'))} digits (at most {_MAX_INT_DIGITS} are read)"
        )
    return int(digits)


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
