"""xrnn.distributed: ranks that would diverge are refused, dropout per rank, the defaults of xrnn.train,
and predict serves every model that ``SequenceModel.predict`` serves.

The MPI cases run as ``mpiexec -n 2 python tests/mpi_agreement.py CASE`` (see there).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import xrnn
from test_distributed import HERE, MPIEXEC, SRC, needs_dask, needs_mpiexec
from xrnn import distributed


def _run(case: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PYTHONPATH": str(SRC),
        "XRNN_NUMBA": "0",
        "XRNN_BACKEND": "numpy",
        "OPENBLAS_NUM_THREADS": "1",
    }
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, str(HERE / "mpi_agreement.py"), case]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=90, cwd=HERE)


@needs_mpiexec
@pytest.mark.parametrize(
    "case,message",
    [
        ("batch-size", r"rank 1 has task with batch \[\(\(6, 9, 2\), 'float64'\), \(\(9, 1\), 'float64'\)\]"),
        ("seq-len", r"rank 1 has task with batch \[\(\(7, 8, 2\), 'float64'\).*seq_len 7 \(rank 0: 6\)"),
    ],
)
def test_ranks_whose_tasks_draw_other_batches_are_refused_before_the_first_step(case, message):
    done = _run(case)
    assert done.returncode != 0
    assert "the processes must train the same model the same way" in done.stderr, done.stderr[-2000:]
    assert re.search(message, done.stderr), done.stderr[-2000:]


@needs_mpiexec
def test_each_rank_draws_its_own_dropout_masks_and_the_parameters_stay_identical():
    done = _run("dropout")
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(row for row in done.stdout.splitlines() if row.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["params"] == 0.0 and result["masks_differ"]


def test_the_dropout_generator_of_a_rank_is_derived_from_the_shared_seed_and_the_rank():
    from xrnn.distributed._agreement import dropout_generator

    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    first = [dropout_generator(rng, r).random(4) for r in (0, 1)]
    assert rng.bit_generator.state == state  # the shared batch generator is not advanced
    again = [dropout_generator(np.random.default_rng(3), r).random(4) for r in (0, 1)]
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], first[1])


def test_distributed_train_has_the_defaults_of_train():
    ours = inspect.signature(distributed.train).parameters
    theirs = inspect.signature(xrnn.train).parameters
    shared = sorted(set(ours) & set(theirs) - {"model", "task", "optimizer", "steps"})
    assert "clip" in shared and "seed" in shared
    assert {k: ours[k].default for k in shared} == {k: theirs[k].default for k in shared}


# ------------------------------------------------------------------- predict on Dask


@needs_dask
@pytest.mark.parametrize("head", ["every", "last"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", ["none", "list", "dask"])
def test_predict_on_dask_equals_predict_for_every_model_predict_serves(head, batch_first, lengths):
    import dask.array as da

    model = xrnn.SequenceModel("gru", 2, 4, 3, head=head, batch_first=batch_first, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 6, 2) if batch_first else (6, 10, 2))
    lens = [int(v) for v in rng.integers(1, 7, size=10)]
    given = {"none": None, "list": lens, "dask": da.from_array(np.asarray(lens), chunks=3)}[lengths]
    chunks = (4, 6, 2) if batch_first else (6, 4, 2)
    z = distributed.predict(model, da.from_array(x, chunks=chunks), given)
    expected = model.predict(x, None if given is None else lens)
    assert z.shape == expected.shape
    np.testing.assert_array_equal(z.compute(scheduler="synchronous"), expected)


@needs_dask
def test_predict_on_dask_refuses_lengths_out_of_range_naming_them():
    import dask.array as da

    model = xrnn.SequenceModel("gru", 2, 4, 3, dtype="float64", seed=0)
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.T=6, got 7 at index 2"):
        distributed.predict(model, da.zeros((6, 4, 2), chunks=(6, 2, 2)), [1, 2, 7, 3])
