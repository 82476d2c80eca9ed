"""A cell's per-unit vectors (``Cell.vectors``) as layer parameters: keys, shapes, and one array for the loop.

A cell such as the peephole LSTM declares its vectors as ``(key, blocks)``; the layer keeps
each as ``{key}_l{k}{suffix}`` of shape ``(blocks*H,)`` beside torch's weights, and hands
the loop their concatenation ``(V,)`` (:class:`~xrnn.engine.scan.Weights`' ``vectors``).
"""

from __future__ import annotations

from array_api_compat import array_namespace

from .._util.typing import Array
from ..cells import Cell

__all__ = ["joined", "shapes", "split"]


def shapes(cell: Cell, hidden: int, name: str) -> dict[str, tuple[int]]:
    """``{key_name: (blocks*H,)}`` of ``cell``'s vectors for layer and direction ``name`` (``"l0"``)."""
    return {f"{key}_{name}": (blocks * hidden,) for key, blocks in cell.vectors}


def joined(cell: Cell, params: dict[str, Array], name: str) -> Array | None:
    """The concatenation ``(V,)`` of ``cell``'s vectors of ``name`` in ``params``, or None without any."""
    if not cell.vectors:
        return None
    parts = [params[f"{key}_{name}"] for key, _ in cell.vectors]
    return parts[0] if len(parts) == 1 else array_namespace(*parts).concat(parts)


def split(cell: Cell, grad: Array | None, hidden: int, name: str) -> dict[str, Array]:
    """The gradient ``(V,)`` of the joined vectors, by key (nothing for a cell without any)."""
    out, start = {}, 0
    for key, blocks in cell.vectors:
        if grad is not None:
            out[f"{key}_{name}"] = grad[start : start + blocks * hidden]
        start += blocks * hidden
    return out
