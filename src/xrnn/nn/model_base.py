"""What a model is built from, its modes, prediction and torch state dicts.

A base of :class:`xrnn.SequenceModel`; see there.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._util.activations import softmax
from .._util.namespaces import convert, namespace
from .._util.typing import Array
from .._util.validation import check_int
from ..cells.definition import DEFINED, DefinedCell
from .cell_layer import bound_layer, reference, resolve
from .dense import Dense
from .inputs import as_array, batch_axis_hint
from .layers import GRU, LSTM, RNN
from .minimal import MinGRU, MinLSTM, MinRecurrent
from .options import options

__all__ = ["HEADS", "LAYERS", "ModelBase", "check_options", "extra_options", "layer_class"]

#: The recurrent layer class of each ``cell`` name that a SequenceModel takes.
LAYERS: dict[str, type[RNN] | type[LSTM] | type[GRU] | type[MinRecurrent]] = {
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
}
#: What the head reads: every step's output, or each sequence's final state.
HEADS = ("every", "last")
#: Options of every layer class, which the model takes by name.
_SHARED = ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first")


def layer_class(cell: Any) -> tuple[str, Any]:
    """``(name, layer class)`` of a model's ``cell``: a name of :data:`LAYERS` or a defined cell.

    A defined cell (:func:`xrnn.cells.define`) is named by its reference ``"<name>@<fingerprint>"``
    (:func:`xrnn.nn.cell_layer.reference`), which resolves only to the same registered definition;
    it may be given as the cell, its reference, or the name it is registered under.
    """
    if isinstance(cell, DefinedCell):
        return reference(cell), bound_layer(cell)
    if isinstance(cell, str) and cell in LAYERS:
        return cell, LAYERS[cell]
    if isinstance(cell, str) and cell in DEFINED:  # the name it is registered under
        return reference(DEFINED[cell]), bound_layer(DEFINED[cell])
    defined = resolve(cell) if isinstance(cell, str) else None
    if defined is None:
        raise ValueError(
            f"cell must be one of {', '.join(LAYERS)} or a cell of xrnn.cells.define, got {cell!r}"
        )
    return cell, bound_layer(defined)


def extra_options(cell: str) -> list[str]:
    """The options of ``cell``'s layer class beyond those every layer has (e.g. ``nonlinearity``)."""
    return [name for name in options(layer_class(cell)[1]) if name not in _SHARED]


