"""Layer API: ``RNN``, ``LSTM`` and ``GRU`` with stacking, both directions and variable lengths.

Parameters are named, shaped and ordered exactly as the ``state_dict()`` of the matching
``torch.nn`` module, so weights move both ways:

================================  ==================  =========================================
key                               shape               meaning
================================  ==================  =========================================
``weight_ih_l{k}``                ``(G*H, I_k)``      input-to-hidden weights of layer ``k``
``weight_hh_l{k}``                ``(G*H, H)``        hidden-to-hidden weights of layer ``k``
``bias_ih_l{k}``                  ``(G*H,)``          input-to-hidden bias
``bias_hh_l{k}``                  ``(G*H,)``          hidden-to-hidden bias
``weight_hr_l{k}``                ``(P, H)``          LSTM projection (``proj_size = P > 0`` only)
``..._reverse``                   as above            the reverse direction (bidirectional)
================================  ==================  =========================================

``G`` is 1 (RNN), 4 (LSTM, gates ``i, f, g, o``) or 3 (GRU, gates ``r, z, n``);
``I_0 = input_size`` and ``I_k = D*H_out`` above, with ``D = 2`` if bidirectional else 1
and ``H_out = P`` with a projection, else ``H``; with a projection ``weight_hh_l{k}`` is
``(G*H, P)``. With ``bias=False`` there are no bias keys, as in torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._util.typing import Array
from .._util.validation import check_bool
from ..cells import GRU_CELL, GRU_RESET_BEFORE, LSTM_CELL, LSTM_PEEPHOLE, RNN_RELU, RNN_TANH
from .apply import Functional
from .recurrent import LayerCache, Recurrent
from .zoneout import ZONEOUT_DOC

__all__ = ["GRU", "LSTM", "RNN", "Call", "LayerCache"]


_WEIGHT_DROP_DOC = (
    "    weight_drop : float, default 0\n        DropConnect on ``weight_hh`` in training mode (AWD-LSTM): "
    "each forward pass\n        zeroes each recurrent weight with this probability, one mask per layer, "
    "direction and\n        batch, and scales the rest by ``1 / (1 - weight_drop)``; in ``[0, 1)``\n"
    "        (:mod:`xrnn.nn.weight_drop`).\n"
)

_INIT_DOC = """

    Parameters
    ----------
    input_size : int
        Features per step of the input, ``I``.
    hidden_size : int
        Features of the hidden state, ``H``.
    num_layers : int, default 1
        Stacked layers ``L``; layer ``k > 0`` reads the output of layer ``k - 1``.
    bias : bool, default True
        Use the biases ``b_ih`` and ``b_hh``; False leaves them out of :attr:`params`.
    batch_first : bool, default False
        ``x`` and ``y`` are ``(N, T, F)`` instead of ``(T, N, F)``; states are not affected.
    dropout : float, default 0
        In training mode (:meth:`train`, the mode after construction, as torch), zero each
        element of the output of every layer but the last with this probability and
        scale the rest by ``1 / (1 - dropout)``; in ``[0, 1)``. The masks come from the
        layer's generator (``seed``) and are kept in the cache, so backward is exact;
        :meth:`eval` turns dropout off. Warns with ``num_layers=1``, as torch.
    bidirectional : bool, default False
        Add a reverse-direction pass per layer (``D = 2``).
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the parameters.
    device : device, optional
        Device of the parameters (default: the namespace's default device).
    xp : str or module, optional
        Backend name or array namespace of the parameters (default: ``XRNN_BACKEND``).
    seed : int or numpy.random.Generator, optional
        Seed of the initial values, drawn uniformly in ``±1/sqrt(H)`` as torch does.

    Attributes
    ----------
    params : dict of str to array
        Parameters under ``torch.nn``'s ``state_dict`` keys (see :mod:`xrnn.nn.layers`).
    training : bool
        True in training mode (dropout on), False after :meth:`eval`.
    generator : numpy.random.Generator
        The generator of the initial values and then of the dropout masks; replace it
        (``layer.generator = numpy.random.default_rng(0)``) to draw the same masks again.
    """


class Call:
    """``out, state = layer(x)``, the call of a ``torch.nn`` recurrent module (a base of the layers)."""

    forward: Any

    def __call__(self, x: Array, state: Any = None, lengths: Any = None) -> tuple[Array, Any]:
        """``out, state = layer(x, state, lengths)``: :meth:`forward`'s outputs without the cache.

        :meth:`forward` returns ``y, state, cache``, the cache being what :meth:`backward`
        needs; the call keeps nothing for backward (``need_cache=False``), as torch's
        ``out, (h, c) = lstm(x)``.

        Parameters
        ----------
        x : array, shape (T, N, input_size), or (N, T, input_size) if batch_first
            Input sequences.
        state : array (L*D, N, H_out), or tuple (h, c) for the LSTM, optional
            Initial state; zeros if omitted.
        lengths : sequence of int or integer array, shape (N,), optional
            Valid steps of each sequence.

        Returns
        -------
        out : array, shape (T, N, D*H_out), or (N, T, D*H_out) if batch_first
            As :meth:`forward`'s ``y``.
        state : array (L*D, N, H_out), or tuple (h, c) for the LSTM
            As :meth:`forward`'s ``state``.
        """
        y, final, _ = self.forward(x, state, lengths, need_cache=False)
        return y, final


class LSTM(Call, Recurrent, Functional):
    """Long short-term memory layer, interchangeable with ``torch.nn.LSTM``.

    Gates ``i, f, g, o`` (torch's order)::

        i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*),  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c' = f * c + i * g,  h' = o * tanh(c')

    State is a tuple ``(h, c)``, each ``(L*D, N, H)``.

    With ``proj_size = P > 0`` (Sak et al. 2014, as torch), ``h`` is projected at every
    step, ``h' = W_hr (o * tanh(c'))`` with ``W_hr`` of shape ``(P, H)``: ``h`` and ``y``
    have ``P`` features per direction (state ``h`` ``(L*D, N, P)``, ``c`` still
    ``(L*D, N, H)``), ``W_hh`` is ``(4H, P)`` and layer ``k > 0`` reads ``D*P`` features.

    With ``peepholes=True`` (Gers & Schmidhuber 2000; ONNX's ``P``, TensorFlow's
    ``use_peepholes``), the input and forget gates also read ``c`` and the output gate
    ``c'``, each through a per-unit weight: ``weight_ch_l{k}`` of shape ``(3H,)``, the
    input, forget and output gates' in that order (:mod:`xrnn.cells.lstm_peephole`).
    """

    __doc__ += _INIT_DOC.replace(
        "    dtype :",
        "    proj_size : int, default 0\n        Size ``P`` of the projection of ``h``, "
        "``0 <= P < H`` (0: none).\n    peepholes : bool, default False\n        Add the "
        "peephole connections and their weights ``weight_ch_l{k}``.\n"
        + _WEIGHT_DROP_DOC
        + ZONEOUT_DOC
        + "    dtype :",
        1,
    )
    _cell = LSTM_CELL

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        peepholes: bool = False,
        weight_drop: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        check_bool("peepholes", peepholes)
        self.peepholes = bool(peepholes)
        self._cell = LSTM_PEEPHOLE if peepholes else LSTM_CELL
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size=proj_size,
            weight_drop=weight_drop,
            zoneout=zoneout,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
        )


class GRU(Call, Recurrent, Functional):
    """Gated recurrent unit layer, interchangeable with ``torch.nn.GRU``.

    Gates ``r, z, n`` (torch's order)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

    State is ``h``, ``(L*D, N, H)``.

    With ``reset_after=False``, the GRU of Keras (``reset_after=False``) and ONNX
    (``linear_before_reset=0``): the reset gate acts before the recurrent matmul and every
    bias outside it, ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``
    (:mod:`xrnn.cells.gru_reset_before`). The parameters keep torch's keys and shapes.
    """

    __doc__ += _INIT_DOC.replace(
        "    dtype :",
        "    reset_after : bool, default True\n        Apply the reset gate after the recurrent "
        "matmul (torch); False: before it (Keras, ONNX's default).\n"
        + _WEIGHT_DROP_DOC
        + ZONEOUT_DOC
        + "    dtype :",
        1,
    )
    _cell = GRU_CELL

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        reset_after: bool = True,
        weight_drop: float = 0.0,
        zoneout: float = 0.0,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        check_bool("reset_after", reset_after)
        self.reset_after = bool(reset_after)
        self._cell = GRU_CELL if reset_after else GRU_RESET_BEFORE
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
            weight_drop=weight_drop,
            zoneout=zoneout,
        )

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        reset_after: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> GRU:
        """Build a layer from a ``torch.nn.GRU``-style state dict.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as in :mod:`xrnn.nn.layers`; values of any namespace.
        reset_after : bool, default True
            Where the reset gate acts (a state dict does not record it; see :class:`GRU`).
        batch_first : bool, default False
            Layout of ``x`` for the new layer.
        dropout : float, default 0
            Dropout between layers in training mode (a state dict does not record it).
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        GRU
            A layer holding copies of the values.
        """
        return cls._build_from_state_dict(
            sd,
            batch_first=batch_first,
            dropout=dropout,
            xp=xp,
            dtype=dtype,
            device=device,
            reset_after=reset_after,
        )


class RNN(Call, Recurrent, Functional):
    """Elman RNN layer, interchangeable with ``torch.nn.RNN``.

    ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with ``act`` tanh or relu. State is ``h``,
    ``(L*D, N, H)``. Takes ``nonlinearity`` after ``num_layers``, as torch.
    """

    __doc__ += _INIT_DOC.replace(
        "    bias :",
        '    nonlinearity : {"tanh", "relu"}, default "tanh"\n        The activation.\n    bias :',
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        cells = {"tanh": RNN_TANH, "relu": RNN_RELU}
        if nonlinearity not in cells:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity, self._cell = nonlinearity, cells[nonlinearity]
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
        )

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        nonlinearity: str = "tanh",
        batch_first: bool = False,
        dropout: float = 0.0,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> RNN:
        """Build a layer from a ``torch.nn.RNN``-style state dict.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as in :mod:`xrnn.nn.layers`; values of any namespace.
        nonlinearity : {"tanh", "relu"}, default "tanh"
            The cell's activation (a state dict does not record it).
        batch_first : bool, default False
            Layout of ``x`` for the new layer.
        dropout : float, default 0
            Dropout between layers in training mode (a state dict does not record it).
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        RNN
            A layer holding copies of the values.
        """
        return cls._build_from_state_dict(
            sd,
            batch_first=batch_first,
            dropout=dropout,
            xp=xp,
            dtype=dtype,
            device=device,
            nonlinearity=nonlinearity,
        )
