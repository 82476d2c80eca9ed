"""Writing a file atomically: a temporary file beside it, replaced into place, cleaned up on SIGTERM."""

import contextlib
import os
import pathlib
import secrets
import signal
import stat
import threading
from typing import Any

import numpy as np

from .npz_reader import refuse_links_and_folders

__all__ = ["write_atomically"]


def write_atomically(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file beside ``path``, then :func:`os.replace` it.

    The temporary file ``.<name>.<16 hex digits>.tmp`` gets the permission bits of the
    file it replaces before any byte is written, and is removed if anything goes wrong,
    SIGTERM included (see :class:`_SigtermGuard`).
    """
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {str(directory)!r} of the checkpoint does not exist")
    refuse_links_and_folders(path)
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
