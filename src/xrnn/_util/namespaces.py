"""Array namespaces: where arrays come from, and which namespace xrnn creates them in.

Operations on given arrays always follow the arrays (``array_namespace`` of the
inputs). The backend chosen here, by the ``XRNN_BACKEND`` environment variable or
by :func:`use_backend`, only decides where xrnn creates arrays from nothing
(parameter initialisation, demo data).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import array_api_compat
from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_array,
    is_jax_array,
    is_numpy_array,
    is_torch_array,
)

from .precision import check_float64

__all__ = [
    "BACKENDS",
    "convert",
    "default_namespace",
    "get_backend",
    "host_rng",
    "is_traced",
    "namespace",
    "on_host",
    "random_uniform",
    "resolve_dtype",
    "resolve_namespace",
    "to_host",
    "use_backend",
]

#: Backend names accepted by ``XRNN_BACKEND``, :func:`use_backend` and every ``xp=``
#: argument, with the module that provides the array namespace.
BACKENDS: dict[str, str] = {
    "numpy": "array_api_compat.numpy",
    "cupy": "array_api_compat.cupy",
    "torch": "array_api_compat.torch",
    "jax": "jax.numpy",
    "array_api_strict": "array_api_strict",
}

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("xrnn_backend", default=None)


def _import_backend(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        raise ValueError(
            f"backend {name!r} is not installed ({exc}); install it or choose one of {', '.join(BACKENDS)}"
        ) from exc


def get_backend() -> str:
    """Name of the backend in which xrnn creates new arrays.

    Returns
    -------
    str
        The innermost :func:`use_backend` name, else ``$XRNN_BACKEND``, else ``"numpy"``.
    """
    return _override.get() or os.environ.get("XRNN_BACKEND") or "numpy"


def default_namespace() -> ModuleType:
    """The array namespace of :func:`get_backend`.

    Returns
    -------
    module
        An Array API namespace (``array_api_compat.numpy``, ``jax.numpy``, ...).

    Raises
    ------
    ValueError
        If the backend name is unknown or the library behind it is not installed.
    """
    return _import_backend(get_backend())


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[ModuleType]:
    """Create new arrays in backend ``name`` inside a ``with`` block.

    Parameters
    ----------
    name : str
        One of ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``, ``"array_api_strict"``.

    Yields
    ------
    module
        The array namespace of that backend.

    Examples
    --------
    >>> import xrnn
    >>> with xrnn.use_backend("numpy"):
    ...     lstm = xrnn.LSTM(3, 4, seed=0)
    >>> type(lstm.params["weight_ih_l0"]).__module__
    'numpy'
    """
    xp = _import_backend(name)
    token = _override.set(name)
    try:
        yield xp
    finally:
        _override.reset(token)


def resolve_namespace(xp: str | ModuleType | None) -> ModuleType:
    """Turn an ``xp=`` argument (a backend name, a namespace module or None) into a namespace.

    Parameters
    ----------
    xp : str, module or None
        A name from :data:`BACKENDS`, an array module (``numpy``, ``torch``, ``cupy``,
        ``jax.numpy``, ``array_api_strict`` or an ``array_api_compat`` wrapper), or None
        for :func:`default_namespace`.

    Returns
    -------
    module
        An Array API namespace.
    """
    if xp is None:
        return default_namespace()
    if isinstance(xp, str):
        return _import_backend(xp)
    if isinstance(xp, ModuleType) and hasattr(xp, "asarray"):
        try:
            return array_namespace(xp.asarray([0.0]))
        except TypeError:
            pass
    raise TypeError(
        f"xp must be a backend name ({', '.join(BACKENDS)}) or an array namespace module, got {xp!r}"
    )


def resolve_dtype(dtype: Any, xp: ModuleType) -> Any:
    """Turn a ``dtype=`` argument into a real floating dtype of ``xp`` (default float32).

    Parameters
    ----------
    dtype : None, str or dtype
        None (float32), ``"float32"``/``"float64"``, or a dtype object of ``xp``.
    xp : module
        The target namespace.

    Returns
    -------
    dtype
        ``xp.float32`` or ``xp.float64``.
        float64 on JAX with ``jax_enable_x64`` off is a ValueError (:mod:`.precision`).
    """
    if dtype is None:
        return xp.float32
    if isinstance(dtype, str):
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        dtype = getattr(xp, dtype)
    for name in ("float32", "float64"):
        if dtype == getattr(xp, name) or str(dtype).endswith(name):
            check_float64(getattr(xp, name), xp)  # never a silent float32 (JAX without x64)
            return getattr(xp, name)
    raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")


def namespace(**arrays: Any) -> ModuleType:
    """The one namespace of the named arrays, with errors that name them.

    Parameters
    ----------
    **arrays : array or None
        Arrays keyed by the argument name used in error messages; None values are skipped.

    Returns
    -------
    module
        The common Array API namespace.

    Raises
    ------
    TypeError
        If a value is not an array, or the arrays come from different namespaces.
    ValueError
        If the arrays sit on different devices.

    Notes
    -----
    JAX tracers (arrays inside ``jax.jit``, ``jax.grad``, ``jax.vmap``) have no device
    until the program runs, and JAX places the whole program on one: their devices are
    not compared.
    """
    given = {name: a for name, a in arrays.items() if a is not None}
    for name, a in given.items():
        if not is_array_api_obj(a) or isinstance(a, (int, float, complex, bool)):
            raise TypeError(
                f"{name} must be an array (numpy, cupy, torch, jax or array_api_strict), "
                f"got {type(a).__name__}"
            )
    spaces = {name: array_namespace(a) for name, a in given.items()}
    first_name, first = next(iter(spaces.items()))
    for name, xp in spaces.items():
        if xp is not first:
            raise TypeError(
                f"all arrays must come from one namespace: {first_name} is {_label(first)} "
                f"but {name} is {_label(xp)}"
            )
    devices = [(name, device(a)) for name, a in given.items() if not is_traced(a)]
    for name, dev in devices[1:]:
        first_name, first_dev = devices[0]
        if dev != first_dev:
            raise ValueError(
                f"all arrays must sit on one device: {first_name} is on {first_dev} but {name} is on {dev}"
            )
    return first


def is_traced(a: Any) -> bool:
    """Whether ``a`` is a JAX tracer: an abstract value inside ``jax.jit``, ``jax.grad`` or ``jax.vmap``.

    A tracer has a shape and a dtype but no values (until the program runs) and no device;
    checks that need values cannot run on it.

    Parameters
    ----------
    a : object
        Anything.

    Returns
    -------
    bool
        True for a tracer (JAX is not imported to find out).
    """
    if not type(a).__module__.startswith("jax"):
        return False
    import jax

    return isinstance(a, jax.core.Tracer)


def _label(xp: ModuleType) -> str:
    return xp.__name__.removeprefix("array_api_compat.")


def convert(a: Any, *, xp: ModuleType, dtype: Any = None, device: Any = None) -> Any:
    """A copy of array ``a`` (of any namespace) as an array of ``xp``.

    Parameters
    ----------
    a : array
        Any array: NumPy, CuPy, a torch tensor, JAX, array_api_strict.
    xp : module
        The target namespace.
    dtype : dtype, optional
        The target dtype of ``xp``; default: ``a``'s own dtype.
    device : device, optional
        The target device; default: the namespace's default.

    Returns
    -------
    array
        A new array of ``xp``, never a view of ``a``.
    """
    if is_torch_array(a):  # never carry its autograd graph along
        a = a.detach()
        if str(a.dtype) in ("torch.bfloat16", "torch.float16") and dtype is not None:
            a = a.double()  # exact; other namespaces have no bfloat16 to receive it
    if is_array_api_obj(a) and array_namespace(a) is xp:
        out = xp.asarray(a, copy=True)
    else:
        try:
            out = xp.from_dlpack(a)
        except Exception:  # no DLPack route (read-only NumPy, another device): go by value
            out = xp.asarray(a)
        out = xp.asarray(out, copy=True)
    if dtype is not None and out.dtype != dtype:
        out = xp.astype(out, dtype)
    if device is not None:
        out = array_api_compat.to_device(out, device)
    return out


def on_host(a: Any) -> bool:
    """Whether reading a value of array ``a`` costs no device synchronisation.

    True for NumPy, array-api-strict and torch tensors on the CPU; False for CuPy, torch on
    a GPU and JAX (whose arrays may also be traced under ``jit``), where a value read on the
    host (``bool(xp.any(...))``) waits for the device.

    Parameters
    ----------
    a : array
        Any array.

    Returns
    -------
    bool
    """
    if is_numpy_array(a) or is_array_api_strict_namespace(array_namespace(a)):
        return True
    return bool(is_torch_array(a) and a.device.type == "cpu")


def to_host(a: Any) -> Any:
    """A NumPy copy of array ``a`` of any namespace: one explicit transfer from its device.

    Parameters
    ----------
    a : array
        NumPy, CuPy, a torch tensor, JAX or array-api-strict.

    Returns
    -------
    numpy.ndarray
        A new array, never a view of ``a``.
    """
    import numpy as np

    if not is_array_api_obj(a):
        raise TypeError(f"expected an array, got {type(a).__name__}")
    if is_cupy_array(a):
        return a.get()
    if is_torch_array(a):
        return a.detach().cpu().numpy().copy()
    if is_jax_array(a):
        return np.array(a, copy=True)
    try:
        return np.from_dlpack(a).copy()
    except (TypeError, RuntimeError, BufferError):
        return np.array(a, copy=True)


def host_rng(seed: Any) -> Any:
    """NumPy generator for initial values drawn on the host, as torch draws them on the CPU.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        Seed for ``numpy.random.default_rng`` (a Generator is returned as it is).

    Returns
    -------
    numpy.random.Generator
    """
    import numpy as np

    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_uniform(
    shape: tuple[int, ...], bound: float, *, seed: Any, xp: ModuleType, dtype: Any, device: Any
) -> Any:
    """Uniform values in ``[-bound, bound)`` drawn on the host and placed in ``xp``.

    The draw is made in float64 by NumPy's PCG64 generator, so a seed gives the same
    values (up to rounding) on every backend and in every dtype.

    Parameters
    ----------
    shape : tuple of int
        Shape of the result.
    bound : float
        Half-width of the interval.
    seed : int, numpy.random.Generator or None
        Seed for ``numpy.random.default_rng``.
    xp, dtype, device
        Namespace, dtype and device of the result.

    Returns
    -------
    array
        Array of ``xp`` with the given shape, dtype and device.
    """
    values = host_rng(seed).uniform(-bound, bound, size=shape)
    return convert(values, xp=xp, dtype=dtype, device=device)
