"""What the training loop needs of MPI: one import, flat buffers, agreement, collective errors, abort.

mpi4py is imported on first use, so ``import xrnn.distributed`` works without it. Arrays
travel as one flat buffer each: NumPy arrays as they are; CuPy arrays as device memory
when the MPI library is CUDA-aware (``XRNN_MPI_CUDA_AWARE=1``), else through the host;
arrays of any other namespace through the host.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, TypeVar

from array_api_compat import device as device_of
from array_api_compat import is_cupy_array, is_numpy_array

from .._util.namespaces import convert, to_host
from .._util.typing import Array

T = TypeVar("T")

EXTRA = "pip install '.[distributed]' (from the checkout)"

#: Seconds an aborting process waits after writing its error and before ``Abort``, for
#: mpiexec to forward the message: once, under load, a job ended without it.
_FORWARD_SECONDS = 0.5


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, or an ImportError that names the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"xrnn.distributed.train needs mpi4py and an MPI library: {EXTRA}") from exc
    return MPI


def communicator(comm: Any) -> Any:
    """``comm``, or ``MPI.COMM_WORLD`` when it is None; a TypeError for anything but an intracommunicator."""
    MPI = mpi()
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm must be an mpi4py intracommunicator (e.g. MPI.COMM_WORLD), got {comm!r}")
    return comm


class CollectiveError(ValueError):
    """An error that every process raises together, so that none waits for another.

    Raised by :func:`xrnn.distributed.train` on every process when the processes disagree
    (models of other sizes, other optimisers or settings) or when rank 0 cannot read the
    checkpoint to resume from. It ends each process as any exception does, without
    ``MPI.COMM_WORLD.Abort``.
    """

    __module__ = "xrnn.distributed"


@contextlib.contextmanager
def abort_on_error(comm: Any) -> Iterator[None]:
    """Turn an exception on one process into the end of the whole job, not a hang.

    The process prints which rank failed and its traceback to stderr, then calls
    ``MPI.COMM_WORLD.Abort``: the others would otherwise wait forever in the next
    collective call. A :class:`CollectiveError` (raised by every process alike) and any
    exception on a communicator of one process propagate as usual.
    """
    try:
        yield
    except CollectiveError:
        raise
    except BaseException:
        if comm.size == 1:
            raise
        text = traceback.format_exc()
        sys.stderr.write(
            f"xrnn.distributed: rank {comm.rank} of {comm.size} raised; aborting the job\n{text}"
        )
        sys.stderr.flush()
        time.sleep(_FORWARD_SECONDS)
        mpi().COMM_WORLD.Abort(1)
        raise  # not reached: Abort ends the process


def on_root(comm: Any, read: Callable[[], T]) -> T:
    """Run ``read()`` on rank 0 and give its result to every rank; its error is raised on every rank."""
    outcome: tuple[bool, Any] | None = None
    if comm.rank == 0:
        try:
            outcome = (True, read())
        except Exception as exc:  # handed to every rank, so they all stop together
            outcome = (False, f"{type(exc).__name__}: {exc}")
    ok, value = comm.bcast(outcome, root=0)
    if not ok:
        raise CollectiveError(f"rank 0 failed: {value}")
    return value


def check_agreement(comm: Any, facts: Mapping[str, Any]) -> None:
    """Raise a CollectiveError on every rank when any rank's ``facts`` differ from rank 0's.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        The processes.
    facts : dict
        What must be equal everywhere (sizes of the model, the optimiser, the step count, ...),
        picklable values; dict values are compared and reported key by key.
    """
    every = comm.allgather(dict(facts))
    problems = []
    for rank, theirs in enumerate(every[1:], start=1):
        for key, ours in every[0].items():
            if theirs.get(key) == ours:
                continue
            if isinstance(ours, dict) and isinstance(theirs.get(key), dict):
                diff = [k for k in sorted(set(ours) | set(theirs[key])) if ours.get(k) != theirs[key].get(k)]
                shown = ", ".join(f"{k} {theirs[key].get(k)!r} (rank 0: {ours.get(k)!r})" for k in diff)
                problems.append(f"rank {rank} has {key} with {shown}")
            else:
                problems.append(f"rank {rank} has {key} {theirs.get(key)!r} (rank 0: {ours!r})")
    if problems:
        raise CollectiveError(
            "the processes must train the same model the same way, but " + "; ".join(problems)
        )


def pack(arrays: list[Array], *, xp: ModuleType) -> Array:
    """The arrays flattened and concatenated into one new 1-d array."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def unpack(flat: Array, shapes: Mapping[str, tuple[int, ...]], *, xp: ModuleType) -> dict[str, Array]:
    """The inverse of :func:`pack` over ``shapes`` (in their order)."""
    out, start = {}, 0
    for key, shape in shapes.items():
        size = 1
        for s in shape:
            size *= s
        out[key] = xp.reshape(flat[start : start + size], shape)
        start += size
    return out


def allreduce_sum(comm: Any, flat: Array, *, xp: ModuleType) -> Array:
    """The elementwise sum of ``flat`` (1-d, a new array) over every rank, with one ``Allreduce``."""
    wire = _wire(flat)
    comm.Allreduce(mpi().IN_PLACE, wire, op=mpi().SUM)
    return wire if wire is flat else convert(wire, xp=xp, dtype=flat.dtype, device=device_of(flat))


def broadcast(comm: Any, flat: Array, *, xp: ModuleType) -> Array:
    """Rank 0's ``flat`` (1-d, a new array) on every rank, with one ``Bcast``."""
    wire = _wire(flat)
    comm.Bcast(wire, root=0)
    return wire if wire is flat else convert(wire, xp=xp, dtype=flat.dtype, device=device_of(flat))


def _wire(flat: Array) -> Any:
    """A writable buffer that MPI can read and write: ``flat`` itself, or a host copy."""
    if is_numpy_array(flat):
        return flat
    if is_cupy_array(flat) and os.environ.get("XRNN_MPI_CUDA_AWARE") == "1":
        import cupy

        cupy.cuda.get_current_stream().synchronize()  # MPI reads the memory outside CuPy's stream
        return flat
    return to_host(flat)
