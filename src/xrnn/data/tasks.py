"""Training problems: for each task its batches, its loss and its held-out metric with a baseline.

======== ============================ ============== ============================================
task     model input -> output        loss           metric (baseline)
======== ============================ ============== ============================================
adding   (value, marker) -> sum       MSE, last step MSE on held-out sequences (always 1.0: ~1/6)
reber    one-hot symbol -> next       cross-entropy  correct next-symbol sets (no long-term memory)
text     one-hot char -> next char    cross-entropy  bits per character (character frequencies)
======== ============================ ============== ============================================

A task makes its data with :mod:`xrnn.data.generators` in the namespace, dtype and device it is
given; its loss and metric are array-agnostic.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import device as device_of

from .._util.namespaces import host_rng, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_int
from ..nn.model import SequenceModel
from ..training.losses import mse, softmax_cross_entropy
from .sequences import adding_problem, embedded_reber, reber_batch

__all__ = ["AddingTask", "Evaluation", "ReberTask", "Task"]


def evaluated(model: Any, x: Array) -> Array:
    """The outputs ``z`` of ``model`` for ``x`` in evaluation mode, the model's own mode unchanged.

    A :class:`SequenceModel` runs ``forward(x, training=False)`` (no dropout); any other
    object with ``forward(x) -> (z, state, cache)`` is run as it is.
    """
    if isinstance(model, SequenceModel):
        return model.forward(x, training=False)[0]
    return model.forward(x)[0]


def check_sizes(**sizes: Any) -> None:
    """Refuse a task of zero sequences or zero steps (an evaluation over nothing), naming the size."""
    for name, value in sizes.items():
        check_int(name, value)


class Evaluation(NamedTuple):
    """A task's held-out result.

    Attributes
    ----------
    metric : str
        What ``value`` measures, e.g. ``"MSE"``.
    value : float
        The model's score.
    baseline : float
        The score of the task's trivial predictor.
    baseline_label : str
        What that predictor does.
    data : str
        What it was measured on.
    higher_is_better : bool
        Direction of the metric.
    """

    metric: str
    value: float
    baseline: float
    baseline_label: str
    data: str
    higher_is_better: bool


class Task:
    """Shared placement of a task's arrays: namespace, dtype, device."""

    name: str
    input_size: int
    output_size: int
    #: The axis of the sequences in each item of a batch (``x (T, N, I)``: 1), for
    #: cutting a batch into blocks of sequences (:mod:`xrnn.distributed`).
    sequence_axes: tuple[int, ...]

    def __init__(self, *, xp: str | ModuleType | None, dtype: Any, device: Any, eval_seed: int) -> None:
        self.xp = resolve_namespace(xp)
        self.dtype = resolve_dtype(dtype, self.xp)
        self.device = device
        self.eval_seed = eval_seed

    def loss_count(self, batch: Any) -> Any:
        """How many terms the mean of the loss is over: one per target, or per step of a ``mask``.

        Parameters
        ----------
        batch : tuple
            A batch or a block of its sequences.

        Returns
        -------
        int or array of shape ()
            The denominator of the loss's mean: blocks with losses ``l_b`` and counts
            ``c_b`` have the loss of their whole batch ``sum(c_b * l_b) / sum(c_b)``.
        """
        mask = getattr(batch, "mask", None)  # ReberBatch: the valid steps
        return math.prod(batch[1].shape) if mask is None else self.xp.sum(self.xp.astype(mask, self.dtype))

    def _placement(self) -> dict[str, Any]:
        return {"xp": self.xp, "dtype": self.dtype, "device": self.device}

    def _held_out_rng(self) -> Any:
        """The generator of the held-out data: the stream ``[eval_seed, 1]``.

        Training draws from ``default_rng(seed)`` or, in ``python -m xrnn``, from
        ``[seed, 0]``: other streams, so held-out data is never a training batch.
        """
        return host_rng([self.eval_seed, 1])


