"""What a recurrent layer's forward keeps for its backward, and the ``y`` it hands out."""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from array_api_compat import is_jax_namespace, is_numpy_namespace, is_torch_namespace

from .._util.typing import Array
from ..engine.scan import ScanCache

__all__ = ["LayerCache", "check_unchanged", "guard"]


class LayerCache(NamedTuple):
    """What :meth:`LSTM.backward` (and the others) needs from ``forward``.

    Attributes
    ----------
    scans : list of ScanCache
        One per layer and direction, in the order ``l0, l0_reverse, l1, ...``.
    shape : tuple of int
        ``(T, N, I)``, the time-major shape of ``x``.
    batch_first : bool
        Layout of ``x`` and ``y`` given to ``forward``.
    cell : str
        Name of the cell that made it.
    output : tuple (y, version) or None
        The ``y`` that ``forward`` returned and its torch version counter, so that
        ``backward`` can tell whether it was changed in place (torch tensors only).
    masks : tuple of arrays
        The dropout masks applied to the outputs of layers ``0 .. L-2`` (empty when
        none applied), each like that layer's output ``(T, N, D*H_out)``.
    weight_masks : dict of str to array
        The DropConnect masks of ``weight_hh_*`` by key (``weight_drop``; empty when none
        applied), each ``keep / (1 - p)`` like its weights.
    """

    scans: list[ScanCache]
    shape: tuple[int, int, int]
    batch_first: bool
    cell: str
    output: tuple[Array, int] | None = None
    masks: tuple[Array, ...] = ()
    weight_masks: dict[str, Array] = {}  # noqa: RUF012  (a NamedTuple default, never changed)


def guard(y: Array, *, xp: ModuleType) -> tuple[Array, tuple[Array, int] | None]:
    """``y`` as forward returns it, so that a change in place cannot alter what backward reads.

    Called when the caches share ``y``'s memory (the next layer's input, ``h_prev`` of the weight
    gradients, a fast path's step caches). NumPy gets a read-only view (a write raises at
    once); torch keeps its tensor and its version counter, which backward checks; JAX arrays
    are immutable; other namespaces (CuPy, array-api-strict) get a copy.
    """
    if is_numpy_namespace(xp):
        view = y.view()
        view.flags.writeable = False
        return view, None
    if is_torch_namespace(xp):
        if y.is_inference():  # inference tensors keep no version counter and cannot be changed outside it
            return y, None
        return y, (y, int(y._version))
    if is_jax_namespace(xp):
        return y, None
    return xp.asarray(y, copy=True), None


def check_unchanged(cache: LayerCache) -> None:
    """Refuse a cache whose ``y`` (a torch tensor the cache shares) was changed in place since forward."""
    if cache.output is not None and cache.output[0]._version != cache.output[1]:
        raise ValueError(
            "y returned by forward was changed in place (y += ..., y[...] = ...) before backward, "
            "and the cache shares its memory: the gradients would be wrong. Change a copy "
            "(y = y + 1), or run forward again"
        )
