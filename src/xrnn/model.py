"""A trainable sequence model: a recurrent layer (RNN, LSTM or GRU) and a dense head on every step.

::

    h, state = rnn(x)        x (T, N, I)  ->  h (T, N, H)
    z = head(h)              h (T, N, H)  ->  z (T, N, O)

Its parameters are one flat dict, the layer's under ``"rnn."`` and the head's under
``"head."`` (``"rnn.weight_ih_l0"``, ..., ``"head.weight"``, ``"head.bias"``), which is
what the optimisers of :mod:`xrnn.optim` and the checkpoints of :mod:`xrnn.io` work on.
Its :attr:`~SequenceModel.config` (sizes and cell) is enough to rebuild it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from ._backend import host_rng, resolve_dtype, resolve_namespace
from ._typing import Array
from .layers import GRU, LSTM, RNN, LayerCache
from .output import Dense, DenseCache

__all__ = ["LAYERS", "ModelCache", "SequenceModel"]


#: The recurrent layer class of each ``cell`` name that a SequenceModel takes.
LAYERS: dict[str, type[RNN] | type[LSTM] | type[GRU]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class ModelCache(NamedTuple):
    """What :meth:`SequenceModel.backward` needs: the caches of the layer and of the head."""

    rnn: LayerCache
    head: DenseCache


class SequenceModel:
    """A recurrent layer followed by a dense layer applied at every step.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
        The recurrent cell (``"rnn"`` is the tanh Elman RNN).
    input_size : int
        Features per input step ``I``.
    hidden_size : int
        Hidden features ``H``.
    output_size : int
        Outputs per step ``O`` (classes, or regression targets).
    num_layers : int, default 1
        Stacked recurrent layers.
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the parameters.
    device : device, optional
        Device of the parameters.
    xp : str or module, optional
        Backend name or array namespace (default: ``XRNN_BACKEND``).
    seed : int or numpy.random.Generator, optional
        Seed of the initial values.

    Attributes
    ----------
    rnn : RNN, LSTM or GRU
        The recurrent layer (time-major).
    head : Dense
        The output layer.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        num_layers: int = 1,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        if cell not in LAYERS:
            raise ValueError(f"cell must be one of {', '.join(LAYERS)}, got {cell!r}")
        namespace_ = resolve_namespace(xp)
        dtype_ = resolve_dtype(dtype, namespace_)
        rng = host_rng(seed)
        self.cell = cell
        self.rnn = LAYERS[cell](
            input_size, hidden_size, num_layers, dtype=dtype_, device=device, xp=namespace_, seed=rng
        )
        self.head = Dense(hidden_size, output_size, dtype=dtype_, device=device, xp=namespace_, seed=rng)

    @property
    def config(self) -> dict[str, Any]:
        """What rebuilds the model: ``SequenceModel(**config)`` (JSON-serialisable).

        Returns
        -------
        dict
            ``cell``, ``input_size``, ``hidden_size``, ``output_size``, ``num_layers``.
        """
        return {
            "cell": self.cell,
            "input_size": self.rnn.input_size,
            "hidden_size": self.rnn.hidden_size,
            "output_size": self.head.out_features,
            "num_layers": self.rnn.num_layers,
        }

    @property
    def xp(self) -> ModuleType:
        """Array namespace of the parameters."""
        return self.rnn.xp

    @property
    def dtype(self) -> Any:
        """Dtype of the parameters."""
        return self.rnn.dtype

    @property
    def device(self) -> Any:
        """Device of the parameters."""
        return self.rnn.device

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every parameter under its flat key.

        Returns
        -------
        dict of str to tuple of int
            ``"rnn.<torch key>"`` and ``"head.weight"``, ``"head.bias"``.
        """
        shapes = {f"rnn.{k}": tuple(v.shape) for k, v in self.rnn.params.items()}
        return shapes | {f"head.{k}": s for k, s in self.head.param_shapes().items()}

    @property
    def params(self) -> dict[str, Array]:
        """All parameters under flat keys (a new dict of the arrays, not copies).

        Returns
        -------
        dict of str to array
            Shapes as :meth:`param_shapes`.
        """
        return {f"rnn.{k}": v for k, v in self.rnn.params.items()} | {
            f"head.{k}": v for k, v in self.head.params.items()
        }

    def set_params(self, params: Mapping[str, Array]) -> None:
        """Replace every parameter (e.g. with an optimiser's result).

        Parameters
        ----------
        params : dict of str to array
            Exactly the keys of :attr:`params`, each of its shape, in the model's
            namespace and dtype.
        """
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        shapes = self.param_shapes()
        if set(params) != set(shapes):
            missing, unexpected = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
            raise ValueError(
                f"params must have the keys of this {self.cell} model; "
                f"missing {missing}, unexpected {unexpected}"
            )
        for key, shape in shapes.items():
            if tuple(params[key].shape) != shape:
                raise ValueError(f"params[{key!r}] must have shape {shape}, got {tuple(params[key].shape)}")
        self.rnn.params = {k: params[f"rnn.{k}"] for k in self.rnn.params}
        self.head.params = {k: params[f"head.{k}"] for k in self.head.params}

    def forward(self, x: Array, state: Any = None) -> tuple[Array, Any, ModelCache]:
        """Run the model over a batch of sequences.

        Parameters
        ----------
        x : array, shape (T, N, input_size)
            Input sequences (time-major), in the model's namespace and dtype.
        state : array (L, N, H), or tuple (h, c) for the LSTM, optional
            Initial recurrent state; zeros if omitted.

        Returns
        -------
        z : array, shape (T, N, output_size)
            Outputs at every step (logits or predictions).
        state : array (L, N, H), or tuple (h, c)
            Recurrent state after the last step.
        cache : ModelCache
            Input to :meth:`backward`.
        """
        h, state, rnn_cache = self.rnn.forward(x, state)
        z, head_cache = self.head.forward(h)
        return z, state, ModelCache(rnn_cache, head_cache)

    __call__ = forward

    def apply(
        self, params: Mapping[str, Array], x: Array, state: Any = None, lengths: Any = None
    ) -> tuple[Array, Any]:
        """The model as a pure function of ``params``, differentiable by JAX and torch.

        The recurrent layer runs :meth:`LSTM.apply <xrnn.LSTM.apply>` (xrnn's own
        backward under ``jax.grad`` and torch autograd) and the head is ``h @ W^T + b`` in
        the arrays' namespace; nothing of the model is read but its configuration.

        Parameters
        ----------
        params : dict of str to array
            Exactly the keys and shapes of :attr:`params`, in the namespace of ``x``.
        x : array, shape (T, N, input_size)
            Input sequences (time-major).
        state : array (L, N, H), or tuple (h, c) for the LSTM, optional
            Initial recurrent state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps per sequence; past its length a sequence's output is the head's bias.

        Returns
        -------
        z : array, shape (T, N, output_size)
            Outputs at every step.
        state : array (L, N, H), or tuple (h, c)
            Recurrent state after each sequence's last valid step.
        """
        shapes = self.param_shapes()
        if not isinstance(params, Mapping) or set(params) != set(shapes):
            got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(f"params must have the keys {sorted(shapes)} of this model, got {got}")
        h, state = self.rnn.apply({k: params[f"rnn.{k}"] for k in self.rnn.params}, x, state, lengths)
        z = h @ params["head.weight"].T + params["head.bias"]  # (T, N, H) @ (H, O) -> (T, N, O)
        return z, state

    def backward(self, cache: ModelCache, dz: Array) -> tuple[Array, dict[str, Array]]:
        """Backpropagate a gradient of the outputs through the head and through time.

        Parameters
        ----------
        cache : ModelCache
            Third result of :meth:`forward` with the current parameters.
        dz : array, shape (T, N, output_size)
            Gradient of the loss with respect to ``z``.

        Returns
        -------
        dx : array, shape (T, N, input_size)
            Gradient with respect to the input at every step.
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        if not isinstance(cache, ModelCache):
            raise TypeError(f"cache must be the ModelCache returned by forward, got {type(cache).__name__}")
        dh, head_grads = self.head.backward(cache.head, dz)
        dx, _, rnn_grads = self.rnn.backward(cache.rnn, dh)
        grads = {f"rnn.{k}": g for k, g in rnn_grads.items()} | {
            f"head.{k}": g for k, g in head_grads.items()
        }
        return dx, grads

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SequenceModel({c['cell']!r}, {c['input_size']}, {c['hidden_size']}, {c['output_size']}, "
            f"num_layers={c['num_layers']}, dtype={self.head.params['weight'].dtype})"
        )
