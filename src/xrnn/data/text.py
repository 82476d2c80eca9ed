"""Characters of a text as data: any UTF-8 file, or the Zen of Python by default.

The Zen of Python is read from the standard library's ``this`` module without running it;
a file is read up to a size limit. :class:`CharVocab` maps characters to indices and
:func:`text_batch` draws windows of them, placed in any namespace, dtype and device.
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
import pathlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .._util.namespaces import convert, host_rng, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_int
from .sequences import place

__all__ = ["CORPUS_MAX_BYTES", "CharVocab", "read_corpus", "text_batch", "zen_of_python"]

# ------------------------------------------------------------------------------------ text


def zen_of_python() -> str:
    """The Zen of Python, decoded from the source of the standard library's ``this`` module.

    The module is read, not imported (importing it prints the poem).

    Returns
    -------
    str
        The 19 aphorisms, one per line, with the title line.
    """
    spec = importlib.util.find_spec("this")
    if spec is None or spec.origin is None:  # pragma: no cover - stripped Python installs
        raise RuntimeError("the standard library's 'this' module is not available")
    tree = ast.parse(pathlib.Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["s"]:
            return codecs.decode(ast.literal_eval(node.value), "rot13") + "\n"
    raise RuntimeError("could not find the Zen of Python in the 'this' module")  # pragma: no cover


#: The most :func:`read_corpus` reads by default: far more text than a character model
#: trained here sees, and a bound on what an endless file (``/dev/zero``, a pipe) can cost.
CORPUS_MAX_BYTES = 16 * 2**20


def read_corpus(path: str | pathlib.Path | None = None, *, max_bytes: int = CORPUS_MAX_BYTES) -> str:
    """A training text: a UTF-8 file, or the Zen of Python when ``path`` is None.

    Parameters
    ----------
    path : str or path, optional
        A UTF-8 text file.
    max_bytes : int, default 16 MiB
        The largest file accepted; at most ``max_bytes + 1`` bytes are read, so an
        endless file such as ``/dev/zero`` is refused rather than read forever.

    Returns
    -------
    str
        Its text, at least 2 characters.
    """
    check_int("max_bytes", max_bytes)
    if path is None:
        return zen_of_python()
    p = pathlib.Path(path)
    if p.is_dir():
        raise ValueError(f"corpus file {str(p)!r} is a folder, not a file")
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValueError(f"corpus file {str(p)!r} does not exist") from None
    except PermissionError:
        raise ValueError(f"corpus file {str(p)!r} cannot be read: permission denied") from None
    if len(raw) > max_bytes:
        raise ValueError(
            f"corpus file {str(p)!r} is larger than {_size(max_bytes)}, the most read as a corpus"
        )
    if not raw:
        raise ValueError(f"corpus file {str(p)!r} is empty")
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # newlines as read_text
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"corpus file {str(p)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    if len(text) < 2:
        raise ValueError(f"corpus file {str(p)!r} must hold at least 2 characters, got {len(text)}")
    return text


def _size(n_bytes: int) -> str:
    """``n_bytes`` in the largest binary unit that divides it (``16 MiB``, ``1000 bytes``)."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes % factor == 0:
            return f"{n_bytes // factor} {unit}"
    return f"{n_bytes} bytes"


@dataclass(frozen=True)
class CharVocab:
    """The characters of a text, each with an index.

    Attributes
    ----------
    chars : str
        The distinct characters, sorted; ``chars[i]`` has index ``i``.
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of ``text``.

        Parameters
        ----------
        text : str
            Any text.

        Returns
        -------
        CharVocab
            Its sorted distinct characters.
        """
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Indices of the characters of ``text``.

        Parameters
        ----------
        text : str
            Text made of characters of the vocabulary.

        Returns
        -------
        numpy.ndarray of int32, shape (len(text),)
            The indices.
        """
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {''.join(unknown)!r}")
        return np.array([index[c] for c in text], dtype=np.int32)

    def decode(self, ids: Any) -> str:
        """The text of a sequence of indices.

        Parameters
        ----------
        ids : sequence of int, shape (L,)
            Indices in ``0..len(self) - 1``.

        Returns
        -------
        str
            The characters.
        """
        return "".join(self.chars[int(i)] for i in ids)


def text_batch(
    ids: np.ndarray,
    n_classes: int,
    n: int,
    seq_len: int,
    *,
    seed: Any = None,
    xp: str | ModuleType | None = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Random windows of an encoded text for next-character prediction.

    Parameters
    ----------
    ids : numpy.ndarray of int, shape (L,)
        The encoded text, ``L > seq_len``.
    n_classes : int
        Vocabulary size ``C``.
    n : int
        Number of windows ``N``.
    seq_len : int
        Steps per window ``T``.
    seed : int or numpy.random.Generator, optional
        Seed of the window starts.
    xp : str or module, optional
        Namespace of the result (default: ``XRNN_BACKEND``).
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of ``x``.
    device : device, optional
        Device of the result.

    Returns
    -------
    x : array, shape (T, N, C)
        One-hot characters ``ids[s : s + T]`` of each window.
    targets : int32 array, shape (T, N)
        The next characters ``ids[s + 1 : s + T + 1]``.
    """
    check_int("n", n)
    check_int("seq_len", seq_len)
    if len(ids) <= seq_len:
        raise ValueError(f"seq_len must be shorter than the text ({len(ids)} characters), got {seq_len}")
    starts = host_rng(seed).integers(0, len(ids) - seq_len, size=n)
    window = starts[None, :] + np.arange(seq_len)[:, None]  # (T, N)
    x = np.eye(n_classes)[ids[window]]  # (T, N, C)
    space = resolve_namespace(xp)
    return place(x, space, dtype, device), convert(ids[window + 1].astype(np.int32), xp=space, device=device)
