"""How the compiled backends lay out a sequence's step caches, and how they read back as the cell's own.

A step keeps ``h`` in ``y[t]`` and its ``K`` other arrays in ``kept[t]`` (Numba's loops
and the CUDA kernels alike); :class:`Steps` shows those buffers as the list of the cell's
step caches, so the generic backward reads them unchanged. Written in the Array API alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._util.typing import Array
from ..cells import GRUResetBeforeStep, GRUStep, LSTMStep, PeepholeStep

__all__ = ["LAYOUTS", "Layout", "Steps"]


@dataclass(frozen=True)
class Layout:
    """One cell's step-cache layout.

    Attributes
    ----------
    kept : int
        ``K``, the ``(N, H)`` arrays a step keeps beside ``h`` in ``kept[t]``.
    c_slot : int or None
        Where ``kept[t]`` holds the second state (the LSTM's ``c``); None for cells whose
        state is ``h`` alone.
    grads : int
        Gate-gradient arrays backward writes: 2 when ``dgh`` differs from ``dgx`` (GRU).
    record : callable
        ``(y, kept, first, t) -> cache_t``, the cell's own step cache of step ``t``;
        ``first`` is the state before step 0 that the caches refer to.
    """

    kept: int
    c_slot: int | None
    grads: int
    record: Callable[[Array, Array, Array, int], Any]


def _rnn_record(y: Array, kept: Array, first: Array, t: int) -> Any:
    return y[t, ...]


def _lstm_record(y: Array, kept: Array, first: Array, t: int) -> Any:
    return LSTMStep(*(kept[t, q, ...] for q in range(5)), first if t == 0 else kept[t - 1, 5, ...])


def _gru_record(y: Array, kept: Array, first: Array, t: int) -> Any:
    return GRUStep(*(kept[t, q, ...] for q in range(4)), first if t == 0 else y[t - 1, ...])


def _peephole_record(y: Array, kept: Array, first: Array, t: int) -> Any:
    return PeepholeStep(*(kept[t, q, ...] for q in range(5)), first if t == 0 else kept[t - 1, 5, ...])


def _gru_reset_before_record(y: Array, kept: Array, first: Array, t: int) -> Any:
    return GRUResetBeforeStep(*(kept[t, q, ...] for q in range(3)), first if t == 0 else y[t - 1, ...])


#: The step-cache layout of each cell the compiled backends serve, by name.
LAYOUTS: dict[str, Layout] = {
    "rnn_tanh": Layout(0, None, 1, _rnn_record),
    "rnn_relu": Layout(0, None, 1, _rnn_record),
    "lstm": Layout(6, 5, 1, _lstm_record),
    "gru": Layout(4, None, 2, _gru_record),
    "gru_reset_before": Layout(3, None, 1, _gru_reset_before_record),
    "lstm_peephole": Layout(6, 5, 1, _peephole_record),
    "indrnn_tanh": Layout(0, None, 1, _rnn_record),  # IndRNN keeps its h, as the RNN
    "indrnn_relu": Layout(0, None, 1, _rnn_record),
}


class Steps(Sequence[Any]):
    """The step caches of a compiled forward: the cell's own caches, made on access.

    ``steps[t]`` is what the cell's step ``t`` returns as its cache (rows past a
    sequence's length hold what the loop wrote there, finite, and no gradient flows
    from them), so any backward takes it; the backend's own backward reads the buffers
    ``y (T, N, H)``, ``kept (T, K, N, H)`` and ``first`` directly. Each backend
    subclasses it, so that it knows its own buffers.
    """

    def __init__(self, layout: Layout, y: Array, kept: Array, first: Array) -> None:
        self.layout, self.y, self.kept, self.first = layout, y, kept, first

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[t] for t in range(*index.indices(len(self)))]
        t = range(len(self))[index]
        return self.layout.record(self.y, self.kept, self.first, t)