class AddingTask(Task):
    """The adding problem: predict the sum of the two marked values at the last step.

    Parameters
    ----------
    seq_len : int, default 50
        Steps of the training sequences.
    batch_size : int, default 64
        Sequences per training batch.
    eval_seq_len : int, optional
        Steps of the held-out sequences (default: ``seq_len``).
    eval_size : int, default 1000
        Number of held-out sequences.
    xp, dtype, device
        Where the data is placed (default: ``XRNN_BACKEND``, float32).
    eval_seed : int, default 0
        Seed of the held-out set (training batches draw from the generator given to :meth:`batch`).
    """

    name = "adding"
    input_size, output_size = 2, 1
    sequence_axes = (1, 0)  # x (T, N, 2), target (N, 1)

    def __init__(
        self,
        seq_len: int = 50,
        batch_size: int = 64,
        *,
        eval_seq_len: int | None = None,
        eval_size: int = 1000,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
        eval_seed: int = 0,
    ) -> None:
        super().__init__(xp=xp, dtype=dtype, device=device, eval_seed=eval_seed)
        sizes = {"seq_len": seq_len, "batch_size": batch_size, "eval_size": eval_size}
        check_sizes(**sizes, **({} if eval_seq_len is None else {"eval_seq_len": eval_seq_len}))
        self.seq_len, self.batch_size = seq_len, batch_size
        self.eval_seq_len, self.eval_size = eval_seq_len or seq_len, eval_size

    def batch(self, rng: Any) -> tuple[Array, Array]:
        """A training batch.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the draw.

        Returns
        -------
        x : array, shape (T, N, 2)
            ``(value, marker)`` at every step.
        target : array, shape (N, 1)
            Sum of the two marked values.
        """
        return adding_problem(self.batch_size, self.seq_len, seed=rng, **self._placement())

    def loss(self, z: Array, batch: tuple[Array, Array]) -> tuple[Array, Array]:
        """MSE of the prediction at the last step.

        Parameters
        ----------
        z : array, shape (T, N, 1)
            The model's outputs; only ``z[-1]`` is the prediction.
        batch : tuple (x, target)
            From :meth:`batch`; ``target`` is ``(N, 1)``.

        Returns
        -------
        loss : array, shape ()
            ``mean((z[-1] - target)**2)``.
        dz : array, shape (T, N, 1)
            Its gradient, zero before the last step.
        """
        xp = self.xp
        loss, d_last = mse(z[-1, ...], batch[1])
        zeros = xp.zeros((z.shape[0] - 1, *z.shape[1:]), dtype=z.dtype, device=device_of(z))
        return loss, xp.concat([zeros, d_last[None, ...]], axis=0)

    def evaluate(self, model: SequenceModel) -> Evaluation:
        """MSE on held-out sequences against always predicting 1.0 (the mean of the target).

        Parameters
        ----------
        model : SequenceModel
            A model with ``input_size=2``, ``output_size=1``.

        Returns
        -------
        Evaluation
            ``metric="MSE"``, lower is better.
        """
        x, target = adding_problem(
            self.eval_size, self.eval_seq_len, seed=self._held_out_rng(), **self._placement()
        )
        z = evaluated(model, x)
        value, _ = mse(z[-1, ...], target)
        baseline, _ = mse(self.xp.ones_like(target), target)
        data = f"{self.eval_size} held-out sequences of length {self.eval_seq_len}"
        return Evaluation("MSE", float(value), float(baseline), "always predicting 1.0", data, False)


class ReberTask(Task):
    """Next-symbol prediction on the embedded Reber grammar.

    A step counts as correct when the symbols the grammar allows next (one or two) are
    exactly the model's most likely ones (the criterion of Hochreiter & Schmidhuber 1997).

    Parameters
    ----------
    batch_size : int, default 32
        Strings per training batch (padded to the longest; padding is masked out of the loss).
    eval_size : int, default 1000
        Number of held-out strings.
    xp, dtype, device, eval_seed
        As for :class:`AddingTask`.
    """

    name = "reber"
    input_size = output_size = 7
    sequence_axes = (1, 1, 1, 1)  # x, targets, mask, legal: (T, N, ...)

    def __init__(
        self,
        batch_size: int = 32,
        *,
        eval_size: int = 1000,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
        eval_seed: int = 0,
    ) -> None:
        super().__init__(xp=xp, dtype=dtype, device=device, eval_seed=eval_seed)
        check_sizes(batch_size=batch_size, eval_size=eval_size)
        self.batch_size, self.eval_size = batch_size, eval_size

    def batch(self, rng: Any) -> Any:
        """A training batch of fresh strings.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the draw.

        Returns
        -------
        ReberBatch
            ``x (T, N, 7)``, ``targets (T, N)``, ``mask (T, N)``, ``legal (T, N, 7)``,
            padded to the longest string.
        """
        return reber_batch(embedded_reber(self.batch_size, seed=rng), **self._placement())

    def loss(self, z: Array, batch: Any) -> tuple[Array, Array]:
        """Cross-entropy of the next symbol over the valid steps.

        Parameters
        ----------
        z : array, shape (T, N, 7)
            The model's logits.
        batch : ReberBatch
            From :meth:`batch`.

        Returns
        -------
        loss : array, shape ()
            Mean cross-entropy over the steps where ``batch.mask`` is True.
        dz : array, shape (T, N, 7)
            Its gradient, zero at padded steps.
        """
        return softmax_cross_entropy(z, batch.targets, batch.mask)

    def evaluate(self, model: SequenceModel) -> Evaluation:
        """Share of correct steps on held-out strings, against a predictor without long-term memory.

        That predictor knows the grammar but not which of ``T``, ``P`` opened the string, so
        it gets every step right but half of the second-to-last ones.

        Parameters
        ----------
        model : SequenceModel
            A model with ``input_size=output_size=7``.

        Returns
        -------
        Evaluation
            ``metric="accuracy"``, higher is better.
        """
        xp = self.xp
        strings = embedded_reber(self.eval_size, seed=self._held_out_rng())
        batch = reber_batch(strings, **self._placement())
        z = evaluated(model, batch.x)  # (T, N, 7)
        inf = xp.asarray(math.inf, dtype=z.dtype, device=device_of(z))
        lowest_legal = xp.min(xp.where(batch.legal, z, inf), axis=-1)
        highest_other = xp.max(xp.where(batch.legal, -inf, z), axis=-1)
        correct = (lowest_legal > highest_other) & batch.mask
        steps = sum(len(s) - 1 for s in strings)
        value = float(xp.sum(xp.astype(correct, xp.int32))) / steps
        data = f"{self.eval_size} held-out strings ({steps} steps)"
        return Evaluation(
            "accuracy", value, 1.0 - 0.5 * len(strings) / steps, "no long-term memory", data, True
        )