class ModelBase:
    """Construction from state dicts, modes and prediction of :class:`xrnn.SequenceModel` (its base)."""

    rnn: Any
    head: Any
    head_mode: str
    _training: bool

    @property
    def batch_first(self) -> bool:
        """Layout of ``x``: ``(N, T, I)`` if True, else ``(T, N, I)``."""
        return bool(self.rnn.batch_first)

    def _last(self, state: Any) -> Array:
        raise NotImplementedError

    def forward(self, x: Any, state: Any = None, lengths: Any = None, *, cast: bool = False) -> Any:
        """``z, state, cache`` (defined by each model class)."""
        raise NotImplementedError

    def __call__(self, x: Array, state: Any = None, lengths: Any = None, *, cast: bool = False) -> Any:
        """``z, state = model(x)``: :meth:`forward` without the cache, as a ``torch.nn.Module`` call.

        Parameters
        ----------
        x : array or array-like, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        state : array (L*D, N, H), or tuple (h, c) for the LSTM, optional
            Initial recurrent state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence.
        cast : bool, default False
            As :meth:`forward`.

        Returns
        -------
        z : array
            As :meth:`forward`.
        state : array or tuple (h, c)
            As :meth:`forward`.
        """
        z, state, _ = self.forward(x, state, lengths, cast=cast)
        return z, state

    def _assemble(self, cell: str, layer: Any, head: str) -> None:
        raise NotImplementedError

    def _features(self) -> int:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Array]:
        """The parameters by key (defined by each model class)."""
        raise NotImplementedError

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        cell: str | DefinedCell,
        *,
        head: str = "every",
        batch_first: bool = False,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
        **layer_options: Any,
    ) -> Any:
        """Build a model from the ``state_dict`` of a torch module with ``rnn`` and ``head``.

        Parameters
        ----------
        sd : mapping of str to array
            ``"rnn.<key>"`` for the recurrent layer's keys (see :mod:`xrnn.nn.layers`) and
            ``"head.weight"`` ``(O, D*H)``, ``"head.bias"`` ``(O,)``; values of any
            namespace (torch tensors included). Sizes, layers and directions are read
            from the keys.
        cell : str or DefinedCell
            The recurrent cell (a state dict does not record it): a name of :data:`LAYERS`,
            or a cell of :func:`xrnn.cells.define`, given as the cell, its reference
            ``"<name>@<fingerprint>"`` or the name it is registered under.
        head : {"every", "last"}, default "every"
            What the head reads (see the class).
        batch_first : bool, default False
            Layout of ``x`` for the new model.
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.
        **layer_options
            Passed to the layer class's ``from_state_dict`` (``nonlinearity`` of the RNN).

        Returns
        -------
        SequenceModel
            A model holding copies of the values.
        """
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        cell, layer_cls = layer_class(cell)
        heads = {"head.weight", "head.bias"}
        unknown = sorted(k for k in sd if not (k.startswith("rnn.") or k in heads))
        if unknown or not heads <= set(sd):
            raise ValueError(
                "state_dict must hold 'rnn.<layer key>', 'head.weight' and 'head.bias', got "
                f"unexpected {unknown}, missing {sorted(heads - set(sd))}"
            )
        layer = layer_cls.from_state_dict(
            {k.removeprefix("rnn."): v for k, v in sd.items() if k.startswith("rnn.")},
            batch_first=batch_first,
            xp=xp,
            dtype=dtype,
            device=device,
            **layer_options,
        )
        model = cls.__new__(cls)
        model._assemble(cell, layer, head)
        weight = sd["head.weight"]
        if len(weight.shape) != 2:
            raise ValueError(f"state_dict['head.weight'] must be 2-d (O, D*H), got {tuple(weight.shape)}")
        place = {"dtype": layer.dtype, "device": layer.device, "xp": layer.xp}
        model.head = Dense(model._features(), int(weight.shape[0]), **place)
        for key, shape in model.head.param_shapes().items():
            if tuple(sd[f"head.{key}"].shape) != shape:
                raise ValueError(
                    f"state_dict['head.{key}'] must have shape {shape} for this layer, "
                    f"got {tuple(sd[f'head.{key}'].shape)}"
                )
        model.head.params = {k: convert(sd[f"head.{k}"], **place) for k in ("weight", "bias")}
        return model

    def state_dict(self) -> dict[str, Array]:
        """The parameters under the keys of the matching torch module's ``state_dict()``.

        Returns
        -------
        dict of str to array
            A new dict of the parameter arrays (not copies), as :attr:`params`.
        """
        return self.params

    @property
    def training(self) -> bool:
        """True in training mode (dropout on, where the layer has it), False in evaluation mode."""
        return bool(getattr(self.rnn, "training", self._training))

    def train(self, mode: bool = True) -> Any:
        """Set training mode (the layer's dropout, if any, is on), as ``torch.nn.Module.train``.

        Parameters
        ----------
        mode : bool, default True
            True for training, False for evaluation.

        Returns
        -------
        SequenceModel
            The model itself.
        """
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be True or False, got {mode!r}")
        self._training = mode
        if hasattr(self.rnn, "train"):
            self.rnn.train(mode)
        return self

    def eval(self) -> Any:
        """Set evaluation mode: ``train(False)``.

        Returns
        -------
        SequenceModel
            The model itself.
        """
        return self.train(False)

    def predict(
        self, x: Array, lengths: Any = None, batch_size: int | None = None, *, cast: bool = False
    ) -> Array:
        """The outputs for ``x``, in evaluation mode, keeping nothing for backward.

        Parameters
        ----------
        x : array or array-like, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences, in the model's namespace and dtype; a list or a pandas object
            is converted (see :mod:`xrnn.nn.inputs`).
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence.
        batch_size : int, optional
            Run ``batch_size`` sequences at a time (less memory); all at once if omitted.
        cast : bool, default False
            Convert ``x`` of another floating dtype to the model's (a copy); without it,
            another dtype is a ``TypeError``.

        Returns
        -------
        array, shape like forward's ``z``
            ``forward(x, lengths=lengths)[0]``, computed without a cache (the layer's
            ``need_cache=False``) and with dropout off, whatever the model's mode, which is
            not changed (so ``predict`` may run from several threads at once). It
            has the ``N`` of ``x`` as the model reads it: axis 1 of ``x``, axis 0 if
            batch_first (``lengths`` of another size is an error that names
            ``batch_first``).
        """
        x = self._input(x, lengths, cast)
        n = self._batch_size_of(x)
        if batch_size is None:
            batch_size = n
        check_int("batch_size", batch_size)
        xp = namespace(x=x)
        axis = 0 if self.batch_first else 1
        parts = []
        for start in range(0, n, batch_size):  # the model's mode is read, never flipped
            stop = min(start + batch_size, n)
            block = x[start:stop, ...] if axis == 0 else x[:, start:stop, ...]
            part = None if lengths is None else _slice_lengths(lengths, n, start, stop)
            h, state, _ = self.rnn.forward(block, None, part, need_cache=False, training=False)
            z, _ = self.head.forward(self._last(state) if self.head_mode == "last" else h)
            parts.append(z)
        out_axis = 0 if self.head_mode == "last" else axis
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=out_axis)

    def predict_proba(self, x: Array, lengths: Any = None, batch_size: int | None = None) -> Array:
        """Class probabilities: the softmax of :meth:`predict` over the outputs.

        Parameters
        ----------
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence.
        batch_size : int, optional
            Sequences at a time, as :meth:`predict`.

        Returns
        -------
        array, shape like forward's ``z``
            Non-negative, summing to 1 over the last axis (``output_size`` classes).
        """
        return softmax(self.predict(x, lengths, batch_size), axis=-1)

    def _input(self, x: Any, lengths: Any, cast: bool) -> Array:
        """``x`` in the model's namespace (:mod:`.inputs`), and ``lengths`` one per sequence of it."""
        x = as_array("x", x, xp=self.rnn.xp, dtype=self.rnn.dtype, device=self.rnn.device, cast=cast)
        if lengths is not None and len(x.shape) == 3 and hasattr(lengths, "__len__"):
            n = int(x.shape[0] if self.batch_first else x.shape[1])
            count = len(lengths)
            if count != n:
                hint = batch_axis_hint(tuple(x.shape), self.batch_first, count)
                raise ValueError(f"lengths must have one entry per sequence (N={n}), got {count}{hint}")
        return x

    def _batch_size_of(self, x: Array) -> int:
        namespace(x=x, model=self.rnn.params["weight_ih_l0"])
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        if len(x.shape) != 3:
            raise ValueError(f"x must have 3 dimensions {layout}, got shape {tuple(x.shape)}")
        if 0 in tuple(x.shape[:2]):
            raise ValueError(
                f"x must hold at least one step of one sequence {layout}, got shape {tuple(x.shape)}"
            )
        return int(x.shape[0] if self.batch_first else x.shape[1])


def check_options(cell: str, given: Mapping[str, Any]) -> None:
    """Refuse a layer option that ``cell``'s layer class does not take, naming those it does."""
    allowed = extra_options(cell)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(
            f"the {cell} layer takes no option {', '.join(map(repr, unknown))}; "
            f"its further options are {allowed or 'none'}"
        )


def _slice_lengths(lengths: Any, n: int, start: int, stop: int) -> Any:
    """``lengths[start:stop]`` of a sequence or 1-d array of ``n`` entries."""
    if not hasattr(lengths, "__getitem__") or isinstance(lengths, (str, bytes)):
        raise TypeError(f"lengths must be a sequence of int or a 1-d array, got {lengths!r}")
    count = lengths.shape[0] if hasattr(lengths, "shape") else len(lengths)
    if count != n:
        raise ValueError(f"lengths must have one entry per sequence (N={n}), got {count}")
    return lengths[start:stop]
