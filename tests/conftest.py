"""Test matrix: an ``xp`` fixture over every installed backend and a ``dtype`` axis.

``XRNN_BACKEND`` narrows ``xp`` to one backend (so CI can run a matrix); without it
every installed backend runs. The tests read it as that selection only: the library's
default namespace stays NumPy for the tests that take no ``xp``. CuPy joins when a GPU is
present, JAX when installed.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


def _installed(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:
        return False
    return True


def _cupy_with_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _enable_jax_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    _jax_compilation_cache(jax)


def _jax_compilation_cache(jax: Any) -> None:
    """Keep every program JAX compiles for the tests on disk, for the next run.

    Most of the JAX leg's time is compiling (each eager operation once per shape, each jitted
    scan once per cell, dtype and shape): a second run loads them instead. The directory is
    ``$XRNN_JAX_CACHE`` (empty: no cache), else ``~/.cache/xrnn/jax-tests``.
    """
    path = os.environ.get(
        "XRNN_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "xrnn", "jax-tests")
    )
    if not path:
        return
    try:  # JAX warns on a failed write, and warnings are errors here: only a directory it can use
        os.makedirs(path, exist_ok=True)
    except OSError:
        return
    if os.access(path, os.W_OK):
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


AVAILABLE = {
    "numpy": True,
    "array_api_strict": _installed("array_api_strict"),
    "torch": _installed("torch"),
    "cupy": _cupy_with_gpu(),
    "jax": _installed("jax"),
}
if AVAILABLE["jax"]:
    _enable_jax_x64()

# The selection, not the library's default namespace: tests that take no ``xp`` build their
# layers in NumPy (the default) whichever backend is selected, as they do in the full matrix.
# The variable is moved to XRNN_TEST_BACKEND, which the worker processes of pytest-xdist
# (started after this module is imported) inherit and the library does not read.
_SELECTED = os.environ.pop("XRNN_BACKEND", None) or os.environ.get("XRNN_TEST_BACKEND")
if _SELECTED:
    os.environ["XRNN_TEST_BACKEND"] = _SELECTED
BACKENDS = [_SELECTED] if _SELECTED else [name for name, ok in AVAILABLE.items() if ok]


def pytest_report_header(config: Any) -> str:
    return "xrnn backends under test: " + ", ".join(BACKENDS)


@pytest.fixture(params=BACKENDS)
def xp(request: Any) -> Any:
    """The array namespace of each backend under test."""
    name = request.param
    if not AVAILABLE.get(name, False):
        pytest.skip(f"backend {name} is not installed")
    from xrnn._util.namespaces import resolve_namespace

    return resolve_namespace(name)


@pytest.fixture(params=["float32", "float64"])
def dtype(request: Any) -> str:
    """Dtype name; ``getattr(xp, dtype)`` gives the backend's dtype."""
    return request.param


@pytest.fixture(params=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def kind(request: Any) -> str:
    """Each kind of recurrent layer (a key of ``helpers.LAYER_KINDS``)."""
    return request.param
