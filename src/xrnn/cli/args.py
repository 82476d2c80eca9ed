"""The command's argument types and checks: every setting refused before any training starts."""

from __future__ import annotations

import argparse
import contextlib
import math
import pathlib
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = [
    "integer",
    "natural",
    "non_negative_float",
    "output_folder",
    "positive",
    "positive_float",
    "real",
    "sequence_length",
    "settings",
    "usage_errors",
]


def integer(text: str) -> int:
    """An integer argument, with argparse's message for anything else."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def natural(text: str) -> int:
    """An integer argument of at least 0."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive(text: str) -> int:
    """An integer argument of at least 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def sequence_length(text: str) -> int:
    """A sequence length: an integer of at least 2."""
    value = integer(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 (a recurrence needs two steps), got {value}")
    return value


def real(text: str) -> float:
    """A finite real argument."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite real argument above 0."""
    value = real(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite real argument of at least 0."""
    value = real(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


@contextlib.contextmanager
def usage_errors(args: argparse.Namespace) -> Iterator[None]:
    """Report what goes wrong while the settings are checked as a usage error (exit status 2)."""
    try:
        yield
    except (ValueError, TypeError, OSError) as exc:
        args.parser.error(str(exc))


def output_folder(path: str) -> pathlib.Path:
    """``--out``, created if need be, once a file could be written in it; else ValueError."""
    out = pathlib.Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {path!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {path!r}: cannot create the folder ({exc.strerror or exc})") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ValueError(f"--out {path!r}: cannot write in the folder ({exc.strerror or exc})") from None
    return out


def settings(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """The task's defaults, overridden by whatever was given on the command line."""
    given = {k: getattr(args, k) for k in defaults if getattr(args, k) is not None}
    return defaults | given
