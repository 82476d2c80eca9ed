"""Training on arrays in one call: minibatches, validation, early stopping, a progress report.

::

    rng = numpy.random.default_rng(seed)
    for epoch in 1 .. epochs:
        order = rng.permutation(N) if shuffle else arange(N)
        for each run of batch_size indices in order:
            z, _, cache = model.forward(x[batch], lengths=lengths[batch])
            loss, dz = loss_fn(z, y[batch])             # padded steps masked
            _, grads = model.backward(cache, dz)
            grads, _ = clip_grad_norm(grads, clip)      # when clip is given
            model.set_params(optimizer.step(model.params, grads))
        validation loss (and accuracy) with model.predict

:func:`fit` is that loop, written once with the optimisers and the clipping of
:mod:`xrnn.training.optim`; :class:`History` holds what it measured.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from array_api_compat import device as device_of

from .._util.namespaces import host_rng, namespace
from .._util.typing import Array
from .._util.validation import check_int, check_shape, lengths_list
from ..nn.model import SequenceModel
from .history import History
from .losses import mse, softmax_cross_entropy
from .optim import clip_grad_norm
from .state_checks import copied

__all__ = ["History", "fit"]

LOSSES = ("mse", "cross_entropy")


def fit(
    model: SequenceModel,
    optimizer: Any,
    x: Array,
    y: Array,
    *,
    loss: str | Callable[..., tuple[Array, Array]],
    epochs: int,
    batch_size: int,
    lengths: Any = None,
    validation: tuple[Any, ...] | None = None,
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
    optimizer : SGD or Adam
        Anything with ``step(params, grads) -> params``.
    x : array, shape (T, N, input_size), or (N, T, input_size) if the model is batch_first
        Input sequences, in the model's namespace, device and dtype.
    y : array
        Targets of the ``N`` sequences, same namespace. With ``head="last"``: ``(N,)``
        class indices (``loss="cross_entropy"``) or ``(N, output_size)`` values
        (``"mse"``). With ``head="every"``: like ``z`` without its last axis, ``(T, N)``
        (``(N, T)`` batch_first), or like ``z``; a class target of -100 is left out.
    loss : {"mse", "cross_entropy"} or callable
        :func:`xrnn.mse` or :func:`xrnn.softmax_cross_entropy` (with the padded steps
        masked), or ``loss(z, y_batch) -> (loss, dz)``; a callable is given a third
        argument, the mask of valid steps ``(T, n)`` (``(n, T)`` batch_first), when
        ``lengths`` are given and ``head="every"``.
    epochs : int
        Passes over the data, ``>= 1``.
    batch_size : int
        Sequences per update; the last batch of an epoch may be smaller.
    lengths : sequence of int or integer array, shape (N,), optional
        Valid steps of each sequence.
    validation : tuple (x_val, y_val) or (x_val, y_val, lengths_val), optional
        Data to measure after each epoch, laid out like ``x``, ``y``, ``lengths``.
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
        parameters of the best epoch (needs ``validation``). The optimiser's state is
        not restored.
    verbose : bool, default True
        Report each epoch: a tqdm progress bar where tqdm is installed, else one line.

    Returns
    -------
    History
        Per-epoch training loss, and validation loss and accuracy.
    """
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have step(params, grads), such as xrnn.Adam, got {optimizer!r}")
    loss_fn = _loss_function(loss)
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    for name, flag in (("shuffle", shuffle), ("verbose", verbose)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < math.inf
    ):
        raise ValueError(f"clip must be None or a positive number, got {clip!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function (epoch, history), got {callback!r}")
    if patience is not None:
        check_int("patience", patience)
        if validation is None:
            raise ValueError("patience needs validation data: give validation=(x_val, y_val)")
    train = _Data.of(model, loss, x, y, lengths, "")
    valid = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
            raise TypeError(
                "validation must be a tuple (x_val, y_val) or (x_val, y_val, lengths_val), "
                f"got {validation!r}"
            )
        extra = validation[2] if len(validation) == 3 else None
        valid = _Data.of(model, loss, validation[0], validation[1], extra, "_val")

    rng = host_rng(seed)
    history = History()
    best = math.inf
    best_params = copied(model.params)
    was_training = model.training
    report = _reporter(epochs, verbose)
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            model.train(True)
            order = rng.permutation(train.n).tolist() if shuffle else list(range(train.n))
            total, weight = 0.0, 0.0
            for start in range(0, train.n, batch_size):
                xb, yb, lb, mb = train.batch(order[start : start + batch_size])
                z, _, cache = model.forward(xb, None, lb)
                value, dz = loss_fn(z, yb, mb)
                _, grads = model.backward(cache, dz)
                if clip is not None:
                    grads, _ = clip_grad_norm(grads, clip)
                model.set_params(optimizer.step(model.params, grads))
                w = train.weight(yb, mb, loss)
                total, weight = total + float(value) * w, weight + w
            history.loss.append(total / weight if weight else 0.0)
            if valid is not None:
                model.train(False)
                z = model.predict(valid.x, valid.lengths, batch_size)
                mask = valid.mask(list(range(valid.n)))
                value, _ = loss_fn(z, valid.y, mask)
                history.val_loss.append(float(value))
                if loss == "cross_entropy":
                    history.val_accuracy.append(_accuracy(z, valid.y, mask))
                if history.val_loss[-1] < best:
                    best, history.best_epoch = history.val_loss[-1], epoch
                    best_params = copied(model.params)  # an update in place must not change it
            history.seconds.append(time.perf_counter() - started)
            report(epoch, history)
            if callback is not None:
                callback(epoch, history)
            if patience is not None and epoch - (history.best_epoch or 0) >= patience:
                history.stopped_early = epoch < epochs
                break
    finally:
        report(0, history)
        model.train(was_training)
    if patience is not None and history.best_epoch is not None:
        model.set_params(best_params)
    return history


