"""Which ``Ops`` CuPy arrays get, and that nothing of the GPU path is imported for other arrays.

The kernels themselves are tested in tests/test_cuda_sim.py (under the CUDA simulator, or on
a GPU); here, on any machine, the choice made by :func:`ops_for` for a CuPy namespace.
"""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from xrnn.backends import registry
from xrnn.backends.registry import ops_for
from xrnn.engine.ops import Ops


@pytest.fixture
def fresh(monkeypatch):
    """``ops_for`` without its caches, and a stand-in CuPy namespace (only its name matters)."""
    monkeypatch.setattr(registry, "_ops", registry._ops.__wrapped__)
    monkeypatch.setattr(registry, "cuda_ops", registry.cuda_ops.__wrapped__)
    monkeypatch.delenv("XRNN_CUDA", raising=False)
    return types.ModuleType("cupy")


def test_ops_for_gives_the_cuda_kernels_to_cupy_floats_only(fresh, monkeypatch):
    pytest.importorskip("numba.cuda")
    from xrnn.backends.cuda import CudaOps

    assert isinstance(ops_for(fresh, "float32"), CudaOps)
    assert isinstance(ops_for(fresh, "float64"), CudaOps)
    assert type(ops_for(fresh, "float16")) is Ops
    monkeypatch.setenv("XRNN_CUDA", "0")
    assert type(ops_for(fresh, "float32")) is Ops


def test_cupy_runs_the_generic_loop_without_numba_cuda(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba.cuda", None)  # import numba.cuda now raises ImportError
    assert type(ops_for(fresh, "float32")) is Ops


def test_running_numpy_arrays_imports_neither_cupy_nor_numba_cuda():
    code = (
        "import sys, numpy as np, xrnn\n"
        'layer = xrnn.LSTM(3, 4, xp="numpy", seed=0)\n'
        "y, _, cache = layer.forward(np.ones((5, 2, 3), np.float32), lengths=[5, 2])\n"
        "layer.backward(cache, y)\n"
        "gpu = ('cupy', 'numba.cuda', 'numba_cuda', 'xrnn.backends.cuda')\n"
        "loaded = [m for m in gpu if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_cuda_ops_refuse_host_arrays_outside_the_simulator():
    # numba-cuda would copy NumPy arrays to the GPU and back at every launch: refused instead
    pytest.importorskip("numba.cuda")
    import numpy as np
    from array_api_compat import numpy as npx

    from xrnn.backends.cuda import CudaOps
    from xrnn.cells import GRU_CELL

    gx, w_hh_t, h0 = np.zeros((2, 1, 3)), np.zeros((1, 3)), np.zeros((1, 1))
    with pytest.raises(ValueError, match="the CUDA kernels take CuPy arrays .* got namespace .*numpy"):
        CudaOps(npx).forward(GRU_CELL, gx, w_hh_t, (None, None), (h0,), None)


def test_cuda_ops_have_the_signatures_of_the_base():
    # a keyword the seam gains must reach CudaOps too (which sends what it has no kernel for to super())
    import inspect

    from xrnn.backends.cuda import CudaOps

    public = [name for name, _ in inspect.getmembers(Ops, inspect.isfunction) if not name.startswith("_")]
    assert {"forward", "backward", "project"} <= set(public)
    for name in public:
        assert inspect.signature(getattr(CudaOps, name)) == inspect.signature(getattr(Ops, name)), name
