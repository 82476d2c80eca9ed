"""What :func:`xrnn.fit` measures besides the loss: ``metrics=["mae", "rmse", "accuracy", f]``.

Each metric is summed over the positions of a batch and divided by their count at the
end of the epoch, so that the training figure is that of the whole epoch (not a mean of
batch means) and the validation figure that of the whole validation set::

    mae      = sum |z - y| / count                 (targets like z: loss="mse")
    rmse     = sqrt(sum (z - y)^2 / count)
    accuracy = (argmax(z) == y, kept) / kept        (class indices; -100 and padding left out)

A callable ``f(z, y) -> float`` is averaged over batches, weighted by their sequences.
Padded steps (``lengths`` with ``head="every"``) are left out of the built-in metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .._util.namespaces import namespace
from .._util.typing import Array

__all__ = ["METRICS", "Metric", "accuracy", "metrics_of"]


def _mae(z: Array, y: Array, mask: Array | None) -> tuple[float, float]:
    xp = namespace(z=z, y=y)
    error = xp.abs(z - y)  # (..., O)
    if mask is not None:
        error = xp.where(mask[..., None], error, xp.zeros_like(error))
        return float(xp.sum(error)), float(xp.sum(xp.astype(mask, xp.int64))) * z.shape[-1]
    return float(xp.sum(error)), float(math.prod(z.shape))


def _squared(z: Array, y: Array, mask: Array | None) -> tuple[float, float]:
    xp = namespace(z=z, y=y)
    error = (z - y) * (z - y)
    if mask is not None:
        error = xp.where(mask[..., None], error, xp.zeros_like(error))
        return float(xp.sum(error)), float(xp.sum(xp.astype(mask, xp.int64))) * z.shape[-1]
    return float(xp.sum(error)), float(math.prod(z.shape))


def _hits(z: Array, y: Array, mask: Array | None) -> tuple[float, float]:
    xp = namespace(z=z, y=y)
    kept = y != -100
    kept = kept if mask is None else kept & mask
    hits = (xp.argmax(z, axis=-1) == y) & kept
    return float(xp.sum(xp.astype(hits, xp.int64))), float(xp.sum(xp.astype(kept, xp.int64)))


def accuracy(z: Array, y: Array, mask: Array | None = None) -> float:
    """Fraction of the kept positions (target not -100, mask True) whose largest output is the target.

    Parameters
    ----------
    z : array, shape (..., C)
        Outputs (logits or probabilities) over ``C`` classes.
    y : integer array, shape (...)
        Class indices; -100 is left out.
    mask : bool array, shape (...), optional
        Valid positions.

    Returns
    -------
    float
        In ``[0, 1]``; 0 where no position is kept.
    """
    hits, count = _hits(z, y, mask)
    return hits / count if count else 0.0


class Metric:
    """One metric of :func:`xrnn.fit`, summed over batches and finished at the end of an epoch.

    Parameters
    ----------
    name : str
        Its key in :attr:`History.metrics <xrnn.History.metrics>` (``"val_"`` before it for
        the validation data).
    function : callable
        ``function(z, y, mask) -> (total, count)`` for the built-in metrics; for a user's
        ``f(z, y) -> float``, a wrapper weighting it by the batch's sequences.
    finish : callable, optional
        Applied to ``total / count`` (``math.sqrt`` for rmse).
    integers : bool or None
        Whether the targets must be class indices (True), values like ``z`` (False), or
        anything (None).
    """

    def __init__(
        self,
        name: str,
        function: Callable[[Array, Array, Array | None], tuple[float, float]],
        finish: Callable[[float], float] | None = None,
        integers: bool | None = None,
    ) -> None:
        self.name, self.function, self.finish, self.integers = name, function, finish, integers

    def measure(self, z: Array, y: Array, mask: Array | None) -> tuple[float, float]:
        """``(total, count)`` of one batch; see the class.

        Parameters
        ----------
        z : array
            Outputs of the batch, as the model's ``forward``.
        y : array
            Targets of the batch.
        mask : bool array or None
            Valid steps (``head="every"`` with lengths).

        Returns
        -------
        tuple of float
        """
        return self.function(z, y, mask)

    def result(self, total: float, count: float) -> float:
        """The metric of the sums of an epoch.

        Parameters
        ----------
        total, count : float
            Sums of :meth:`measure` over the batches.

        Returns
        -------
        float
            NaN where nothing was counted.
        """
        value = total / count if count else math.nan
        return self.finish(value) if self.finish is not None else value


#: The built-in metrics by name.
METRICS = {
    "mae": Metric("mae", _mae, integers=False),
    "rmse": Metric("rmse", _squared, math.sqrt, integers=False),
    "accuracy": Metric("accuracy", _hits, integers=True),
}


def _callable(function: Callable[..., Any]) -> Metric:
    name = getattr(function, "__name__", type(function).__name__)

    def weighted(z: Array, y: Array, mask: Array | None) -> tuple[float, float]:
        value = function(z, y)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {name!r} must return a number, got {type(value).__name__}") from None
        n = float(y.shape[0]) if y.shape else 1.0
        return number * n, n

    return Metric(name, weighted)


def metrics_of(given: Any, *, integer_targets: bool) -> list[Metric]:
    """The metrics that ``metrics=`` names, checked against the kind of the targets.

    Parameters
    ----------
    given : sequence of str or callable
        Names of :data:`METRICS` and functions ``f(z, y) -> float``.
    integer_targets : bool
        Whether ``y`` holds class indices.

    Returns
    -------
    list of Metric
    """
    if isinstance(given, (str, bytes)) or callable(given) or not isinstance(given, Sequence):
        raise TypeError(f"metrics must be a list of names {sorted(METRICS)} or functions, got {given!r:.80}")
    out: list[Metric] = []
    for item in given:
        if isinstance(item, str):
            if item not in METRICS:
                raise ValueError(
                    f"metrics must name {', '.join(map(repr, METRICS))} or be functions, got {item!r:.80}"
                )
            metric = METRICS[item]
            if metric.integers is not None and metric.integers != integer_targets:
                need = "class indices (integer y)" if metric.integers else "values like the outputs (float y)"
                raise ValueError(f"metric {item!r} needs targets that are {need}")
        elif callable(item):
            metric = _callable(item)
        else:
            raise TypeError(f"metrics must hold names or functions, got {item!r:.80}")
        if metric.name in [m.name for m in out] or metric.name == "loss":
            raise ValueError(f"metrics must have distinct names other than 'loss', got {metric.name!r} twice")
        out.append(metric)
    return out
