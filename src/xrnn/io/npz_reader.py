"""Reading an ``.npz`` checkpoint that may be hostile: every size checked before it is read or built."""

import json
import math
import os
import pathlib
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Declared = tuple[tuple[int, ...], "np.dtype[Any]"]  # a member's shape and dtype

__all__ = ["HEADER", "CheckpointError", "read_npz", "refuse_links_and_folders"]

#: Name of the member that holds the JSON header.
HEADER = "header"
_NPY_MAGIC = b"\x93NUMPY"
#: An archive may always inflate to this many bytes ...
_FREE_BYTES = 64 << 20
#: ... and beyond it to this many times the file's size: float arrays deflate by a few
#: percent and xrnn writes them uncompressed, while a zip bomb inflates a thousandfold.
_MAX_EXPANSION = 16
#: Longest integer read from a header (Python converts decimal strings in quadratic time).
_MAX_INT_DIGITS = 100


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, malformed, or not what was expected."""


def refuse_links_and_folders(path: pathlib.Path) -> None:
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


def read_npz(
    path: pathlib.Path,
    check: Callable[[Any, dict[str, tuple[tuple[int, ...], np.dtype[Any]]]], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array, each checked before anything large is read or built.

    In order: the zip entries' sizes (at most :data:`_FREE_BYTES`, or
    :data:`_MAX_EXPANSION` times the file's size, may be inflated), each member's
    ``.npy`` header against its entry, the JSON header, the header's list of arrays
    against the members, the model's sizes against the arrays' shapes; only then are
    the arrays read, each against its CRC.

    ``check(header, declared)`` checks the parsed JSON header against the arrays the
    members declare (name to shape and dtype) before any array is read, and returns the
    header to use; it raises :class:`CheckpointError` for a file it refuses.
    """
    refuse_links_and_folders(path)
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
                declared = {name: (m.shape, m.dtype) for name, m in members.items() if name != HEADER}
                header = check(_read_header(path, archive, members), declared)
                arrays = {
                    name: _read_member(path, archive, m) for name, m in members.items() if name != HEADER
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
    member = members.get(HEADER)
    if member is None:
        raise CheckpointError(f"{path} is not an xrnn checkpoint: it has no {HEADER!r} member")
    if member.dtype != np.uint8 or len(member.shape) != 1:
        raise CheckpointError(f"{path}: the {HEADER!r} member must be 1-d uint8 JSON text")
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
    return header


def _bounded_int(digits: str) -> int:
    """``parse_int`` of :func:`json.loads`: integers of many digits cost quadratic time to convert."""
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(
            f"an integer of {len(digits.lstrip('-'))} digits (at most {_MAX_INT_DIGITS} are read)"
        )
    return int(digits)
