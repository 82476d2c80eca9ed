#!/usr/bin/env bash
# The project's one test command: installs what the tests need, then runs ruff, mypy and
# the CPU test matrix (numpy, array_api_strict, torch, jax) in one pytest run of two worker
# processes (the `xp` fixture runs each backend; tests without it run once), then the CUDA kernels in
# numba-cuda's simulator in a second one, then builds the documentation with warnings as
# errors and runs its doctests.
#
# Uses the active virtual environment if there is one, else creates .venv beside this repo.
# XRNN_BACKEND=torch narrows the matrix to one backend.
# The tests keep JAX's compiled programs in ~/.cache/xrnn/jax-tests for the next run (a second run
# of the JAX leg compiles far less); XRNN_JAX_CACHE=DIR moves it, XRNN_JAX_CACHE= turns it off.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

python -m pip install --quiet --upgrade pip
# Pinned: on the project's machines this resolves to a CPU build; an unpinned torch pulls CUDA.
python -m pip install --quiet "torch==2.13.0"
# An earlier install under the old distribution name "xrnn" (or the unrelated "xrnn" of the
# package index) would provide the same import package: remove it first.
python -m pip uninstall --quiet --yes xrnn
# The project (distribution xrnn-bptt) from this checkout. Numba comes with it where it has
# wheels, so the NumPy tests run the Numba Ops too (tests/test_ops.py).
# [distributed] adds mpi4py, MPICH (its mpiexec beside python) and Dask for tests/test_distributed.py.
python -m pip install --quiet -e ".[test,docs,distributed]"

echo "=== ruff"
ruff check src tests docs benchmarks
ruff format --check src tests docs benchmarks

echo "=== mypy"
mypy

status=0
echo "=== pytest, backends: ${XRNN_BACKEND:-every installed one}"
# In XRNN_TEST_WORKERS worker processes (pytest-xdist, of the test extra; default 2, the cores CI
# has), whole files to a worker so that each compiles the kernels of its files once.
workers=()
if python -c "import xdist" 2>/dev/null; then
  workers=(-n "${XRNN_TEST_WORKERS:-2}" --dist loadfile)
fi
python -m pytest -p no:cacheprovider ${workers[@]+"${workers[@]}"} --ignore=tests/test_cuda_sim.py || status=$?
# The variable must be set before numba-cuda is imported: a process of its own. Nothing in it
# may be skipped (a skip would mean the kernels were not run).
echo "=== pytest, CUDA kernels under numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1)"
sim_log=$(mktemp)
NUMBA_ENABLE_CUDASIM=1 python -m pytest -p no:cacheprovider tests/test_cuda_sim.py 2>&1 | tee "$sim_log" || status=$?
if grep -q -E "[0-9]+ skipped|no tests ran" "$sim_log"; then
  echo "ci/test.sh: tests/test_cuda_sim.py must run every test under the simulator, none skipped"
  status=1
fi
rm -f "$sim_log"
echo "=== docs: html (warnings are errors) and doctests"
bash ci/docs.sh || status=$?
exit $status
