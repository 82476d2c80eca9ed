"""The training loop: batches from a task, forward, loss, backward, clipping, an optimiser step.

::

    for each step:
        batch = task.batch(rng)
        loss, grads = gradient(model, task, batch)     # local_gradient unless given
        grads, _ = clip_grad_norm(grads, clip)
        model.set_params(optimizer.step(model.params, grads))

The gradient of a batch is the one seam: :func:`local_gradient` (forward, loss, backward
on this process) by default, or a function with its signature, such as the one of
:func:`xrnn.distributed.train` that reduces the gradients of every process's share of the
batch before the clipping and the update.

Also :func:`gradient_by_step`, the size of the gradient that reaches each time step
(the vanishing-gradient measurement of ``python -m xrnn gradflow``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from array_api_compat import device as device_of

from .._util.namespaces import host_rng, namespace
from .._util.typing import Array
from .._util.validation import check_int
from ..nn.model import SequenceModel
from .optim import clip_grad_norm

__all__ = ["Gradient", "gradient_by_step", "local_gradient", "train"]

#: ``gradient(model, task, batch) -> (loss, grads)``: the loss of a batch and the gradient
#: of every parameter under the keys of ``model.params``.
Gradient = Callable[[SequenceModel, Any, Any], tuple[Any, dict[str, Array]]]


def local_gradient(model: SequenceModel, task: Any, batch: Any) -> tuple[Array, dict[str, Array]]:
    """The loss of a batch and the gradient of every parameter, on this process.

    The default ``gradient`` of :func:`train`: ``model.forward(batch[0])``, then
    ``task.loss``, then ``model.backward``.

    Parameters
    ----------
    model : SequenceModel
        The model.
    task : AddingTask, ReberTask or TextTask
        Anything with ``loss(z, batch) -> (loss, dz)``.
    batch : tuple
        From ``task.batch``; its first item is ``x (T, N, input_size)``.

    Returns
    -------
    loss : array, shape ()
        The task's loss of the batch.
    grads : dict of str to array
        Its gradient with respect to every parameter, keys and shapes of ``model.params``.
    """
    z, _, cache = model.forward(batch[0])  # (T, N, O)
    loss, dz = task.loss(z, batch)
    _, grads = model.backward(cache, dz, need_dx=False)
    return loss, grads


def train(
    model: SequenceModel,
    task: Any,
    optimizer: Any,
    *,
    steps: int,
    clip: float | None = 1.0,
    seed: Any = None,
    callback: Callable[[int, float], None] | None = None,
    gradient: Gradient | None = None,
) -> list[float]:
    """Train ``model`` on ``task`` for ``steps`` batches.

    Parameters
    ----------
    model : SequenceModel
        The model; its parameters are replaced after every step.
    task : AddingTask, ReberTask or TextTask
        Anything with ``batch(rng)`` (first item ``x (T, N, I)``) and ``loss(z, batch)``
        returning ``(loss, dz)``.
    optimizer : SGD or Adam
        Anything with ``step(params, grads) -> params``.
    steps : int
        Number of updates, ``>= 0``.
    clip : float or None, default 1.0
        Largest global gradient norm (None: no clipping).
    seed : int or numpy.random.Generator, optional
        Seed of the training batches.
    callback : callable, optional
        ``callback(step, loss)`` after every update, ``step`` counting from 1.
    gradient : callable, optional
        ``gradient(model, task, batch) -> (loss, grads)`` (default :func:`local_gradient`):
        how the loss and the gradients of a batch are computed, e.g. over several
        processes (:func:`xrnn.distributed.train`). Clipping acts on what it returns.

    Returns
    -------
    list of float
        The training loss of every step.
    """
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    model._require_every_step("xrnn.train")
    check_int("steps", steps, least=0)
    if gradient is None:
        gradient = local_gradient
    elif not callable(gradient):
        raise TypeError(
            f"gradient must be a function (model, task, batch) -> (loss, grads), got {gradient!r}"
        )
    rng = host_rng(seed)
    losses: list[float] = []
    for step in range(1, steps + 1):
        batch = task.batch(rng)
        loss, grads = gradient(model, task, batch)
        if clip is not None:
            grads, _ = clip_grad_norm(grads, clip)
        model.set_params(optimizer.step(model.params, grads))
        losses.append(float(loss))
        if callback is not None:
            callback(step, losses[-1])
    return losses


def gradient_by_step(model: SequenceModel, x: Array) -> Array:
    """How much the last step's output depends on the input at each step.

    Backpropagates ``d(sum of the last step's outputs)`` through the model and measures,
    for every step ``t``, the norm of the gradient with respect to ``x[t]``, averaged
    over the batch. A recurrent network whose gradient vanishes shows values falling
    exponentially as ``t`` moves away from the last step.

    Parameters
    ----------
    model : SequenceModel
        The model.
    x : array, shape (T, N, input_size)
        Input sequences, in the model's namespace and dtype.

    Returns
    -------
    array, shape (T,)
        ``mean_n ||d sum(z[T-1, n]) / d x[t, n]||`` for ``t = 0 .. T-1``.
    """
    xp = namespace(x=x)
    model._require_every_step("gradient_by_step")
    z, _, cache = model.forward(x, training=False)
    t_steps = z.shape[0]
    zeros = xp.zeros((t_steps - 1, *z.shape[1:]), dtype=z.dtype, device=device_of(z))
    dz = xp.concat([zeros, xp.ones_like(z[-1:, ...])], axis=0)  # (T, N, O)
    dx, _ = model.backward(cache, dz)  # (T, N, I)
    return xp.mean(xp.sqrt(xp.sum(dx * dx, axis=-1)), axis=1)
