"""Run by tests/test_distributed.py under ``mpiexec -n 2``: distributed.train against xrnn.train.

``python mpi_cases.py train OUT_DIR``: every case trains on every rank with
:func:`xrnn.distributed.train` and, on rank 0, with :func:`xrnn.train` on the whole batch
in one process; rank 0 writes ``OUT_DIR/results.json`` (per case: the largest parameter and
loss differences, and the largest difference between the ranks' parameters).

``python mpi_cases.py raise``, ``mismatch`` and ``bad-argument``: the faults (rank 1 raises
at step 3; rank 1 builds a smaller model; rank 1 passes ``steps=-1``).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
from typing import Any

import numpy as np
from mpi4py import MPI

import xrnn
from xrnn import distributed

COMM = MPI.COMM_WORLD
STEPS = 20


def _task(name: str, n: int) -> Any:
    if name == "adding":
        return xrnn.AddingTask(6, n, dtype="float64")
    if name == "reber":
        return xrnn.ReberTask(n, dtype="float64")
    return xrnn.TextTask("the quick brown fox jumps over the lazy dog. " * 3, 7, n, dtype="float64")


def _model(cell: str, task: Any, seed: int) -> xrnn.SequenceModel:
    return xrnn.SequenceModel(cell, task.input_size, 5, task.output_size, dtype="float64", seed=seed)


def _optimizer(name: str) -> Any:
    return xrnn.Adam(lr=2e-2) if name == "adam" else xrnn.SGD(lr=0.2, momentum=0.9)


# name: (cell, task, optimizer, clip, global batch size)
CASES = {
    "lstm-adam-clip": ("lstm", "adding", "adam", 0.5, 16),
    "gru-adam-clip": ("gru", "adding", "adam", 0.5, 16),
    "lstm-sgd-clip-odd": ("lstm", "adding", "sgd", 0.1, 9),
    "gru-sgd-odd": ("gru", "adding", "sgd", None, 9),
    "lstm-reber-odd": ("lstm", "reber", "adam", 1.0, 7),
    "gru-text-odd": ("gru", "text", "sgd", 1.0, 5),
}


def _reference(case: tuple[Any, ...], steps: int = STEPS) -> tuple[dict[str, Any], list[float]]:
    cell, task_name, opt, clip, n = case
    task = _task(task_name, n)
    model = _model(cell, task, 0)
    losses = xrnn.train(model, task, _optimizer(opt), steps=steps, clip=clip, seed=3)
    return model.params, losses


def _report(params: dict[str, Any], losses: list[float], ref: Any) -> dict[str, float] | None:
    flat = np.concatenate([np.ravel(params[k]) for k in sorted(params)])
    every = COMM.gather(flat, root=0)
    if COMM.rank != 0:
        return None
    ref_params, ref_losses = ref
    return {
        "params": max(float(np.max(np.abs(params[k] - ref_params[k]))) for k in params),
        "losses": max(abs(a - b) for a, b in zip(losses, ref_losses[-len(losses) :])) if losses else 0.0,
        "ranks": max(float(np.max(np.abs(f - every[0]))) for f in every),
        "steps": len(losses),
    }


def train_cases(out: pathlib.Path) -> None:
    results: dict[str, Any] = {}
    for name, case in CASES.items():
        cell, task_name, opt, clip, n = case
        task = _task(task_name, n)
        model = _model(cell, task, COMM.rank)  # rank 1's values differ: the broadcast must replace them
        losses = distributed.train(model, task, _optimizer(opt), steps=STEPS, clip=clip, seed=3)
        results[name] = _report(model.params, losses, _reference(case) if COMM.rank == 0 else None)

    # Each rank its own rows of the global batches (7 and 2 of 9), given as batches=.
    case = CASES["lstm-sgd-clip-odd"]
    task = _task("adding", 9)
    rng = np.random.default_rng(3)
    glob = [task.batch(rng) for _ in range(STEPS)]
    rows = slice(0, 7) if COMM.rank == 0 else slice(7, 9)
    own = [(x[:, rows], t[rows]) for x, t in glob]
    model = _model("lstm", task, 0)
    losses = distributed.train(model, task, _optimizer("sgd"), steps=STEPS, clip=0.1, batches=own)
    results["own-batches-unequal"] = _report(
        model.params, losses, _reference(case) if COMM.rank == 0 else None
    )

    # Checkpoints: 10 steps (checkpoint every 5), then resumed to 20, on these 2 processes.
    case = CASES["lstm-adam-clip"]
    task, ckpt = _task("adding", 16), out / "run.npz"
    for steps in (10, STEPS):
        model = _model("lstm", task, 0)
        losses = distributed.train(
            model, task, _optimizer("adam"), steps=steps, clip=0.5, seed=3,
            checkpoint=ckpt, checkpoint_every=5, resume=True,
        )  # fmt: skip
        if steps == 10 and COMM.rank == 0:
            shutil.copy(ckpt, out / "at10.npz")  # resumed on one process by the test
    results["resume-2-processes"] = _report(
        model.params, losses, _reference(case) if COMM.rank == 0 else None
    )
    if COMM.rank == 0:
        (out / "results.json").write_text(json.dumps(results))


class _FailingTask(xrnn.AddingTask):
    def loss(self, z: Any, batch: Any) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        if COMM.rank == 1 and self.calls == 3:
            raise RuntimeError("rank 1 fails at step 3 on purpose")
        return super().loss(z, batch)


def faults(kind: str) -> None:
    task = _FailingTask(6, 8, dtype="float64") if kind == "raise" else _task("adding", 8)
    hidden = 3 if kind == "mismatch" and COMM.rank == 1 else 5
    model = xrnn.SequenceModel("lstm", 2, hidden, 1, dtype="float64", seed=0)
    steps = -1 if kind == "bad-argument" and COMM.rank == 1 else STEPS
    distributed.train(model, task, xrnn.Adam(), steps=steps)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train_cases(pathlib.Path(sys.argv[2]))
    else:
        faults(sys.argv[1])