@dataclasses.dataclass
class _Data:
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

    @classmethod
    def of(cls, model: SequenceModel, loss: Any, x: Array, y: Array, lengths: Any, suffix: str) -> _Data:
        xp = namespace(**{f"x{suffix}": x, f"y{suffix}": y, "model": model.params["head.weight"]})
        layout = "(N, T, input_size)" if model.batch_first else "(T, N, input_size)"
        check_shape(f"x{suffix}", x, (None, None, model.rnn.input_size), layout)
        if 0 in tuple(x.shape[:2]):  # nothing to learn from or to measure: refused before any update
            raise ValueError(
                f"x{suffix} must hold at least one step of one sequence {layout}, got shape {tuple(x.shape)}"
            )
        if x.dtype != model.dtype:  # checked before any update, for the validation data too
            want = xp.empty((0,), dtype=model.dtype).dtype  # a dtype, printed as x.dtype is
            raise TypeError(f"x{suffix} must have the model's dtype {want}, got {x.dtype}")
        x_axis = 0 if model.batch_first else 1
        n, steps = int(x.shape[x_axis]), int(x.shape[1 - x_axis])
        every = model.head_mode == "every"
        base: tuple[int, ...] = (n,)
        meaning = "(N"
        if every:
            base, meaning = ((n, steps), "(N, T") if model.batch_first else ((steps, n), "(T, N")
        if loss in LOSSES:
            out = model.head.out_features
            shape, meaning = (
                (base, meaning + ")")
                if loss == "cross_entropy"
                else (
                    (*base, out),
                    meaning + ", output_size)",
                )
            )
            if tuple(y.shape) != shape:
                raise ValueError(
                    f"y{suffix} must have shape {shape} {meaning} for loss={loss!r} with "
                    f"head={model.head_mode!r}, got shape {tuple(y.shape)}"
                )
            if loss == "cross_entropy" and not xp.isdtype(y.dtype, "integral"):
                raise TypeError(
                    f"y{suffix} must hold integer class indices for loss='cross_entropy', got {y.dtype}"
                )
        y_axis = x_axis if every else 0
        if len(y.shape) <= y_axis or y.shape[y_axis] != n:
            raise ValueError(
                f"y{suffix} must hold the targets of the N={n} sequences of x{suffix}, "
                f"got shape {tuple(y.shape)}"
            )
        lens = None if lengths is None else lengths_list(lengths, n, steps)
        return cls(x, y, lens, n, steps, x_axis, y_axis, every, model.batch_first, xp)

    def batch(self, idx: list[int]) -> tuple[Array, Array, list[int] | None, Array | None]:
        """``x``, ``y``, lengths and mask of the sequences ``idx``."""
        xp = self.xp
        rows = xp.asarray(idx, dtype=xp.int64, device=device_of(self.x))
        xb = xp.take(self.x, rows, axis=self.x_axis)
        yb = xp.take(self.y, xp.asarray(idx, dtype=xp.int64, device=device_of(self.y)), axis=self.y_axis)
        lb = None if self.lengths is None else [self.lengths[i] for i in idx]
        return xb, yb, lb, self.mask(idx)

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


def _loss_function(loss: Any) -> Callable[[Array, Array, Array | None], tuple[Array, Array]]:
    if loss == "mse":
        return mse
    if loss == "cross_entropy":
        return softmax_cross_entropy
    if isinstance(loss, str) or not callable(loss):
        raise ValueError(
            f"loss must be 'mse', 'cross_entropy' or a function (z, y) -> (loss, dz), got {loss!r}"
        )

    def call(z: Array, y: Array, mask: Array | None) -> tuple[Array, Array]:
        out = loss(z, y) if mask is None else loss(z, y, mask)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"loss must return a tuple (loss, dz), got {type(out).__name__}")
        return out

    return call


def _accuracy(z: Array, y: Array, mask: Array | None) -> float:
    """Fraction of the kept positions (target not -100, mask True) whose largest output is the target."""
    xp = namespace(z=z, y=y)
    kept = y != -100
    kept = kept if mask is None else kept & mask
    hits = (xp.argmax(z, axis=-1) == y) & kept
    count = float(xp.sum(xp.astype(kept, xp.int64)))
    return float(xp.sum(xp.astype(hits, xp.int64))) / count if count else 0.0


def _reporter(epochs: int, verbose: bool) -> Callable[[int, History], None]:
    """``report(epoch, history)`` after each epoch, and ``report(0, history)`` at the end."""
    if not verbose:
        return lambda epoch, history: None
    try:
        from tqdm import tqdm
    except ImportError:

        def line(epoch: int, history: History) -> None:
            if epoch:
                print(f"epoch {epoch}/{epochs}: {history.summary(epoch)}", flush=True)

        return line
    bar = tqdm(total=epochs, unit="epoch", desc="fit")

    def update(epoch: int, history: History) -> None:
        if epoch == 0:
            bar.close()
            return
        bar.set_postfix_str(history.summary(epoch), refresh=False)
        bar.update(1)

    return update
