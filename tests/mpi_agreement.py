"""Run by tests/test_distributed_agreement.py under ``mpiexec -n 2``: what the ranks must share.

``python mpi_agreement.py batch-size`` and ``seq-len``: rank 1's task draws other batches
than rank 0's (9 sequences instead of 8; length 7 instead of 6), which must be refused on
every rank before the first step. ``python mpi_agreement.py dropout``: a model with dropout
trains on both ranks; rank 0 prints one line ``RESULT <json>`` with the largest difference
between the ranks' parameters and whether their dropout generators draw different numbers.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from mpi4py import MPI

import xrnn
from xrnn import distributed

COMM = MPI.COMM_WORLD


def mismatch(kind: str) -> None:
    other = COMM.rank == 1
    n = 9 if kind == "batch-size" and other else 8
    seq_len = 7 if kind == "seq-len" and other else 6
    task = xrnn.AddingTask(seq_len, n, dtype="float64")
    model = xrnn.SequenceModel("lstm", 2, 4, 1, dtype="float64", seed=0)
    distributed.train(model, task, xrnn.Adam(), steps=3, seed=1)


def dropout() -> None:
    task = xrnn.AddingTask(6, 8, dtype="float64")
    model = xrnn.SequenceModel("lstm", 2, 4, 1, num_layers=2, dropout=0.5, dtype="float64", seed=0)
    distributed.train(model, task, xrnn.Adam(1e-2), steps=5, seed=1)
    flat = np.concatenate([np.ravel(model.params[k]) for k in sorted(model.params)])
    draws = model.rnn.generator.random(8)
    every = COMM.gather((flat, draws), root=0)
    if COMM.rank == 0:
        result = {
            "params": max(float(np.max(np.abs(f - every[0][0]))) for f, _ in every),
            "masks_differ": bool(np.any(every[0][1] != every[1][1])),
        }
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "dropout":
        dropout()
    else:
        mismatch(sys.argv[1])
