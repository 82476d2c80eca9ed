"""Batch inference over Dask: :func:`predict`, a model's forward pass block by block along N.

The time loop never runs on a lazy array: each block of sequences arrives on a worker as
a NumPy (or CuPy) array and runs the model's ``predict`` there (evaluation mode: no
dropout), with its share of the lengths. The parameters are one key of the
task graph, which a worker fetches once and keeps while its blocks run; the model it
rebuilds from them is kept per worker, not per block.
"""

from __future__ import annotations

import collections
import threading
import warnings
from typing import Any

from array_api_compat import array_namespace

from .._util.namespaces import convert, to_host
from .._util.typing import Array
from .._util.validation import lengths_list
from ..nn.model import SequenceModel

__all__ = ["predict"]

EXTRA = "pip install '.[distributed]' (from the checkout)"
# Models rebuilt on this worker, by token and namespace: a few, for a few models in turn.
_MODELS: collections.OrderedDict[tuple[str, str], SequenceModel] = collections.OrderedDict()
_LOCK = threading.Lock()


def predict(model: SequenceModel, x: Any, lengths: Any = None) -> Any:
    """The model's outputs for a Dask array of sequences, computed block by block on the workers.

    Serves every model that :meth:`SequenceModel.predict <xrnn.SequenceModel.predict>`
    serves (``head="every"`` or ``"last"``, time-major or ``batch_first``, variable
    lengths) and gives its results: each block runs ``predict`` on a worker's copy of the
    model, in evaluation mode (no dropout, whatever the mode of ``model``).

    Parameters
    ----------
    model : SequenceModel
        The model; its parameters are copied to the host once and sent once per worker.
    x : dask.array.Array, shape (T, N, input_size), or (N, T, input_size) if batch_first
        Input sequences, chunked along ``N`` only: one chunk along ``T`` and along
        ``input_size``. Its blocks are NumPy (or CuPy) arrays of the model's dtype.
    lengths : sequence of int, integer array or dask.array.Array, shape (N,), optional
        Valid steps of each sequence, each in 1..T (cut into the chunks of ``x``).

    Returns
    -------
    dask.array.Array
        Lazy outputs ``z`` as ``predict``'s: ``(T, N, output_size)`` (``(N, T,
        output_size)`` batch_first) with ``head="every"``, ``(N, output_size)`` with
        ``head="last"``, chunked along ``N`` like ``x``; ``.compute()`` (or a
        ``dask.distributed.Client``) runs the blocks.

    Raises
    ------
    TypeError
        If ``x`` is not a Dask array or its dtype is not the model's.
    ValueError
        If ``x`` is not 3-d with ``input_size`` features, is chunked along ``T`` or
        ``input_size`` (``x.rechunk`` fixes that), or ``lengths`` does not hold ``N``
        integers in 1..T.
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
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array {_layout(model)}, got {type(x).__name__}")
    n_axis, t_axis = (0, 1) if model.batch_first else (1, 0)
    if x.ndim != 3 or x.shape[2] != model.rnn.input_size:
        want = _layout(model).replace("input_size", str(model.rnn.input_size))
        raise ValueError(f"x must have shape {want} {_layout(model)}, got shape {x.shape}")
    for axis, name in ((t_axis, "T"), (2, "input_size")):
        if len(x.chunks[axis]) != 1:
            raise ValueError(
                f"x must be chunked along N (axis {n_axis}) only, got chunks {x.chunks[axis]} along {name} "
                f"(axis {axis}); rechunk with x.rechunk({{{axis}: -1}})"
            )
    dtype = _dtype_name(model.dtype)
    if str(x.dtype) != dtype:
        raise TypeError(f"x must have the model's dtype {dtype}, got {x.dtype}")
    params = {k: to_host(v) for k, v in model.params.items()}
    token = dask.base.tokenize(model.config, dtype, params)
    spec = dask.delayed((token, model.config, dtype, params), pure=True, name=f"xrnn-params-{token}")
    lens = _lengths_along(lengths, x, n_axis, t_axis)
    out = model.head.out_features
    if model.head_mode == "last":  # (N, O): the time axis is dropped
        chunks: tuple[Any, ...] = (x.chunks[n_axis], (out,))
        meta, drop = x._meta.reshape((0, 0)), t_axis
        return da.map_blocks(
            _forward_block, x, lens, spec, chunks=chunks, drop_axis=drop, dtype=x.dtype, meta=meta
        )
    chunks = (x.chunks[0], x.chunks[1], (out,))
    meta = x._meta[:0, :0, :0]
    return da.map_blocks(_forward_block, x, lens, spec, chunks=chunks, dtype=x.dtype, meta=meta)


def _layout(model: SequenceModel) -> str:
    return "(N, T, input_size)" if model.batch_first else "(T, N, input_size)"


def _lengths_along(lengths: Any, x: Any, n_axis: int, t_axis: int) -> Any:
    """``lengths`` as a 3-d Dask array of ``N`` along ``n_axis`` and 1 elsewhere, chunked like ``x``."""
    import dask.array as da
    import numpy as np

    n, t_steps = int(x.shape[n_axis]), int(x.shape[t_axis])
    if lengths is None:
        flat = da.full((n,), t_steps, dtype=np.int64, chunks=(x.chunks[n_axis],))
    elif isinstance(lengths, da.Array):
        if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(
                f"lengths must hold N={n} integers (N,), got shape {lengths.shape} of {lengths.dtype}"
            )
        flat = lengths.rechunk((x.chunks[n_axis],))
    else:
        values = lengths_list(lengths, n, t_steps)
        flat = da.from_array(np.asarray(values, dtype=np.int64), chunks=(x.chunks[n_axis],))
    shape = [1, 1, 1]
    shape[n_axis] = n
    return flat.reshape(tuple(shape)).rechunk(
        tuple(x.chunks[n_axis] if a == n_axis else (1,) for a in range(3))
    )


def _forward_block(block: Array, lens: Array, spec: tuple[str, dict[str, Any], str, dict[str, Any]]) -> Array:
    """``model.predict`` on one block of ``n`` sequences, with this worker's copy of the model."""
    config = spec[1]
    n_axis = 0 if config["batch_first"] else 1
    n = block.shape[n_axis]
    if n == 0:  # dask probes a function with empty blocks
        xp = array_namespace(block)
        if config["head"] == "last":
            return xp.zeros((0, config["output_size"]), dtype=block.dtype)
        shape = [block.shape[0], block.shape[1], config["output_size"]]
        return xp.zeros(tuple(shape), dtype=block.dtype)
    values = [int(v) for v in to_host(lens).reshape(-1)]
    steps = block.shape[1 - n_axis]
    return _worker_model(spec, block).predict(block, None if min(values) == steps else values)


def _worker_model(spec: tuple[str, dict[str, Any], str, dict[str, Any]], block: Array) -> SequenceModel:
    token, config, dtype, params = spec
    xp = array_namespace(block)
    key = (token, xp.__name__)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            with warnings.catch_warnings():  # the model's own warnings were given where it was built
                warnings.simplefilter("ignore")
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
