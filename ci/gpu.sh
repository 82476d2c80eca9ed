#!/usr/bin/env bash
# xrnn on a GPU, one command (ci/test.sh is the CPU one):
#   1. the CUDA kernels against the generic loop on CuPy arrays, random and extreme inputs, and
#      the registry's bridge: torch CUDA tensors (and JAX GPU arrays where JAX has a GPU) on the
#      kernels through CuPy's DLPack import, on the caller's stream (tests/test_cuda_sim.py, here
#      on the real GPU rather than the simulator);
#   2. the whole test suite with XRNN_BACKEND=cupy (float32 and float64), torch's oracle in
#      the comparison grid on the same GPU (XRNN_TORCH_DEVICE=cuda: cuDNN);
#   3. torch autograd through layer.apply on CUDA tensors (tests/test_interop_torch.py);
#   4. the GPU benchmark (benchmarks/gpu.py): xrnn's fused kernels against its generic CuPy
#      path and torch.nn.LSTM/GRU with cuDNN, a table headed by the GPU's name.
#
# For a machine with a GPU and CuPy, numba-cuda, torch (CUDA) and JAX installed, besides
# xrnn's own requirements (NumPy, array-api-compat, pytest): nothing is installed or
# downloaded; xrnn runs from this checkout (PYTHONPATH=src). About 5 minutes on one GPU;
# each stage has a time limit so the whole stays under 8.
#
#   bash ci/gpu.sh                      # results JSON in gpu-results.json (or $XRNN_GPU_JSON)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset NUMBA_ENABLE_CUDASIM               # the real GPU, not numba-cuda's simulator
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX must not take most of the GPU's memory first
export XRNN_BACKEND=cupy XRNN_TORCH_DEVICE=cuda

echo "=== GPU and libraries"
if ! python - <<'EOF'
import sys

try:
    import cupy
    import numba.cuda
    import numba_cuda
    import pytest  # noqa: F401
    import torch
except ImportError as exc:
    sys.exit(f"ci/gpu.sh needs CuPy, numba-cuda, torch and pytest installed: {exc}")
if cupy.cuda.runtime.getDeviceCount() < 1 or not torch.cuda.is_available():
    sys.exit("ci/gpu.sh needs a CUDA GPU that CuPy and torch both see")
if numba.cuda.config.ENABLE_CUDASIM:
    sys.exit("numba-cuda is in simulator mode (NUMBA_ENABLE_CUDASIM): unset it")
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"GPU: {props['name'].decode()}, CuPy {cupy.__version__}, numba-cuda {numba_cuda.__version__}, "
      f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
try:
    import jax

    jax_gpu = jax.devices()[0].platform == "gpu"
except Exception:  # noqa: BLE001
    jax_gpu = False
print("bridge of JAX GPU arrays:", "tested" if jax_gpu else "not tested (JAX sees no GPU here)")
EOF
then
  exit 1
fi

status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "=== 1. CUDA kernels against the generic loop, on the GPU"
timeout 120 python -m pytest -p no:cacheprovider -q tests/test_cuda_sim.py 2>&1 | tee "$log" || status=$?
if grep -q -E "[0-9]+ skipped|no tests ran" "$log"; then
  echo "ci/gpu.sh: tests/test_cuda_sim.py must run on the GPU, none skipped"
  status=1
fi

echo "=== 2. the test suite on CuPy (float32 and float64), torch's oracle on the GPU"
timeout 240 python -m pytest -p no:cacheprovider -q --durations=10 --ignore=tests/test_cuda_sim.py || status=$?

echo "=== 3. torch autograd through layer.apply on CUDA tensors"
XRNN_BACKEND=torch timeout 40 python -m pytest -p no:cacheprovider -q tests/test_interop_torch.py 2>&1 | tee "$log" || status=$?
if grep -q -E "[0-9]+ skipped|no tests ran" "$log"; then
  echo "ci/gpu.sh: tests/test_interop_torch.py must run on the GPU's torch, none skipped"
  status=1
fi

echo "=== 4. benchmark: xrnn on CuPy against cuDNN"
timeout 60 python benchmarks/gpu.py --json "${XRNN_GPU_JSON:-gpu-results.json}" || status=$?

echo "=== ci/gpu.sh: exit status $status"
exit $status
