"""The arrays :func:`xrnn.fit` draws its batches from, checked against the model once.

Inputs come as :mod:`xrnn.nn.inputs` takes them (array-likes converted, another float dtype
only with ``cast=True``); a batch size that contradicts the model's ``batch_first`` is an
error that says which axis was read as the batch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from array_api_compat import device as device_of

from .._util.namespaces import namespace
from .._util.typing import Array
from .._util.validation import check_shape, lengths_list
from ..nn.inputs import as_array, batch_axis_hint
from ..nn.model import SequenceModel

__all__ = ["LOSSES", "FitData", "infer_loss", "split_off"]

LOSSES = ("mse", "cross_entropy")


def infer_loss(model: SequenceModel, y: Any) -> str:
    """The loss for ``loss=None``: cross-entropy for integer targets, mean squared error for floats.

    Parameters
    ----------
    model : SequenceModel
        The model (its namespace reads ``y``).
    y : array or array-like
        The targets, already converted by :func:`xrnn.nn.inputs.as_array`.

    Returns
    -------
    {"cross_entropy", "mse"}
    """
    xp = model.xp
    if xp.isdtype(y.dtype, "integral"):
        return "cross_entropy"
    if xp.isdtype(y.dtype, "real floating"):
        return "mse"
    raise TypeError(
        f"y must hold integer class indices or floating values to infer the loss, got {y.dtype}: "
        "give loss='mse', 'cross_entropy' or a function"
    )


@dataclasses.dataclass
class FitData:
    """Arrays to draw batches from, checked against the model once."""

    x: Array
    y: Array
    lengths: list[int] | None
    n: int
    steps: int
    x_axis: int
    y_axis: int
    every: bool  # head="every": targets and masks per step
    batch_first: bool
    xp: Any

    @staticmethod
    def convert(model: SequenceModel, x: Any, y: Any, suffix: str, cast: bool) -> tuple[Array, Array]:
        """``x`` and ``y`` in the model's namespace (``y`` may stay integer class indices)."""
        where = {"xp": model.xp, "dtype": model.dtype, "device": model.device, "cast": cast}
        x = as_array(f"x{suffix}", x, **where)
        return x, as_array(f"y{suffix}", y, integers=True, **where)

    @classmethod
    def of(cls, model: SequenceModel, loss: Any, x: Array, y: Array, lengths: Any, suffix: str) -> FitData:
        """Check converted ``x``, ``y`` and ``lengths`` against ``model`` and ``loss``."""
        xp = namespace(**{f"x{suffix}": x, f"y{suffix}": y})
        layout = "(N, T, input_size)" if model.batch_first else "(T, N, input_size)"
        check_shape(f"x{suffix}", x, (None, None, model.rnn.input_size), layout)
        if 0 in tuple(x.shape[:2]):  # nothing to learn from or to measure: refused before any update
            raise ValueError(
                f"x{suffix} must hold at least one step of one sequence {layout}, got shape {tuple(x.shape)}"
            )
        x_axis = 0 if model.batch_first else 1
        n, steps = int(x.shape[x_axis]), int(x.shape[1 - x_axis])
        every = model.head_mode == "every"
        y_axis = x_axis if every else 0
        y_n = int(y.shape[y_axis]) if len(y.shape) > y_axis else -1
        hint = batch_axis_hint(tuple(x.shape), model.batch_first, y_n)
        base: tuple[int, ...] = (n,)
        meaning = "(N"
        if every:
            base, meaning = ((n, steps), "(N, T") if model.batch_first else ((steps, n), "(T, N")
        if loss in LOSSES:
            out = model.head.out_features
            shape, meaning = (base, meaning + ")") if loss == "cross_entropy" else ((*base, out), meaning)
            meaning += ", output_size)" if loss == "mse" else ""
            if tuple(y.shape) != shape:
                raise ValueError(
                    f"y{suffix} must have shape {shape} {meaning} for loss={loss!r} with "
                    f"head={model.head_mode!r}, got shape {tuple(y.shape)}{hint}"
                )
            if loss == "cross_entropy" and not xp.isdtype(y.dtype, "integral"):
                raise TypeError(
                    f"y{suffix} must hold integer class indices for loss='cross_entropy', got {y.dtype}"
                )
        if len(y.shape) <= y_axis or y.shape[y_axis] != n:
            raise ValueError(
                f"y{suffix} must hold the targets of the N={n} sequences of x{suffix}, "
                f"got shape {tuple(y.shape)}{hint}"
            )
        lens = None
        if lengths is not None:
            count = len(lengths) if hasattr(lengths, "__len__") else n
            if count != n:
                hint = batch_axis_hint(tuple(x.shape), model.batch_first, count)
                raise ValueError(
                    f"lengths{suffix} must have one entry per sequence (N={n}), got {count}{hint}"
                )
            lens = lengths_list(lengths, n, steps)
        return cls(x, y, lens, n, steps, x_axis, y_axis, every, model.batch_first, xp)

    def batch(self, idx: list[int]) -> tuple[Array, Array, list[int] | None, Array | None]:
        """``x``, ``y``, lengths and mask of the sequences ``idx``."""
        xp = self.xp
        rows = xp.asarray(idx, dtype=xp.int64, device=device_of(self.x))
        xb = xp.take(self.x, rows, axis=self.x_axis)
        yb = xp.take(self.y, xp.asarray(idx, dtype=xp.int64, device=device_of(self.y)), axis=self.y_axis)
        lb = None if self.lengths is None else [self.lengths[i] for i in idx]
        return xb, yb, lb, self.mask(idx)

    def subset(self, idx: list[int]) -> FitData:
        """The sequences ``idx`` as data of their own (for ``validation_split``)."""
        xb, yb, lb, _ = self.batch(idx)
        return dataclasses.replace(self, x=xb, y=yb, lengths=lb, n=len(idx))

    def mask(self, idx: list[int]) -> Array | None:
        """Valid steps ``(T, n)`` (``(n, T)`` batch_first) of sequences ``idx``; None if all are."""
        if self.lengths is None or not self.every:
            return None
        xp, dev = self.xp, device_of(self.y)
        lens = xp.asarray([self.lengths[i] for i in idx], dtype=xp.int64, device=dev)
        steps = xp.arange(self.steps, dtype=xp.int64, device=dev)
        return lens[:, None] > steps[None, :] if self.batch_first else steps[:, None] < lens[None, :]

    def weight(self, y: Array, mask: Array | None, loss: Any) -> float:
        """How many positions a batch's loss averages over (sequences for a callable loss)."""
        xp = self.xp
        if loss == "cross_entropy":
            kept = y != -100
            kept = kept if mask is None else kept & mask
            return float(xp.sum(xp.astype(kept, xp.int64)))
        if loss == "mse":
            return (
                float(math.prod(y.shape[:-1])) if mask is None else float(xp.sum(xp.astype(mask, xp.int64)))
            )
        return float(y.shape[self.y_axis])


def split_off(data: FitData, fraction: Any) -> tuple[FitData, FitData]:
    """``validation_split``: the last ``fraction`` of the sequences, before any shuffling, as Keras.

    Parameters
    ----------
    data : FitData
        All the data given.
    fraction : float
        In ``(0, 1)``.

    Returns
    -------
    train, validation : FitData
        The first ``int(N * (1 - fraction))`` sequences, and the rest.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"validation_split must be a number in (0, 1), got {fraction!r}")
    kept = int(data.n * (1.0 - fraction))
    if kept < 1 or kept == data.n:
        raise ValueError(
            f"validation_split={fraction} of N={data.n} sequences leaves {kept} for training and "
            f"{data.n - kept} for validation: each needs at least one"
        )
    return data.subset(list(range(kept))), data.subset(list(range(kept, data.n)))
