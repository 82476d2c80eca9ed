"""Comparison helpers for the tests: host copies, relative errors, namespace-aware asserts."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(a: Any) -> np.ndarray:
    """Host NumPy copy of an array of any backend (tests only)."""
    mod = type(a).__module__
    if mod.startswith("cupy"):
        return a.get()
    if mod.startswith("torch"):
        return a.detach().cpu().numpy()
    if mod.startswith("jax"):  # on any device (DLPack reaches the host's memory only)
        return np.asarray(a)
    return np.from_dlpack(a) if not isinstance(a, np.ndarray) else a


def asarray(xp: Any, a: np.ndarray, dtype: str) -> Any:
    """``a`` as an array of ``xp`` in ``dtype``."""
    return xp.asarray(np.asarray(a, dtype=dtype))


TOL = {"float32": 1e-4, "float64": 1e-10}


def rel_err(actual: Any, expected: Any) -> float:
    """``max|actual - expected| / max|expected|`` (absolute when ``expected`` is all zero)."""
    a, e = to_numpy(actual).astype(np.float64), to_numpy(expected).astype(np.float64)
    scale = max(float(np.max(np.abs(e), initial=0.0)), 1e-300)
    return float(np.max(np.abs(a - e), initial=0.0)) / (scale if scale > 1e-12 else 1.0)


def assert_close(
    actual: Any, expected: Any, *, xp: Any = None, dtype: str | None = None, tol: float | None = None
) -> None:
    """Check namespace, dtype and shape of ``actual``, then its values against ``expected``."""
    if xp is not None:
        from array_api_compat import array_namespace

        assert array_namespace(actual) is xp, (
            f"namespace {array_namespace(actual).__name__}, expected {xp.__name__}"
        )
    if dtype is not None:
        assert str(actual.dtype).endswith(dtype), f"dtype {actual.dtype}, expected {dtype}"
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    )
    if tol is not None:
        limit = tol
    else:  # the tolerance of the dtype asked for, else of the result's own dtype
        limit = TOL[dtype or ("float32" if str(actual.dtype).endswith("float32") else "float64")]
    err = rel_err(actual, expected)
    assert err < limit, f"relative error {err:.3g} >= {limit:.3g}"


def backend_name(xp: Any) -> str:
    """The ``XRNN_BACKEND`` name of namespace ``xp``."""
    from xrnn._util.namespaces import BACKENDS

    return {module: name for name, module in BACKENDS.items()}[xp.__name__]


def numeric_gradient(loss: Any, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``loss()`` with respect to ``value``, changed in place."""
    out = np.zeros_like(value)
    for idx in np.ndindex(value.shape):
        old = value[idx]
        value[idx] = old + eps
        up = loss()
        value[idx] = old - eps
        down = loss()
        value[idx] = old
        out[idx] = (up - down) / (2 * eps)
    return out


#: The four kinds of recurrent layer under test: layer class, torch.nn class name, keywords.
LAYER_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}


def make_layer(kind: str, *args: Any, **kwargs: Any) -> Any:
    """An xrnn layer of ``kind`` (a key of :data:`LAYER_KINDS`), built with ``args`` and ``kwargs``."""
    import xrnn

    name, extra = LAYER_KINDS[kind]
    return getattr(xrnn, name)(*args, **extra, **kwargs)


def layer_class(kind: str) -> tuple[Any, dict[str, Any]]:
    """``(xrnn class, keywords)`` of ``kind``, for ``from_state_dict`` and the like."""
    import xrnn

    name, extra = LAYER_KINDS[kind]
    return getattr(xrnn, name), dict(extra)


def torch_class(kind: str) -> tuple[Any, dict[str, Any]]:
    """``(torch.nn class, keywords)`` of ``kind``."""
    import torch

    name, extra = LAYER_KINDS[kind]
    return getattr(torch.nn, name), dict(extra)
