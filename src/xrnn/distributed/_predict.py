"""Batch inference over Dask: :func:`predict`, a model's forward pass block by block along N.

The time loop never runs on a lazy array: each block of sequences arrives on a worker as
a NumPy (or CuPy) array and runs the engine there. The parameters are one key of the
task graph, which a worker fetches once and keeps while its blocks run; the model it
rebuilds from them is kept per worker, not per block.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from array_api_compat import array_namespace

from .._util.namespaces import convert, to_host
from .._util.typing import Array
from ..nn.model import SequenceModel

__all__ = ["predict"]

EXTRA = "pip install '.[distributed]' (from the checkout)"
# Models rebuilt on this worker, by token and namespace: a few, for a few models in turn.
_MODELS: collections.OrderedDict[tuple[str, str], SequenceModel] = collections.OrderedDict()
_LOCK = threading.Lock()


def predict(model: SequenceModel, x: Any) -> Any:
    """The model's outputs for a Dask array of sequences, computed block by block on the workers.

    Parameters
    ----------
    model : SequenceModel
        The model; its parameters are copied to the host once and sent once per worker.
    x : dask.array.Array, shape (T, N, input_size)
        Input sequences (time-major), chunked along ``N`` only: one chunk along ``T``
        and along ``input_size``. Its blocks are NumPy (or CuPy) arrays of the
        model's dtype.

    Returns
    -------
    dask.array.Array, shape (T, N, output_size)
        Lazy outputs ``z``, chunked along ``N`` like ``x``; ``.compute()`` (or a
        ``dask.distributed.Client``) runs ``model.forward`` on each block.

    Raises
    ------
    TypeError
        If ``x`` is not a Dask array or its dtype is not the model's.
    ValueError
        If ``x`` is not 3-d with ``input_size`` features, or is chunked along ``T`` or
        ``input_size`` (``x.rechunk({0: -1, 2: -1})`` fixes that).
    ImportError
        If Dask is not installed (``pip install '.[distributed]' (from the checkout)``).

    Examples
    --------
    >>> import dask.array as da, xrnn
    >>> from xrnn.distributed import predict
    >>> model = xrnn.SequenceModel("lstm", 2, 8, 1, seed=0)
    >>> x = da.zeros((20, 1000, 2), chunks=(20, 250, 2), dtype="float32")
    >>> predict(model, x).compute().shape
    (20, 1000, 1)
    """
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"xrnn.distributed.predict needs Dask: {EXTRA}") from exc
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    model._require_every_step("xrnn.distributed.predict")
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array (T, N, input_size), got {type(x).__name__}")
    if x.ndim != 3 or x.shape[2] != model.rnn.input_size:
        raise ValueError(
            f"x must have shape (T, N, {model.rnn.input_size}) (T, N, input_size), got shape {x.shape}"
        )
    for axis, name in ((0, "T"), (2, "input_size")):
        if len(x.chunks[axis]) != 1:
            raise ValueError(
                f"x must be chunked along N (axis 1) only, got chunks {x.chunks[axis]} along {name} "
                f"(axis {axis}); rechunk with x.rechunk({{0: -1, 2: -1}})"
            )
    dtype = _dtype_name(model.dtype)
    if str(x.dtype) != dtype:
        raise TypeError(f"x must have the model's dtype {dtype}, got {x.dtype}")
    params = {k: to_host(v) for k, v in model.params.items()}
    token = dask.base.tokenize(model.config, dtype, params)
    spec = dask.delayed((token, model.config, dtype, params), pure=True, name=f"xrnn-params-{token}")
    out_chunks = (x.chunks[0], x.chunks[1], (model.head.out_features,))
    meta = x._meta[:0, :0, :0]
    return da.map_blocks(_forward_block, x, spec, chunks=out_chunks, dtype=x.dtype, meta=meta)


def _forward_block(block: Array, spec: tuple[str, dict[str, Any], str, dict[str, Any]]) -> Array:
    """``model.forward`` on one block ``(T, n, I) -> (T, n, O)``, with this worker's copy of the model."""
    if block.shape[1] == 0:  # dask probes a function with empty blocks
        xp = array_namespace(block)
        return xp.zeros((block.shape[0], 0, spec[1]["output_size"]), dtype=block.dtype)
    z, _, _ = _worker_model(spec, block).forward(block)
    return z


def _worker_model(spec: tuple[str, dict[str, Any], str, dict[str, Any]], block: Array) -> SequenceModel:
    token, config, dtype, params = spec
    xp = array_namespace(block)
    key = (token, xp.__name__)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = SequenceModel(**config, dtype=dtype, xp=xp)
            place = {"xp": model.xp, "dtype": model.dtype, "device": model.device}
            model.set_params({k: convert(v, **place) for k, v in params.items()})
            _MODELS[key] = model
            while len(_MODELS) > 4:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(key)
    return model


def _dtype_name(dtype: Any) -> str:
    """``"float64"`` for NumPy's, CuPy's and JAX's float64 classes and for ``torch.float64``."""
    return str(getattr(dtype, "__name__", dtype)).removeprefix("torch.")
