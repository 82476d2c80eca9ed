"""A trainable sequence model: a recurrent layer (RNN, LSTM or GRU) and a dense head.

::

    h, state = rnn(x)                  x (T, N, I)  ->  h (T, N, D*H)
    z = head(h)           head="every":  h (T, N, D*H) ->  z (T, N, O)     many to many
    z = head(h_last)      head="last":   h_last (N, D*H) -> z (N, O)       many to one

``h_last`` is each sequence's final state from the top layer, as torch users read it from
``h_n``: the forward direction at the sequence's last valid step and, when
bidirectional, the reverse direction at step 0 (``torch.cat([h_n[-2], h_n[-1]], 1)``).

Its parameters are one flat dict, the layer's under ``"rnn."`` and the head's under
``"head."`` (``"rnn.weight_ih_l0"``, ..., ``"head.weight"``, ``"head.bias"``): the
``state_dict`` keys of a ``torch.nn.Module`` with attributes ``rnn`` (the recurrent layer)
and ``head`` (a ``torch.nn.Linear``), and what the optimisers of :mod:`xrnn.training.optim` and
the checkpoints of :mod:`xrnn.io.checkpoint` work on. Its :attr:`~SequenceModel.config` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from .._util.namespaces import host_rng, namespace, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_bool, check_int
from . import inference
from .dense import Dense, DenseCache
from .layers import LayerCache
from .model_base import HEADS, LAYERS, ModelBase, check_options, layer_class
from .options import config_of, plain
from .ownership import owned

__all__ = ["HEADS", "LAYERS", "ModelCache", "SequenceModel"]


class ModelCache(NamedTuple):
    """What :meth:`SequenceModel.backward` needs: the caches of the layer and of the head."""

    rnn: LayerCache
    head: DenseCache


class SequenceModel(ModelBase):
    """A recurrent layer followed by a dense layer, at every step or on the final state.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
        The recurrent cell (``"rnn"`` is the Elman RNN, tanh unless ``nonlinearity="relu"``).
    input_size : int
        Features per input step ``I``.
    hidden_size : int
        Hidden features ``H``.
    output_size : int
        Outputs ``O`` (classes, or regression targets).
    num_layers : int, default 1
        Stacked recurrent layers ``L`` (positional after ``output_size``, as in the layers).
    bidirectional : bool, default False
        Add a reverse direction per layer (``D = 2``); the head reads both.
    batch_first : bool, default False
        ``x`` is ``(N, T, I)`` and ``z`` (with ``head="every"``) ``(N, T, O)``.
    head : {"every", "last"}, default "every"
        ``"every"``: the head at every step, ``z (T, N, O)`` (many to many).
        ``"last"``: the head on each sequence's final state, ``z (N, O)`` (many to one):
        the top layer's forward direction at the sequence's last valid step (see
        ``lengths``) and, if bidirectional, its reverse direction at step 0.
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the parameters.
    device : device, optional
        Device of the parameters.
    xp : str or module, optional
        Backend name or array namespace (default: ``XRNN_BACKEND``).
    seed : int or numpy.random.Generator, optional
        Seed of the initial values.
    **layer_options
        Further options of the layer class, passed to it by name: ``nonlinearity`` of
        :class:`xrnn.RNN`, and those the layers define (``bias``, ``dropout``,
        ``proj_size`` of the LSTM). An option the layer does not take is a ``TypeError``.

    Attributes
    ----------
    rnn : RNN, LSTM or GRU
        The recurrent layer.
    head : Dense
        The output layer, ``D*H`` features in (``D*proj_size`` with an LSTM projection).
    head_mode : {"every", "last"}
        The ``head`` argument.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        batch_first: bool = False,
        head: str = "every",
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
        **layer_options: Any,
    ) -> None:
        cell, layer_cls = layer_class(cell)
        check_options(cell, layer_options)
        for name, flag in (("bidirectional", bidirectional), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        namespace_ = resolve_namespace(xp)
        dtype_ = resolve_dtype(dtype, namespace_)
        rng = host_rng(seed)
        layer = layer_cls(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dtype=dtype_,
            device=device,
            xp=namespace_,
            seed=rng,
            **layer_options,
        )
        check_int("output_size", output_size)
        self._assemble(cell, layer, head)
        self.head = Dense(self._features(), output_size, dtype=dtype_, device=device, xp=namespace_, seed=rng)

    def _assemble(self, cell: str, layer: Any, head: str) -> None:
        if head not in HEADS:
            raise ValueError(f"head must be 'every' or 'last', got {head!r}")
        self.cell, self.rnn, self.head_mode = cell, layer, head
        self._training = True

    def _features(self) -> int:
        """Features the head reads: ``D*H``, or ``D*proj_size`` with an LSTM projection."""
        width = getattr(self.rnn, "proj_size", 0) or self.rnn.hidden_size
        return self.rnn.num_directions * width

    @property
    def config(self) -> dict[str, Any]:
        """What rebuilds the model: ``SequenceModel(**config)`` (JSON-serialisable).

        Returns
        -------
        dict
            ``cell``, ``input_size``, ``hidden_size``, ``output_size``, ``num_layers``,
            ``bidirectional``, ``batch_first``, ``head``, and the layer's further options.
        """
        layer = config_of(self.rnn)
        return {
            "cell": self.cell,
            "input_size": layer.pop("input_size"),
            "hidden_size": layer.pop("hidden_size"),
            "output_size": plain(self.head.out_features),  # a NumPy integer given is saved as an int
            "num_layers": layer.pop("num_layers"),
            "bidirectional": layer.pop("bidirectional"),
            "batch_first": layer.pop("batch_first"),
            "head": self.head_mode,
            **layer,
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
            namespace, dtype and device (anything else is refused, naming the key); the
            model holds these arrays (not copies), a torch tensor detached from its graph.
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
        place = {"xp": self.xp, "dtype": self.dtype, "device": self.device}
        given = {key: owned(f"params[{key!r}]", params[key], **place) for key in shapes}
        for key, shape in shapes.items():
            if tuple(given[key].shape) != shape:
                raise ValueError(f"params[{key!r}] must have shape {shape}, got {tuple(given[key].shape)}")
        self.rnn.params = {k: given[f"rnn.{k}"] for k in self.rnn.params}
        inference.forget(self.rnn)  # its prepared weights, even of the same arrays (written in place)
        self.head.params = {k: given[f"head.{k}"] for k in self.head.params}

    def forward(
        self,
        x: Array,
        state: Any = None,
        lengths: Any = None,
        *,
        cast: bool = False,
        training: bool | None = None,
    ) -> tuple[Array, Any, ModelCache]:
        """Run the model over a batch of sequences.

        Parameters
        ----------
        x : array or array-like, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences, in the model's namespace and dtype; a list or a pandas object
            is converted (see :mod:`xrnn.nn.inputs`).
        state : array (L*D, N, H), or tuple (h, c) for the LSTM (h of size P with proj_size=P), optional
            Initial recurrent state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence, each in 1..T; steps past it are padding.
        cast : bool, default False
            Convert ``x`` of another floating dtype to the model's (a copy); without it,
            another dtype is a ``TypeError``.
        training : bool, optional
            The mode of this call (False: no dropout); None follows :attr:`training`. The
            model is not changed.

        Returns
        -------
        z : array, shape (T, N, output_size) (``(N, T, output_size)`` if batch_first) or (N, output_size)
            Outputs at every step (``head="every"``; past a sequence's length the head
            reads zeros, so ``z`` is its bias there: mask those steps in the loss), or
            on each sequence's final state (``head="last"``).
        state : array (L*D, N, H), or tuple (h, c) (h of size P with proj_size=P)
            Each sequence's recurrent state at its last valid step.
        cache : ModelCache
            Input to :meth:`backward`.
        """
        x = self._input(x, lengths, cast)
        h, state, rnn_cache = self.rnn.forward(x, state, lengths, training=training)
        z, head_cache = self.head.forward(self._last(state) if self.head_mode == "last" else h)
        return z, state, ModelCache(rnn_cache, head_cache)

    def _last(self, state: Any) -> Array:
        """The top layer's final state of both directions, ``(N, D*H)``."""
        h = state[0] if isinstance(state, tuple) else state  # (L*D, N, H)
        xp = namespace(state=h)
        dirs = self.rnn.num_directions
        top = [h[h.shape[0] - dirs + d, ...] for d in range(dirs)]  # D x (N, H)
        return top[0] if dirs == 1 else xp.concat(top, axis=-1)

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
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        state : array (L*D, N, H), or tuple (h, c) for the LSTM (h of size P with proj_size=P), optional
            Initial recurrent state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps per sequence; past its length a sequence's output is the head's bias.

        Returns
        -------
        z : array, shape like :meth:`forward`'s
            Outputs at every step (``head="every"``) or on each final state (``"last"``).
        state : array (L*D, N, H), or tuple (h, c) (h of size P with proj_size=P)
            Recurrent state after each sequence's last valid step.
        """
        shapes = self.param_shapes()
        if not isinstance(params, Mapping) or set(params) != set(shapes):
            got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(f"params must have the keys {sorted(shapes)} of this model, got {got}")
        h, state = self.rnn.apply({k: params[f"rnn.{k}"] for k in self.rnn.params}, x, state, lengths)
        h = self._last(state) if self.head_mode == "last" else h  # (N, D*H) or (T, N, D*H)
        z = h @ params["head.weight"].T + params["head.bias"]  # (..., D*H) @ (D*H, O)
        return z, state

    def backward(
        self, cache: ModelCache, dz: Array, *, need_dx: bool = True
    ) -> tuple[Array, dict[str, Array]]:
        """Backpropagate a gradient of the outputs through the head and through time.

        Parameters
        ----------
        cache : ModelCache
            Third result of :meth:`forward` with the current parameters.
        dz : array, shape like forward's ``z``
            Gradient of the loss with respect to ``z``.
        need_dx : bool, default True
            False: the gradient with respect to ``x`` is not computed (``dx`` is None), one
            product fewer in the first recurrent layer; a training step needs none.

        Returns
        -------
        dx : array, shape like ``x``, or None without ``need_dx``
            Gradient with respect to the input at every step.
        grads : dict of str to array
            Gradient of every parameter, under the keys of :attr:`params`.
        """
        if not isinstance(cache, ModelCache):
            raise TypeError(f"cache must be the ModelCache returned by forward, got {type(cache).__name__}")
        if isinstance(cache.head, DenseCache) and hasattr(dz, "shape"):  # named dz, not the head's dy
            expected = (*cache.head.h.shape[:-1], self.head.out_features)
            if tuple(dz.shape) != expected:
                got = tuple(dz.shape)
                raise ValueError(f"dz must have shape {expected} like forward's z, got shape {got}")
        check_bool("need_dx", need_dx)
        dh, head_grads = self.head.backward(cache.head, dz)
        if self.head_mode == "last":
            dx, _, rnn_grads = self.rnn.backward(cache.rnn, None, self._dstate(dh), need_dx=need_dx)
        else:
            dx, _, rnn_grads = self.rnn.backward(cache.rnn, dh, need_dx=need_dx)
        grads = {f"rnn.{k}": g for k, g in rnn_grads.items()} | {
            f"head.{k}": g for k, g in head_grads.items()
        }
        return dx, grads

    def _require_every_step(self, user: str) -> None:
        """Refuse this model where ``user`` reads ``z (T, N, O)``: time-major, ``head="every"`` only.

        Parameters
        ----------
        user : str
            What needs it, for the message (e.g. ``"xrnn.train"``).
        """
        if self.head_mode != "every" or self.batch_first:
            raise ValueError(
                f"{user} reads the outputs at every step of a time-major model: model must have "
                f"head='every' and batch_first=False, got head={self.head_mode!r}, "
                f"batch_first={self.batch_first} (train such a model on arrays with xrnn.fit)"
            )

    def _dstate(self, dlast: Array) -> Any:
        """The gradient of the final state whose top layer ``_last`` read: zeros below it."""
        xp = namespace(dz=dlast)
        dirs, width = self.rnn.num_directions, dlast.shape[-1] // self.rnn.num_directions
        parts = [dlast[:, d * width : (d + 1) * width] for d in range(dirs)]  # D x (N, H)
        below = (self.rnn.num_layers - 1) * dirs
        zeros = [xp.zeros_like(parts[0]) for _ in range(below)]
        dh = xp.stack(zeros + parts)  # (L*D, N, H)
        return (dh, None) if self.rnn._cell.n_states == 2 else dh

    def __repr__(self) -> str:
        c = self.config
        extra = "".join(
            f", {k}={v!r}"
            for k, v in c.items()
            if k not in ("cell", "input_size", "hidden_size", "output_size")
        )
        return (
            f"SequenceModel({c['cell']!r}, {c['input_size']}, {c['hidden_size']}, {c['output_size']}"
            f"{extra}, dtype={self.head.params['weight'].dtype})"
        )
