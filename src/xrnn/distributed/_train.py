"""Synchronous data-parallel training over MPI: :func:`train`, run by every process of the job.

Every step, each process computes the loss and the gradients of its block of the batch;
one ``Allreduce`` sums, in one buffer, every gradient weighted by the block's loss count,
the weighted loss and the count; dividing by the total count gives exactly the gradient
and the loss of the whole batch. Clipping and the update then run on every process
alike, so the parameters stay identical without ever being sent again.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from array_api_compat import is_array_api_obj

from .._util.namespaces import convert, host_rng, to_host
from .._util.typing import Array
from .._util.validation import check_int
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..nn.model import SequenceModel
from ..training.loop import local_gradient
from ..training.loop import train as train_locally
from ..training.optim import Optimizer
from . import _mpi
from ._agreement import dropout_generator, task_facts
from ._predict import _dtype_name

__all__ = ["block_bounds", "train"]

#: The metadata key of a checkpoint written by :func:`train`.
META = "xrnn.distributed"


def train(
    model: SequenceModel,
    task: Any,
    optimizer: Optimizer,
    *,
    steps: int,
    comm: Any = None,
    clip: float | None = 1.0,
    seed: Any = None,
    batches: Iterable[Any] | None = None,
    callback: Callable[[int, float], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> list[float]:
    """Train ``model`` on several processes at once; called by every process of the job.

    Run as ``mpiexec -n K python script.py``. Rank 0's parameters, optimiser state and
    batch generator are broadcast at the start; every step each process computes the
    gradients of its share of the batch, one ``Allreduce`` sums them, and every process
    applies the same update, exactly the one :func:`xrnn.train` makes on the whole batch.

    Parameters
    ----------
    model : SequenceModel
        The model, of the same configuration and dtype on every process (its values on
        ranks other than 0 are replaced by rank 0's).
    task : AddingTask, ReberTask or TextTask
        Anything with ``batch(rng)`` (first item ``x (T, N, I)``) and
        ``loss(z, batch) -> (loss, dz)``, whose loss is a mean over ``loss_count(batch)``
        terms (without that method: over the ``N`` sequences). Without ``batches`` it
        must also have ``sequence_axes``, the axis of the sequences in each item of a batch.
    optimizer : SGD or Adam
        The same kind and hyperparameters on every process.
    steps : int
        Total number of updates, ``>= 0``; a resumed run counts those already made.
    comm : mpi4py.MPI.Intracomm, optional
        The processes (default ``MPI.COMM_WORLD``); one process needs no ``mpiexec``.
    clip : float or None, default 1.0
        Largest norm of the global gradient, applied after the reduction (None: no
        clipping); the default of :func:`xrnn.train`, so the two are drop-in swaps.
    seed : int or numpy.random.Generator, optional
        Seed of rank 0's batch generator, whose state every process then shares (as
        :func:`xrnn.train`'s ``seed``). With dropout, each rank's masks come from
        ``numpy.random.default_rng([base, rank])``, ``base`` drawn from a copy of that
        shared generator (the model's ``rnn.generator`` is replaced by it): the ranks
        draw different masks, a run is reproducible from its seed, and the parameters
        stay identical on every rank.
    batches : iterable, optional
        This process's own batches, one per step, each like ``task.batch``'s (e.g. ``x``
        of shape ``(T, N_r, I)``, ``N_r`` may differ between processes). Without it every
        process draws the same global batch of ``N`` sequences with ``task.batch`` and
        keeps its contiguous block (:func:`block_bounds`).
    callback : callable, optional
        ``callback(step, loss)`` after every update, with the loss of the whole batch;
        called on rank 0 only, so a progress line is printed once.
    checkpoint : str or path, optional
        File that rank 0 writes atomically (:func:`xrnn.save_checkpoint`) after every
        ``checkpoint_every`` steps and after the last one, with the step and the batch
        generator's state.
    checkpoint_every : int, optional
        Steps between checkpoints (default: only after the last step).
    resume : bool, default False
        Continue from ``checkpoint`` if that file exists: rank 0 reads it and every process
        continues from its parameters, optimiser state, step and batch generator, on any
        number of processes. With ``batches``, the iterable must start at that step's batch.

    Returns
    -------
    list of float
        The loss of the whole batch at every step made by this call (the same on every rank).

    Raises
    ------
    ValueError
        On every rank, when the ranks disagree on the model's sizes or dtype, the
        optimiser, ``steps``, ``clip`` or the other settings (checked before the first
        broadcast), or on the task: its class, its numeric options, and the shapes and
        dtypes of a global batch (the batch size and the sequence length; checked after
        the broadcast, before the first step), or when the checkpoint cannot be resumed.
    ImportError
        If mpi4py is not installed (``pip install '.[distributed]' (from the checkout)``).

    Notes
    -----
    With blocks of ``c_r`` loss terms (``loss_count``), losses ``l_r`` and gradients
    ``g_r``, the reduced gradient is ``sum_r c_r g_r / sum_r c_r``: the gradient of the
    whole batch's mean even when the blocks differ in size. An exception on one process
    (with more than one) is printed with its rank and ends the whole job through
    ``MPI.COMM_WORLD.Abort``, so no process waits forever.
    """
    MPI = _mpi.mpi()
    # Bad arguments on one process end the job too: the others would wait in the first collective.
    with _mpi.abort_on_error(comm if isinstance(comm, MPI.Intracomm) else MPI.COMM_WORLD):
        comm = _mpi.communicator(comm)
        _check_arguments(model, optimizer, steps, batches, callback, checkpoint, checkpoint_every, resume)
        return _train(model, task, optimizer, steps, comm, clip, seed, batches, callback, checkpoint,
                      checkpoint_every, resume)  # fmt: skip


def _check_arguments(
    model: Any,
    optimizer: Any,
    steps: Any,
    batches: Any,
    callback: Any,
    checkpoint: Any,
    checkpoint_every: Any,
    resume: bool,
) -> None:
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    model._require_every_step("xrnn.distributed.train")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an xrnn optimiser (SGD, Adam), got {type(optimizer).__name__}")
    check_int("steps", steps, least=0)
    if checkpoint_every is not None:
        check_int("checkpoint_every", checkpoint_every)
        if checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint file: pass checkpoint=PATH")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint to resume from: pass checkpoint=PATH")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function (step, loss), got {callback!r}")
    if batches is not None:
        _check_batches(batches)


def _train(
    model: SequenceModel,
    task: Any,
    optimizer: Optimizer,
    steps: int,
    comm: Any,
    clip: float | None,
    seed: Any,
    batches: Iterable[Any] | None,
    callback: Callable[[int, float], None] | None,
    checkpoint: str | os.PathLike[str] | None,
    every: int | None,
    resume: bool,
) -> list[float]:
    facts = {
        "model": model.config | {"dtype": _dtype_name(model.dtype)},
        "optimizer": {"name": optimizer.name, **optimizer.hyperparameters()},
        "settings": {"steps": steps, "clip": clip, "own batches": batches is not None,
                     "checkpoint_every": every, "resume": resume},
    }  # fmt: skip
    _mpi.check_agreement(comm, facts)
    rng = host_rng(seed)
    start = 0
    if resume and checkpoint is not None:
        path = pathlib.Path(checkpoint)
        state = _mpi.on_root(comm, lambda: _read_checkpoint(path, model, optimizer, steps))
        if state is not None:
            start, rng_state = state
            if rng_state is not None:
                rng.bit_generator.state = rng_state
    _broadcast_state(comm, model, optimizer, rng)
    _mpi.check_agreement(comm, {"task": task_facts(task, rng, batches is not None)})  # one global batch
    if model.rnn.dropout > 0:  # each rank its own masks, the parameters identical
        model.rnn.generator = dropout_generator(rng, comm.rank)

    feed = task if batches is None else _OwnBatches(task, batches)
    gradient = _ReducedGradient(comm, split=batches is None)

    def after_step(step: int, loss: float) -> None:
        step += start
        if comm.rank != 0:
            return
        if callback is not None:
            callback(step, loss)
        if checkpoint is not None and (step == steps or (every is not None and step % every == 0)):
            meta = {"step": step, "batch_rng": rng.bit_generator.state if batches is None else None}
            save_checkpoint(checkpoint, model, optimizer, metadata={META: meta})

    return train_locally(
        model,
        feed,
        optimizer,
        steps=steps - start,
        clip=clip,
        seed=rng,
        callback=after_step,
        gradient=gradient,
    )


def block_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous block of ``n`` sequences that process ``rank`` of ``size`` trains on.

    Parameters
    ----------
    n : int
        Sequences in the global batch, ``>= size``.
    rank : int
        The process, ``0 <= rank < size``.
    size : int
        Number of processes.

    Returns
    -------
    start, stop : int
        Rows ``start:stop``; the first ``n % size`` blocks have one sequence more.

    Examples
    --------
    >>> from xrnn.distributed import block_bounds
    >>> [block_bounds(65, r, 2) for r in range(2)]
    [(0, 33), (33, 65)]
    """
    check_int("size", size)
    check_int("rank", rank, least=0)
    check_int("n", n, least=0)
    if rank >= size:
        raise ValueError(f"rank must be below size={size}, got {rank}")
    if n < size:
        raise ValueError(
            f"a batch of {n} sequences cannot be split over {size} processes (one at least each)"
        )
    q, r = divmod(n, size)
    start = rank * q + min(rank, r)
    return start, start + q + (rank < r)


class _ReducedGradient:
    """The ``gradient`` of :func:`xrnn.train` that sums the blocks of every process in one Allreduce."""

    def __init__(self, comm: Any, *, split: bool) -> None:
        self.comm, self.split = comm, split

    def __call__(self, model: SequenceModel, task: Any, batch: Any) -> tuple[Array, dict[str, Array]]:
        xp = model.xp
        if self.split:
            n = int(batch[0].shape[1])
            batch = _rows(task, batch, *block_bounds(n, self.comm.rank, self.comm.size))
        loss, grads = local_gradient(model, task, batch)
        shapes = model.param_shapes()
        count = xp.asarray(_loss_count(task, batch), dtype=model.dtype, device=model.device)
        flat = _mpi.pack([grads[k] * count for k in shapes] + [loss * count, count], xp=xp)
        flat = _mpi.allreduce_sum(self.comm, flat, xp=xp)  # (P + 2,)
        total = xp.maximum(flat[-1], xp.asarray(1e-30, dtype=model.dtype, device=model.device))
        return flat[-2] / total, _mpi.unpack(flat[:-2] / total, shapes, xp=xp)


class _OwnBatches:
    """``task`` with batches taken from this process's iterable instead of drawn."""

    def __init__(self, task: Any, batches: Iterable[Any]) -> None:
        self.task, self.drawn = task, 0
        self._batches: Iterator[Any] = iter(batches)

    def batch(self, rng: Any) -> Any:
        try:
            out = next(self._batches)
        except StopIteration:
            raise ValueError(f"batches ran out after {self.drawn}: it must give one batch per step") from None
        self.drawn += 1
        return out

    def loss(self, z: Array, batch: Any) -> Any:
        return self.task.loss(z, batch)

    def loss_count(self, batch: Any) -> Any:
        return _loss_count(self.task, batch)


def _rows(task: Any, batch: Any, start: int, stop: int) -> Any:
    """The sequences ``start:stop`` of a batch, each item cut along its ``task.sequence_axes`` entry."""
    axes = getattr(task, "sequence_axes", None)
    if axes is None:
        raise TypeError(
            f"task ({type(task).__name__}) must have sequence_axes, the axis of the sequences in each "
            "item of its batches, to split them over processes; or give each process its own batches="
        )
    if len(axes) != len(batch):
        raise ValueError(f"task.sequence_axes has {len(axes)} entries for a batch of {len(batch)} items")
    cut = [a[(slice(None),) * axis + (slice(start, stop), ...)] for a, axis in zip(batch, axes)]
    return type(batch)(*cut) if hasattr(batch, "_fields") else tuple(cut)


def _loss_count(task: Any, batch: Any) -> Any:
    count = getattr(task, "loss_count", None)
    return count(batch) if count is not None else batch[0].shape[1]


def _check_batches(batches: Any) -> None:
    if not isinstance(batches, Iterable):
        raise TypeError(f"batches must be an iterable of batches, one per step, got {type(batches).__name__}")
    if isinstance(batches, (tuple, list)) and batches and is_array_api_obj(batches[0]):
        raise TypeError("batches must be an iterable of batches, one per step, got a single batch of arrays")


def _broadcast_state(comm: Any, model: SequenceModel, optimizer: Optimizer, rng: Any) -> None:
    """Rank 0's parameters (one Bcast), optimiser state and batch generator on every rank."""
    xp, shapes = model.xp, model.param_shapes()
    params = model.params
    flat = _mpi.pack([params[k] for k in shapes], xp=xp)
    model.set_params(_mpi.unpack(_mpi.broadcast(comm, flat, xp=xp), shapes, xp=xp))
    root = None
    if comm.rank == 0:
        arrays = {k: to_host(v) for k, v in optimizer.state_arrays().items()}
        root = (optimizer.state["step"], arrays, rng.bit_generator.state)
    step, arrays, rng_state = comm.bcast(root, root=0)
    if comm.rank != 0:
        place = {"xp": xp, "dtype": model.dtype, "device": model.device}
        optimizer.load_state(step, {k: convert(v, **place) for k, v in arrays.items()})
        rng.bit_generator.state = rng_state


def _read_checkpoint(
    path: pathlib.Path, model: SequenceModel, optimizer: Optimizer, steps: int
) -> tuple[int, Any] | None:
    """On rank 0: load ``path`` into the model and the optimiser; its step and generator state."""
    if not path.exists():
        return None
    saved = load_checkpoint(path, model=model)
    meta = saved.metadata.get(META)
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise ValueError(f"{path} was not written by xrnn.distributed.train: it has no step to resume from")
    if saved.optimizer is None or saved.optimizer.name != optimizer.name:
        found = None if saved.optimizer is None else saved.optimizer.name
        raise ValueError(f"{path} holds the state of optimizer {found!r}, not of {optimizer.name!r}")
    if meta["step"] > steps:
        raise ValueError(f"{path} is at step {meta['step']}, past steps={steps}")
    optimizer.load_state(saved.optimizer.state["step"], saved.optimizer.state_arrays())
    return meta["step"], meta.get("batch_rng")
