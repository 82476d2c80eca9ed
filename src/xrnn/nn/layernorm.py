"""``LayerNormLSTM`` and ``LayerNormGRU``: haste's LayerNorm cells as layers with every layer feature.

Parameters beyond torch's (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, each with its ``_reverse`` copy when bidirectional):

=========================  ==========  ====================================================
key                        shape       meaning
=========================  ==========  ====================================================
``ln_ih_weight_l{k}``      ``(G*H,)``  gain of the norm of ``W_ih x`` (initially 1)
``ln_hh_weight_l{k}``      ``(G*H,)``  gain of the norm of ``W_hh h`` (initially 1)
``ln_c_weight_l{k}``       ``(H,)``    gain of the norm of ``c`` (LSTM only; initially 1)
``ln_c_bias_l{k}``         ``(H,)``    bias of the norm of ``c`` (LSTM only; initially 0)
=========================  ==========  ====================================================

``bias_ih_l{k}`` and ``bias_hh_l{k}`` are the biases of the norms of ``W_ih x`` and
``W_hh h`` (added after the normalisation, as haste does); ``bias=False`` leaves them out
(zero). The maths is in :mod:`xrnn.cells.layernorm_lstm` and :mod:`xrnn.cells.layernorm_gru`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .._util.typing import Array
from ..cells import LAYERNORM_GRU, LAYERNORM_LSTM
from ..engine.scan import Weights
from .apply import Functional
from .layers import _INIT_DOC, _WEIGHT_DROP_DOC, Call
from .recurrent import Recurrent
from .zoneout import ZONEOUT_DOC

__all__ = ["LayerNormGRU", "LayerNormLSTM"]


class _LayerNorm(Call, Recurrent, Functional):
    """What the two LayerNorm layers share: their norms' parameters and how the loop gets them."""

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
        weight_drop: float = 0.0,
        zoneout: float | tuple[float, ...] = 0.0,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            weight_drop=weight_drop,
            zoneout=zoneout,
            dtype=dtype,
            device=device,
            xp=xp,
            seed=seed,
        )
        for key, value in self.params.items():  # the norms start as the identity: gains 1, biases 0
            if key.startswith("ln_"):
                fill = self.xp.ones_like if "_weight_" in key else self.xp.zeros_like
                self.params[key] = fill(value)

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super()._param_shapes()
        if self.bias:
            return shapes
        return {k: s for k, s in shapes.items() if not k.startswith(("bias_ih", "bias_hh"))}

    def _weights(self, k: int, direction: int, params: dict[str, Array] | None = None) -> Weights:
        """The loop adds no bias: the norms' biases travel with the gains in ``vectors`` (zero without)."""
        s = f"l{k}" + ("_reverse" if direction else "")
        p = self.params if params is None else params
        w_ih = p[f"weight_ih_{s}"]
        xp = array_namespace(w_ih)
        parts = [
            p[f"{key}_{s}"]
            if f"{key}_{s}" in p
            else xp.zeros((blocks * self.hidden_size,), dtype=w_ih.dtype, device=device_of(w_ih))
            for key, blocks in self._cell.vectors
        ]
        return Weights(w_ih, p[f"weight_hh_{s}"], None, None, None, xp.concat(parts))

    @staticmethod
    def _same_weights(made: Weights, held: Weights) -> bool:
        """By identity, but the vectors: a fresh concatenation of the layer's on every call, by value."""
        if any(a is not b for a, b in zip(made[:-1], held[:-1])):
            return False
        xp = array_namespace(made.vectors, held.vectors)
        return bool(xp.all(made.vectors == held.vectors))

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        batch_first: bool = False,
        dropout: float = 0.0,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> Any:
        """Build a layer from a state dict with the keys of :mod:`xrnn.nn.layernorm`.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as :meth:`state_dict` returns them; values of any namespace.
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
        LayerNormLSTM or LayerNormGRU
            A layer holding copies of the values.
        """
        return cls._build_from_state_dict(
            sd, batch_first=batch_first, dropout=dropout, xp=xp, dtype=dtype, device=device
        )


_LN_DOC = _INIT_DOC.replace("    dtype :", _WEIGHT_DROP_DOC + ZONEOUT_DOC + "    dtype :", 1).replace(
    "Use the biases ``b_ih`` and ``b_hh``; False leaves them out of :attr:`params`.",
    "Use the biases ``b_ih`` and ``b_hh`` of the norms; False leaves them out of :attr:`params`.",
)


class LayerNormLSTM(_LayerNorm):
    """The LayerNorm LSTM of haste (LMNT's ``haste_pytorch.LayerNormLSTM``), torch's gate order.

    Gates ``i, f, g, o``; the input and recurrent pre-activations are normalised apart,
    each over all ``4H`` units, and the cell state before its ``tanh``::

        z = LN(W_ih x; g_ih, b_ih) + LN(W_hh h; g_hh, b_hh)
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o),   g = tanh(z_g)
        c' = f * c + i * g,   h' = o * tanh(LN(c'; g_c, b_c))

    with ``LN(a; g, b) = (a - mean(a)) / sqrt(var(a) + 1e-5) * g + b`` per row. State is a
    tuple ``(h, c)``, each ``(L*D, N, H)``; ``c`` is carried unnormalised. The parameters
    are torch's LSTM's and the norms' (:mod:`xrnn.nn.layernorm`); no projection. See
    :mod:`xrnn.cells.layernorm_lstm` for the equations of backward and haste's names.
    """

    __doc__ += _LN_DOC
    _cell = LAYERNORM_LSTM


class LayerNormGRU(_LayerNorm):
    """The LayerNorm GRU of haste (LMNT's ``haste_pytorch.LayerNormGRU``), torch's gate order.

    Gates ``r, z, n``; the input and recurrent pre-activations are normalised apart, each
    over all ``3H`` units, with the biases of torch's GRU as the norms' biases::

        a = LN(W_ih x; g_ih, b_ih),   u = LN(W_hh h; g_hh, b_hh)
        r = sigmoid(a_r + u_r),  z = sigmoid(a_z + u_z),  n = tanh(a_n + r * u_n)
        h' = (1 - z) * n + z * h

    with ``LN`` per row as in :class:`LayerNormLSTM`. State is ``h``, ``(L*D, N, H)``. The
    parameters are torch's GRU's and the norms' gains (:mod:`xrnn.nn.layernorm`). See
    :mod:`xrnn.cells.layernorm_gru` for the equations of backward and haste's names.
    """

    __doc__ += _LN_DOC
    _cell = LAYERNORM_GRU
