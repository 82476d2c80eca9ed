"""Data of two classic recurrent problems, generated on the host and placed in any namespace.

- The **adding problem** (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015):
  ``T`` steps of ``(value, marker)`` pairs, values uniform in ``[0, 1)``, exactly two
  markers (one in each half); the target is the sum of the two marked values. Always
  predicting 1.0 scores a mean squared error of ``Var(u1 + u2) = 1/6``.
- The **embedded Reber grammar** (Fahlman 1991; Hochreiter & Schmidhuber 1997):
  ``B a <Reber string> a E`` with ``a`` one of ``T, P``, for next-symbol prediction.
  The second-to-last symbol repeats the second one, across the whole inner string.

Generation uses NumPy's ``default_rng`` (a seed gives the same data on every backend);
:func:`place` moves the result to the chosen namespace, dtype and device.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from .._util.namespaces import convert, host_rng, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_int

__all__ = [
    "REBER_SYMBOLS",
    "ReberBatch",
    "adding_problem",
    "embedded_reber",
    "place",
    "reber_batch",
    "reber_successors",
]


# ------------------------------------------------------------------------------ adding problem


def adding_problem(
    n: int,
    seq_len: int,
    *,
    seed: Any = None,
    xp: str | ModuleType | None = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """A batch of the adding problem.

    Parameters
    ----------
    n : int
        Number of sequences ``N``.
    seq_len : int
        Steps per sequence ``T``, at least 2.
    seed : int or numpy.random.Generator, optional
        Seed of the draw.
    xp : str or module, optional
        Namespace of the result (default: ``XRNN_BACKEND``).
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the result.
    device : device, optional
        Device of the result.

    Returns
    -------
    x : array, shape (T, N, 2)
        ``x[t, i] = (value, marker)``, markers 1.0 at one step in ``[0, T//2)`` and one in
        ``[T//2, T)``, else 0.0.
    target : array, shape (N, 1)
        Sum of the two marked values.
    """
    check_int("n", n)
    check_int("seq_len", seq_len, least=2)
    rng = host_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(seq_len, n))
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((seq_len, n))
    markers[first, np.arange(n)] = 1.0
    markers[second, np.arange(n)] = 1.0
    x = np.stack([values, markers], axis=-1)  # (T, N, 2)
    target = np.sum(values * markers, axis=0)[:, None]  # (N, 1)
    return place(x, xp, dtype, device), place(target, xp, dtype, device)


# ------------------------------------------------------------------------ embedded Reber grammar

#: The alphabet of the Reber grammar, in the order of the one-hot axis.
REBER_SYMBOLS = "BTPSXVE"

# The Reber graph: node -> ((symbol, next node), ...); None is the end (after E).
_REBER_GRAPH: dict[int, tuple[tuple[str, int | None], ...]] = {
    0: (("T", 1), ("P", 5)),
    1: (("S", 1), ("X", 2)),
    2: (("S", 3), ("X", 5)),
    3: (("E", None),),
    4: (("V", 3), ("P", 2)),
    5: (("V", 4), ("T", 5)),
}


def _reber(rng: np.random.Generator) -> str:
    out: list[str] = ["B"]
    node: int | None = 0
    while node is not None:
        symbol, node = _REBER_GRAPH[node][rng.integers(len(_REBER_GRAPH[node]))]
        out.append(symbol)
    return "".join(out)


def embedded_reber(n: int, *, seed: Any = None) -> list[str]:
    """Strings of the embedded Reber grammar, ``B a <Reber> a E`` with ``a`` in ``T, P``.

    Parameters
    ----------
    n : int
        Number of strings.
    seed : int or numpy.random.Generator, optional
        Seed of the draw; every choice is made with equal probability.

    Returns
    -------
    list of str
        ``n`` strings over :data:`REBER_SYMBOLS`, e.g. ``"BTBPVVETE"``.
    """
    check_int("n", n)
    rng = host_rng(seed)
    strings = []
    for _ in range(n):
        a = "TP"[rng.integers(2)]
        strings.append(f"B{a}{_reber(rng)}{a}E")
    return strings


def reber_successors(string: str) -> list[str]:
    """The symbols that may follow each prefix of an embedded Reber string.

    Parameters
    ----------
    string : str
        An embedded Reber string.

    Returns
    -------
    list of str
        Entry ``t`` holds the symbols allowed after ``string[: t + 1]`` (one or two
        letters), for ``t`` in ``0..len(string) - 2``.
    """
    if len(string) < 9 or string[0] != "B" or string[1] not in "TP" or string[-2:] != f"{string[1]}E":
        raise ValueError(f"string must be an embedded Reber string 'B(T|P)B...E(T|P)E', got {string!r}")
    inner = string[2:-2]
    allowed = ["TP", "B"]  # after 'B', after 'a'
    node: int | None = 0
    for symbol in inner[1:]:  # inner[0] is its own 'B', whose successors are node 0's
        moves = {} if node is None else dict(_REBER_GRAPH[node])
        if inner[0] != "B" or symbol not in moves:
            raise ValueError(f"string must follow the Reber grammar, got {string!r}")
        allowed.append("".join(moves))
        node = moves[symbol]
    if node is not None:
        raise ValueError(f"string must follow the Reber grammar, got {string!r}")
    return [*allowed, string[1], "E"]  # after the inner 'E' comes 'a', then the final 'E'


class ReberBatch(NamedTuple):
    """A padded batch for next-symbol prediction on the embedded Reber grammar.

    Attributes
    ----------
    x : array, shape (T, N, 7)
        One-hot symbols ``string[:-1]``, zero past each length.
    targets : int32 array, shape (T, N)
        Index of the next symbol ``string[1:]`` in :data:`REBER_SYMBOLS`, 0 past each length.
    mask : bool array, shape (T, N)
        True at the valid steps.
    legal : bool array, shape (T, N, 7)
        True for each symbol the grammar allows next (one or two per step).
    """

    x: Array
    targets: Array
    mask: Array
    legal: Array


def reber_batch(
    strings: list[str], *, xp: str | ModuleType | None = None, dtype: Any = None, device: Any = None
) -> ReberBatch:
    """Encode embedded Reber strings for next-symbol prediction.

    Parameters
    ----------
    strings : list of str
        Embedded Reber strings (from :func:`embedded_reber`).
    xp : str or module, optional
        Namespace of the result (default: ``XRNN_BACKEND``).
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of ``x``.
    device : device, optional
        Device of the result.

    Returns
    -------
    ReberBatch
        ``x (T, N, 7)``, ``targets (T, N)``, ``mask (T, N)``, ``legal (T, N, 7)`` with
        ``T = max(len(s)) - 1``.
    """
    if not strings:
        raise ValueError("strings must hold at least one string, got an empty list")
    steps, n, k = max(len(s) for s in strings) - 1, len(strings), len(REBER_SYMBOLS)
    index = {c: i for i, c in enumerate(REBER_SYMBOLS)}
    x = np.zeros((steps, n, k))
    targets = np.zeros((steps, n), dtype=np.int32)
    mask = np.zeros((steps, n), dtype=bool)
    legal = np.zeros((steps, n, k), dtype=bool)
    for j, s in enumerate(strings):
        for t, allowed in enumerate(reber_successors(s)):
            x[t, j, index[s[t]]] = 1.0
            targets[t, j] = index[s[t + 1]]
            mask[t, j] = True
            legal[t, j, [index[c] for c in allowed]] = True
    space = resolve_namespace(xp)
    return ReberBatch(
        place(x, space, dtype, device),
        convert(targets, xp=space, device=device),
        convert(mask, xp=space, device=device),
        convert(legal, xp=space, device=device),
    )


# --------------------------------------------------------------------------------- helpers


def place(a: np.ndarray, xp: Any, dtype: Any, device: Any) -> Array:
    """Host array ``a`` in namespace ``xp`` (a name or module), with ``dtype`` and on ``device``."""
    space = resolve_namespace(xp)
    return convert(a, xp=space, dtype=resolve_dtype(dtype, space), device=device)
