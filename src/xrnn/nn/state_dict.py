"""Layers to and from ``torch.nn``-style state dicts: the keys, shapes and checks, once."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any, TypeVar

from .._util.namespaces import convert
from .._util.typing import Array

__all__ = ["StateDict"]

_Layer = TypeVar("_Layer", bound="StateDict")
_KEY = re.compile(
    r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr|weight_ch|ln_(?:ih|hh|c)_weight|ln_c_bias)"
    r"_l(\d+)(_reverse)?$"
)


class StateDict:
    """``state_dict`` and ``from_state_dict`` of the recurrent layers (a base of the layer classes)."""

    params: dict[str, Any]
    input_size: int
    hidden_size: int
    bias: bool
    proj_size: int
    xp: ModuleType
    dtype: Any

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        """The parameters under ``torch.nn``'s keys.

        Returns
        -------
        dict of str to array
            A new dict of the parameter arrays (not copies), shapes as in the table
            of the module docstring; convert each with ``torch.from_dlpack`` or
            ``torch.as_tensor`` for ``torch_module.load_state_dict``.
        """
        return dict(self.params)

    @classmethod
    def from_state_dict(
        cls: type[_Layer],
        sd: Mapping[str, Any],
        *,
        batch_first: bool = False,
        dropout: float = 0.0,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> _Layer:
        """Build a layer from a ``torch.nn``-style state dict of the same kind of layer.

        Parameters
        ----------
        sd : mapping of str to array
            Keys and shapes as in :mod:`xrnn.nn.layers`; values of any namespace (torch
            tensors included). Sizes, layers, directions, ``bias`` (whether bias keys are
            there) and the LSTM's ``proj_size`` (from ``weight_hr_l0``) are read from the keys.
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
        layer
            A layer of this class holding copies of the values.
        """
        return cls._build_from_state_dict(
            sd, batch_first=batch_first, dropout=dropout, xp=xp, dtype=dtype, device=device
        )

    @classmethod
    def _build_from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        batch_first: bool,
        dropout: float,
        xp: str | ModuleType | None,
        dtype: Any,
        device: Any,
        **extra: Any,
    ) -> Any:
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        unknown = sorted(k for k in sd if not _KEY.match(k))
        if unknown:
            raise ValueError(
                f"state_dict has unexpected key(s) {unknown}; expected keys like "
                "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_hr_l0 (and _reverse)"
            )
        if "weight_hh_l0" not in sd or "weight_ih_l0" not in sd:
            raise ValueError(f"state_dict must hold weight_ih_l0 and weight_hh_l0, got keys {sorted(sd)}")
        layers = 1 + max(int(_KEY.match(k).group(2)) for k in sd)  # type: ignore[union-attr]
        bidirectional = any(k.endswith("_reverse") for k in sd)
        w_hh, w_ih = sd["weight_hh_l0"], sd["weight_ih_l0"]
        hh_dims = 1 if getattr(getattr(cls, "_cell", None), "diagonal", False) else 2  # IndRNN's u (H,)
        if len(w_hh.shape) != hh_dims or len(w_ih.shape) != 2:
            raise ValueError(
                f"state_dict['weight_hh_l0'] must be {hh_dims}-d and ['weight_ih_l0'] 2-d, got shapes "
                f"{tuple(w_hh.shape)} and {tuple(w_ih.shape)}"
            )
        hidden, n_in = int(w_hh.shape[-1]), int(w_ih.shape[1])
        if "weight_hr_l0" in sd:  # a projection: h has P features, the cell H
            if "proj_size" not in inspect.signature(cls).parameters:
                raise ValueError(
                    f"state_dict holds projection weights (weight_hr_l*), which only an LSTM has, "
                    f"not a {cls.__name__}"
                )
            w_hr = sd["weight_hr_l0"]
            if len(w_hr.shape) != 2:
                raise ValueError(f"state_dict['weight_hr_l0'] must be 2-d, got shape {tuple(w_hr.shape)}")
            extra["proj_size"], hidden = int(w_hr.shape[0]), int(w_hr.shape[1])
        if "weight_ch_l0" in sd and "peepholes" in inspect.signature(cls).parameters:
            extra["peepholes"] = True  # the peephole LSTM's weights
        source_dtype = str(w_ih.dtype).rsplit(".", 1)[-1]
        build: Any = cls  # a layer class: its constructor takes the layer's settings
        layer = build(
            n_in,
            hidden,
            num_layers=layers,
            bias="bias_ih_l0" in sd or "bias_hh_l0" in sd,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=batch_first,
            xp=xp,
            dtype=dtype if dtype is not None else source_dtype,
            device=device,
            **extra,
        )
        expected = layer._param_shapes()
        missing = sorted(set(expected) - set(sd))
        extra_keys = sorted(set(sd) - set(expected))
        if extra_keys:
            raise ValueError(
                f"state_dict has key(s) {extra_keys} that a {cls.__name__} with {layers} layer(s), "
                f"bidirectional={bidirectional}, bias={layer.bias}, proj_size={layer.proj_size} does not have"
            )
        if missing:
            raise ValueError(
                f"state_dict is missing key(s) {missing} for a {cls.__name__} with "
                f"{layers} layer(s), bidirectional={bidirectional}, bias={layer.bias}, "
                f"proj_size={layer.proj_size}"
            )
        for key, shape in expected.items():
            got = tuple(sd[key].shape)
            if got != shape:
                raise ValueError(
                    f"state_dict[{key!r}] must have shape {shape} for a {cls.__name__} "
                    f"with input_size={n_in}, hidden_size={hidden}, got {got}"
                )
        layer.params = {
            key: convert(sd[key], xp=layer.xp, dtype=layer.dtype, device=device) for key in expected
        }
        return layer
