"""xrnn.distributed: data-parallel training over MPI equals one process; Dask predict equals forward.

The MPI cases run as ``mpiexec -n 2 python tests/mpi_cases.py`` (one run for every training
case, one per fault) with the generic engine (``XRNN_NUMBA=0``: each rank would otherwise
compile the Numba kernels it finds no cache for; tests/test_ops.py holds the two equal).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import xrnn
from helpers import to_numpy
from xrnn import distributed

HERE = pathlib.Path(__file__).parent
SRC = pathlib.Path(xrnn.__file__).parents[1]
STEPS = 20


def _mpiexec() -> str | None:
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


MPIEXEC = _mpiexec()
needs_mpi4py = pytest.mark.skipif(not _has("mpi4py"), reason="mpi4py is not installed (xrnn[distributed])")
needs_mpiexec = pytest.mark.skipif(
    MPIEXEC is None or not _has("mpi4py"), reason="no mpiexec (pip install 'xrnn[distributed]')"
)
needs_dask = pytest.mark.skipif(not _has("distributed"), reason="dask.distributed is not installed")


def _run_mpi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PYTHONPATH": str(SRC),
        "XRNN_NUMBA": "0",
        "XRNN_BACKEND": "numpy",
        "OPENBLAS_NUM_THREADS": "1",
    }
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, str(HERE / "mpi_cases.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=HERE)


@pytest.fixture(scope="module")
def mpi_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, float]], pathlib.Path]:
    out = tmp_path_factory.mktemp("mpi")
    done = _run_mpi("train", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads((out / "results.json").read_text()), out


CASES = [
    "lstm-adam-clip",
    "gru-adam-clip",
    "lstm-sgd-clip-odd",
    "gru-sgd-odd",
    "lstm-reber-odd",
    "gru-text-odd",
    "own-batches-unequal",
    "resume-2-processes",
]


@needs_mpiexec
@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one_process_on_the_whole_batch(mpi_results, case):
    result = mpi_results[0][case]
    assert result["params"] < 1e-12 and result["losses"] < 1e-12, result
    assert result["ranks"] == 0.0  # every rank ends with the very same parameters
    assert result["steps"] == (10 if case.startswith("resume") else STEPS)


def _reference(steps: int = STEPS, xp: str = "numpy") -> tuple[xrnn.SequenceModel, list[float]]:
    task = xrnn.AddingTask(6, 16, dtype="float64", xp=xp)
    model = xrnn.SequenceModel("lstm", 2, 5, 1, dtype="float64", seed=0, xp=xp)
    losses = xrnn.train(model, task, xrnn.Adam(lr=2e-2), steps=steps, clip=0.5, seed=3)
    return model, losses


@needs_mpiexec
def test_a_checkpoint_of_two_processes_resumes_on_one(mpi_results, tmp_path):
    ckpt = tmp_path / "run.npz"
    shutil.copy(mpi_results[1] / "at10.npz", ckpt)
    task = xrnn.AddingTask(6, 16, dtype="float64", xp="numpy")
    model = xrnn.SequenceModel("lstm", 2, 5, 1, dtype="float64", seed=7, xp="numpy")
    losses = distributed.train(
        model, task, xrnn.Adam(lr=2e-2), steps=STEPS, clip=0.5, seed=3, checkpoint=ckpt, resume=True
    )
    ref, ref_losses = _reference()
    assert len(losses) == 10 and np.allclose(losses, ref_losses[10:], rtol=0, atol=1e-12)
    for key, value in ref.params.items():
        np.testing.assert_allclose(model.params[key], value, rtol=0, atol=1e-12)
    assert xrnn.load_checkpoint(ckpt).metadata["xrnn.distributed"]["step"] == STEPS


@needs_mpiexec
@pytest.mark.parametrize(
    "kind,error",
    [
        ("raise", "RuntimeError: rank 1 fails at step 3"),
        ("bad-argument", "ValueError: steps must be an int >= 0"),
    ],
)
def test_a_rank_that_raises_ends_the_job_with_its_error(kind, error):
    done = _run_mpi(kind, timeout=60)  # a hang would time out
    assert done.returncode != 0
    assert "rank 1 of 2 raised" in done.stderr and error in done.stderr


@needs_mpiexec
def test_models_of_different_sizes_are_refused_at_the_first_broadcast():
    done = _run_mpi("mismatch", timeout=60)
    assert done.returncode != 0
    assert "rank 1 has model with hidden_size 3 (rank 0: 5)" in done.stderr


@needs_mpi4py
@pytest.mark.parametrize("xp", ["numpy", "array_api_strict"])  # the second goes through host buffers
def test_one_process_needs_no_mpiexec_and_equals_train(xp, monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "0")
    pytest.importorskip(xp)
    task = xrnn.AddingTask(6, 16, dtype="float64", xp=xp)
    model = xrnn.SequenceModel("lstm", 2, 5, 1, dtype="float64", seed=0, xp=xp)
    seen: list[tuple[int, float]] = []
    losses = distributed.train(
        model,
        task,
        xrnn.Adam(lr=2e-2),
        steps=STEPS,
        clip=0.5,
        seed=3,
        callback=lambda s, v: seen.append((s, v)),
    )
    ref, ref_losses = _reference(xp=xp)
    assert np.allclose(losses, ref_losses, rtol=0, atol=1e-12) and [s for s, _ in seen] == list(range(1, 21))
    for key, value in ref.params.items():
        np.testing.assert_allclose(to_numpy(model.params[key]), to_numpy(value), rtol=0, atol=1e-12)


def test_blocks_cover_the_batch_in_order():
    for n, size in [(9, 2), (64, 4), (5, 5), (7, 3)]:
        bounds = [distributed.block_bounds(n, r, size) for r in range(size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        distributed.block_bounds(2, 0, 3)
    with pytest.raises(ValueError, match="rank must be below size=2"):
        distributed.block_bounds(4, 2, 2)


@needs_mpi4py
def test_bad_arguments_are_named(monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "0")  # no kernels to compile for one step
    task = xrnn.AddingTask(6, 4, xp="numpy")
    model = xrnn.SequenceModel("lstm", 2, 3, 1, xp="numpy")
    with pytest.raises(TypeError, match="model must be a SequenceModel"):
        distributed.train("model", task, xrnn.Adam(), steps=1)
    with pytest.raises(TypeError, match="optimizer must be an xrnn optimiser"):
        distributed.train(model, task, object(), steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        distributed.train(model, task, xrnn.Adam(), steps=-1)
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint"):
        distributed.train(model, task, xrnn.Adam(), steps=1, checkpoint_every=2)
    with pytest.raises(TypeError, match="comm must be an mpi4py intracommunicator"):
        distributed.train(model, task, xrnn.Adam(), steps=1, comm="world")
    with pytest.raises(TypeError, match="got a single batch"):
        distributed.train(model, task, xrnn.Adam(), steps=1, batches=task.batch(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="batches ran out after 1"):
        distributed.train(model, task, xrnn.Adam(), steps=2, batches=[task.batch(np.random.default_rng(0))])


def test_importing_needs_neither_mpi4py_nor_dask():
    code = (
        "import sys; sys.modules.update(mpi4py=None, dask=None)\n"
        "import xrnn, xrnn.distributed as d\n"
        "m = xrnn.SequenceModel('gru', 2, 3, 1, xp='numpy')\n"
        "train = lambda: d.train(m, xrnn.AddingTask(), xrnn.SGD(0.1), steps=1)\n"
        "for call in (train, lambda: d.predict(m, 0)):\n"
        "    try: call()\n"
        "    except ImportError as e: print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": str(SRC)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pip install '.[distributed]' (from the checkout)") == 2, done.stdout


@needs_dask
def test_predict_refuses_chunks_along_time_or_features():
    import dask.array as da

    model = xrnn.SequenceModel("lstm", 2, 3, 1, dtype="float64", xp="numpy")
    with pytest.raises(ValueError, match=r"chunked along N \(axis 1\) only, got chunks \(3, 3\) along T"):
        distributed.predict(model, da.zeros((6, 4, 2), chunks=(3, 2, 2)))
    with pytest.raises(ValueError, match="along input_size"):
        distributed.predict(model, da.zeros((6, 4, 2), chunks=(6, 2, 1)))
    with pytest.raises(ValueError, match=r"must have shape \(T, N, 2\)"):
        distributed.predict(model, da.zeros((6, 4, 3), chunks=(6, 2, 3)))
    with pytest.raises(TypeError, match="must have the model's dtype float64, got float32"):
        distributed.predict(model, da.zeros((6, 4, 2), chunks=(6, 2, 2), dtype="float32"))
    with pytest.raises(TypeError, match="x must be a dask.array.Array"):
        distributed.predict(model, np.zeros((6, 4, 2)))


@needs_dask
def test_predict_on_two_worker_processes_equals_forward():
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    model = xrnn.SequenceModel("gru", 3, 6, 2, dtype="float64", seed=1, xp="numpy")
    x = np.random.default_rng(0).standard_normal((12, 40, 3))
    z = distributed.predict(model, da.from_array(x, chunks=(12, 7, 3)))
    assert z.shape == (12, 40, 2) and z.chunks[1] == (7, 7, 7, 7, 7, 5)
    params = [k for k in dict(z.__dask_graph__()) if str(k).startswith("xrnn-params-")]
    assert len(params) == 1  # one key for the parameters, whatever the number of blocks

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            got = z.compute()
            built = client.run(
                lambda: len(__import__("xrnn.distributed._predict").distributed._predict._MODELS)
            )
    np.testing.assert_allclose(got, model.forward(x)[0], rtol=0, atol=1e-12)
    assert len(built) == 2 and all(n <= 1 for n in built.values())  # a model per worker, not per block


def test_train_takes_the_gradient_of_a_batch_from_a_function(monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "0")
    task = xrnn.AddingTask(5, 4, dtype="float64", xp="numpy")
    calls: list[int] = []

    def halved(model, task, batch):  # the gradient of half the loss
        calls.append(batch[0].shape[1])
        loss, grads = xrnn.training.loop.local_gradient(model, task, batch)
        return loss / 2, {k: g / 2 for k, g in grads.items()}

    ours = xrnn.SequenceModel("gru", 2, 3, 1, dtype="float64", seed=0, xp="numpy")
    ref = xrnn.SequenceModel("gru", 2, 3, 1, dtype="float64", seed=0, xp="numpy")
    losses = xrnn.train(ours, task, xrnn.SGD(0.2), steps=3, clip=None, seed=1, gradient=halved)
    ref_losses = xrnn.train(ref, task, xrnn.SGD(0.1), steps=3, clip=None, seed=1)
    assert calls == [4, 4, 4] and np.allclose(losses, np.array(ref_losses) / 2, rtol=1e-12)
    for key, value in ref.params.items():
        np.testing.assert_allclose(ours.params[key], value, rtol=0, atol=1e-14)
    with pytest.raises(TypeError, match="gradient must be a function"):
        xrnn.train(ours, task, xrnn.SGD(0.1), steps=1, gradient="local")


@needs_mpiexec
def test_scaling_benchmark_runs_in_quick_mode(tmp_path):
    out, md = tmp_path / "d.json", tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nNotes kept by hand.\n")
    script = HERE.parent / "benchmarks" / "distributed.py"
    env = os.environ | {"PYTHONPATH": str(SRC), "XRNN_BACKEND": "numpy", "XRNN_NUMBA": "0"}
    cmd = [sys.executable, str(script), "--quick", "--out", str(out), "--markdown", str(md)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())["cases"]["tiny LSTM"]
    assert result["step_1"] > 0 and result["step_2"] > 0 and 0 < result["allreduce_share"]
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nNotes kept by hand.") and "| tiny LSTM | 133 |" in text
