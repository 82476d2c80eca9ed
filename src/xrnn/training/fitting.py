"""Training on arrays in one call: minibatches, validation, early stopping, a progress report.

::

    rng = numpy.random.default_rng(seed)
    for epoch in 1 .. epochs:
        order = rng.permutation(N) if shuffle else arange(N)
        for each run of batch_size indices in order:
            z, _, cache = model.forward(x[batch], lengths=lengths[batch])
            loss, dz = loss_fn(z, y[batch])             # padded steps masked
            _, grads = model.backward(cache, dz, need_dx=False)
            grads, _ = clip_grad_norm(grads, clip)      # when clip is given
            model.set_params(optimizer.step(model.params, grads))
        validation loss (and accuracy, and the metrics) with model.predict

:func:`fit` is that loop, written once with the optimisers and the clipping of
:mod:`xrnn.training.optim`; :class:`History` holds what it measured. Its pieces live
beside it: the data and its checks (:mod:`.fit_data`), the metrics (:mod:`.metrics`),
the learning-rate schedules (:mod:`.schedules`) and the reports (:mod:`.fit_report`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .._util.namespaces import host_rng
from .._util.typing import Array
from .._util.validation import check_int
from ..nn.model import SequenceModel
from .fit_data import FitData, infer_loss, split_off
from .fit_report import Reporter
from .history import History
from .losses import mse, softmax_cross_entropy
from .metrics import Metric, accuracy, metrics_of
from .optim import clip_grad_norm
from .state_checks import copied

__all__ = ["History", "fit"]


def fit(
    model: SequenceModel,
    optimizer: Any,
    x: Any,
    y: Any,
    *,
    loss: str | Callable[..., tuple[Array, Array]] | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    lengths: Any = None,
    validation: tuple[Any, ...] | None = None,
    validation_split: float | None = None,
    metrics: Sequence[str | Callable[..., Any]] = (),
    lr_schedule: Callable[[int], float] | None = None,
    schedule_by: str = "epoch",
    stop_on_nan: bool = True,
    cast: bool = False,
    shuffle: bool = True,
    seed: Any = 0,
    clip: float | None = None,
    callback: Callable[[int, History], None] | None = None,
    patience: int | None = None,
    verbose: bool = True,
) -> History:
    """Train ``model`` on arrays ``x``, ``y`` in minibatches for ``epochs`` passes.

    Parameters
    ----------
    model : SequenceModel
        The model; its parameters are replaced after every batch. It is in training
        mode for the batches and in evaluation mode for validation, and is left in the
        mode it had.
    optimizer : SGD, Adam or AdamW
        Anything with ``step(params, grads) -> params`` (and an ``lr`` for ``lr_schedule``).
    x : array or array-like, shape (T, N, input_size), or (N, T, input_size) if batch_first
        Input sequences, in the model's namespace, device and dtype; lists and pandas
        objects are converted (:mod:`xrnn.nn.inputs`).
    y : array or array-like
        Targets of the ``N`` sequences. With ``head="last"``: ``(N,)`` class indices
        (``loss="cross_entropy"``) or ``(N, output_size)`` values (``"mse"``). With
        ``head="every"``: like ``z`` without its last axis, ``(T, N)`` (``(N, T)``
        batch_first), or like ``z``; a class target of -100 is left out.
    loss : {"mse", "cross_entropy"}, callable or None, default None
        :func:`xrnn.mse` or :func:`xrnn.softmax_cross_entropy` (with the padded steps
        masked), or ``loss(z, y_batch) -> (loss, dz)``; a callable is given a third
        argument, the mask of valid steps ``(T, n)`` (``(n, T)`` batch_first), when
        ``lengths`` are given and ``head="every"``. None: ``"cross_entropy"`` for integer
        ``y``, ``"mse"`` for floating ``y``.
    epochs : int, default 1
        Passes over the data, ``>= 1`` (Keras's default).
    batch_size : int, default 32
        Sequences per update; the last batch of an epoch may be smaller (Keras's default).
    lengths : sequence of int or integer array, shape (N,), optional
        Valid steps of each sequence.
    validation : tuple (x_val, y_val) or (x_val, y_val, lengths_val), optional
        Data to measure after each epoch, laid out like ``x``, ``y``, ``lengths``.
    validation_split : float, optional
        Hold out the last fraction of the sequences (before shuffling, as Keras) as the
        validation data; not with ``validation``.
    metrics : list of {"mae", "rmse", "accuracy"} or callables, default ()
        Measured on the training batches and on the validation data, recorded in
        :attr:`History.metrics` and printed (see :mod:`xrnn.training.metrics`).
    lr_schedule : callable, optional
        ``lr_schedule(t) -> lr``, set as ``optimizer.lr`` before epoch ``t`` (from 0), or
        before update ``t`` with ``schedule_by="step"``: :class:`xrnn.CosineDecay`,
        :class:`xrnn.StepDecay` or any function.
    schedule_by : {"epoch", "step"}, default "epoch"
        What ``t`` counts.
    stop_on_nan : bool, default True
        Stop at the first batch whose loss is NaN or infinite, with a ``RuntimeWarning``
        that says where, keeping the last parameters that were all finite; the epoch
        is not recorded. False: go on.
    cast : bool, default False
        Convert ``x`` and floating ``y`` of another dtype to the model's (a copy); without
        it another dtype is a ``TypeError`` (never a silent float64 to float32).
    shuffle : bool, default True
        Draw a new order of the sequences every epoch (else the given order).
    seed : int or numpy.random.Generator, default 0
        Seed of the orders: ``numpy.random.default_rng(seed).permutation(N)`` per epoch.
    clip : float, optional
        Largest global gradient norm (:func:`xrnn.clip_grad_norm`); none if omitted.
    callback : callable, optional
        ``callback(epoch, history)`` after every epoch, ``epoch`` from 1.
    patience : int, optional
        Stop after this many epochs without a lower validation loss, and restore the
        parameters of the best epoch (needs validation data), saying so in one line.
        The optimiser's state is not restored.
    verbose : bool, default True
        Report each epoch: a tqdm progress bar where tqdm is installed, else one line.

    Returns
    -------
    History
        Per-epoch training loss, validation loss and accuracy, metrics and learning rate.
    """
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have step(params, grads), such as xrnn.Adam, got {optimizer!r:.80}")
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    for name, flag in (("shuffle", shuffle), ("verbose", verbose), ("stop_on_nan", stop_on_nan)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r:.80}")
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < math.inf
    ):
        raise ValueError(f"clip must be None or a positive number, got {clip!r:.80}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function (epoch, history), got {callback!r:.80}")
    _check_schedule(lr_schedule, schedule_by, optimizer)
    if validation is not None and validation_split is not None:
        raise ValueError("give validation or validation_split, not both")
    if patience is not None:
        check_int("patience", patience)
        if validation is None and validation_split is None:
            raise ValueError("patience needs validation data: give validation=(x_val, y_val)")
    x, y = FitData.convert(model, x, y, "", cast)
    loss = infer_loss(model, y) if loss is None else loss
    loss_fn = _loss_function(loss)
    integer_targets = bool(model.xp.isdtype(y.dtype, "integral"))
    chosen = metrics_of(metrics, integer_targets=integer_targets)
    train = FitData.of(model, loss, x, y, lengths, "")
    valid = None
    if validation_split is not None:
        train, valid = split_off(train, validation_split)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
            raise TypeError(
                "validation must be a tuple (x_val, y_val) or (x_val, y_val, lengths_val), "
                f"got {validation!r:.80}"
            )
        extra = validation[2] if len(validation) == 3 else None
        x_val, y_val = FitData.convert(model, validation[0], validation[1], "_val", cast)
        valid = FitData.of(model, loss, x_val, y_val, extra, "_val")

    rng = host_rng(seed)
    history = History()
    best = math.inf
    best_params = copied(model.params)
    was_training = model.training
    report = Reporter(epochs, verbose)
    updates = 0
    previous = model.params  # before the last update: kept if that update made a parameter NaN
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            if lr_schedule is not None and schedule_by == "epoch":
                optimizer.lr = float(lr_schedule(epoch - 1))
            model.train(True)
            order = rng.permutation(train.n).tolist() if shuffle else list(range(train.n))
            total, weight = 0.0, 0.0
            sums = {m.name: [0.0, 0.0] for m in chosen}
            for start in range(0, train.n, batch_size):
                xb, yb, lb, mb = train.batch(order[start : start + batch_size])
                if lr_schedule is not None and schedule_by == "step":
                    optimizer.lr = float(lr_schedule(updates))
                if start == 0:  # the rate the epoch starts with
                    history.lr.append(float(getattr(optimizer, "lr", math.nan)))
                z, _, cache = model.forward(xb, None, lb)
                value, dz = loss_fn(z, yb, mb)
                if stop_on_nan and not math.isfinite(float(value)):
                    history.stopped_on_nan = True
                    _stop_on_nan(model, previous, epoch, start // batch_size + 1, float(value))
                    break
                _, grads = model.backward(cache, dz, need_dx=False)
                if clip is not None:
                    grads, _ = clip_grad_norm(grads, clip)
                previous = model.params
                model.set_params(optimizer.step(previous, grads))
                updates += 1
                w = train.weight(yb, mb, loss)
                total, weight = total + float(value) * w, weight + w
                for m in chosen:
                    part, count = m.measure(z, yb, mb)
                    sums[m.name][0] += part
                    sums[m.name][1] += count
            if history.stopped_on_nan:
                history.lr.pop()
                break
            history.loss.append(total / weight if weight else 0.0)
            for m in chosen:
                history.metrics.setdefault(m.name, []).append(m.result(*sums[m.name]))
            if valid is not None:
                _validate(model, valid, loss, loss_fn, chosen, batch_size, history)
                if history.val_loss[-1] < best:
                    best, history.best_epoch = history.val_loss[-1], epoch
                    best_params = copied(model.params)  # an update in place must not change it
            history.seconds.append(time.perf_counter() - started)
            report.epoch(epoch, history)
            if callback is not None:
                callback(epoch, history)
            if patience is not None and epoch - (history.best_epoch or 0) >= patience:
                history.stopped_early = epoch < epochs
                break
    finally:
        report.close()
        model.train(was_training)
    if patience is not None and history.best_epoch is not None:
        model.set_params(best_params)
        if history.stopped_early:
            report.say(
                f"early stopping at epoch {len(history)}: val_loss not below {best:.4g} for "
                f"{patience} epoch(s); restored the parameters of epoch {history.best_epoch}"
            )
    return history


def _validate(
    model: SequenceModel,
    valid: FitData,
    loss: Any,
    loss_fn: Callable[[Array, Array, Array | None], tuple[Array, Array]],
    chosen: list[Metric],
    batch_size: int,
    history: History,
) -> None:
    """Measure the loss, the accuracy and the metrics on the validation data, into ``history``."""
    model.train(False)
    z = model.predict(valid.x, valid.lengths, batch_size)
    mask = valid.mask(list(range(valid.n)))
    value, _ = loss_fn(z, valid.y, mask)
    history.val_loss.append(float(value))
    if loss == "cross_entropy":
        history.val_accuracy.append(accuracy(z, valid.y, mask))
    for m in chosen:
        history.metrics.setdefault(f"val_{m.name}", []).append(m.result(*m.measure(z, valid.y, mask)))


def _stop_on_nan(
    model: SequenceModel, previous: dict[str, Array], epoch: int, batch: int, value: float
) -> None:
    """Keep the last parameters that are all finite and say where the loss stopped being finite."""
    xp = model.xp
    if not all(bool(xp.all(xp.isfinite(p))) for p in model.params.values()):
        model.set_params(previous)  # the last update made them NaN; the ones before gave a finite loss
    warnings.warn(
        f"fit stopped: the loss was {value} at epoch {epoch}, batch {batch} (NaN or infinite values "
        "in x or y, or a learning rate too large); the model keeps its last parameters that were "
        "all finite, and the history ends with the last whole epoch. stop_on_nan=False trains on",
        RuntimeWarning,
        stacklevel=3,
    )


def _check_schedule(schedule: Any, by: Any, optimizer: Any) -> None:
    if by not in ("epoch", "step"):
        raise ValueError(f"schedule_by must be 'epoch' or 'step', got {by!r:.80}")
    if schedule is None:
        return
    if not callable(schedule):
        raise TypeError(f"lr_schedule must be a function of the epoch (or step), got {schedule!r:.80}")
    if not hasattr(optimizer, "lr"):
        raise TypeError(
            f"lr_schedule needs an optimizer with an attribute lr, got {type(optimizer).__name__}"
        )


def _loss_function(loss: Any) -> Callable[[Array, Array, Array | None], tuple[Array, Array]]:
    if loss == "mse":
        return mse
    if loss == "cross_entropy":
        return softmax_cross_entropy
    if isinstance(loss, str) or not callable(loss):
        raise ValueError(
            f"loss must be 'mse', 'cross_entropy' or a function (z, y) -> (loss, dz), got {loss!r:.80}"
        )

    def call(z: Array, y: Array, mask: Array | None) -> tuple[Array, Array]:
        out = loss(z, y) if mask is None else loss(z, y, mask)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"loss must return a tuple (loss, dz), got {type(out).__name__}")
        return out

    return call
