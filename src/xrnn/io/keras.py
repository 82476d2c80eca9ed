"""Keras 3 weights to and from xrnn: ``SimpleRNN``, ``LSTM``, ``GRU``, ``Bidirectional`` and ``Dense``.

Keras keeps a layer's weights as ``kernel`` ``(I, G*H)``, ``recurrent_kernel`` ``(H, G*H)``
and ``bias``, gates side by side in the columns: LSTM ``i, f, c, o`` (torch's order), GRU
``z, r, h``. Its LSTM and SimpleRNN have one bias (xrnn's ``b_ih + b_hh``); its GRU with
``reset_after=True`` has two, ``(2, 3H)``, as torch; with ``reset_after=False`` one, whose
candidate part is added outside the reset. No Keras import is needed: configurations
are the dicts that ``layer.get_config()`` (or ``keras.layers.serialize``) returns, weights
the lists of ``layer.get_weights()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from .._util.namespaces import to_host
from .exchange import GRU_ZRH, build_model, host_params, inverse, permute_blocks, split_model

__all__ = ["from_keras_weights", "to_keras_weights"]

_CLASSES = {"SimpleRNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
_NAMES = {kind: name for name, kind in _CLASSES.items()}
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_PERMS = {"rnn": (0,), "lstm": (0, 1, 2, 3), "gru": GRU_ZRH}


def _class_of(config: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """``(class name, the layer's own config)`` of a ``get_config()`` or serialized dict."""
    if not isinstance(config, Mapping):
        raise TypeError(f"each layer_config must be a dict, got {type(config).__name__}")
    if "class_name" in config and isinstance(config.get("config"), Mapping):
        return str(config["class_name"]), config["config"]
    if "layer" in config:
        return "Bidirectional", config
    if "return_sequences" not in config:
        return "Dense", config
    if "reset_after" in config:
        return "GRU", config
    return ("LSTM" if "unit_forget_bias" in config else "SimpleRNN"), config


def _recurrent(config: Mapping[str, Any], weights: Sequence[Any]) -> dict[str, Any]:
    """The kind, options and per-direction xrnn parameters of one Keras recurrent layer."""
    name, cfg = _class_of(config)
    directions = [(cfg, list(weights))]
    if name == "Bidirectional":
        if cfg.get("merge_mode", "concat") != "concat":
            raise ValueError(
                f"Bidirectional must have merge_mode='concat' (xrnn's), got {cfg.get('merge_mode')!r}"
            )
        name, inner = _class_of(cfg["layer"])
        if cfg.get("backward_layer") is not None:  # Keras writes it: the forward layer's, going backwards
            back_name, back = _class_of(cfg["backward_layer"])
            keys = (
                "units",
                "activation",
                "recurrent_activation",
                "use_bias",
                "reset_after",
                "return_sequences",
            )
            if back_name != name or any(back.get(key) != inner.get(key) for key in keys):
                raise ValueError(
                    f"Bidirectional's backward_layer must be a {name} with the options {keys} of its layer"
                )
        half = len(weights) // 2
        directions = [(inner, list(weights[:half])), (inner, list(weights[half:]))]
    if name not in _CLASSES:
        raise ValueError(
            f"a Keras layer must be SimpleRNN, LSTM, GRU, Bidirectional or a final Dense, got {name!r}"
        )
    kind = _CLASSES[name]
    cfg = directions[0][0]
    act = cfg.get("activation", "tanh")
    allowed = ("tanh", "relu") if kind == "rnn" else ("tanh",)
    if act not in allowed:
        raise ValueError(
            f"the Keras {name} has activation={act!r}: xrnn computes {' or '.join(allowed)} only"
        )
    if kind != "rnn" and cfg.get("recurrent_activation", "sigmoid") != "sigmoid":
        raise ValueError(
            f"the Keras {name} has recurrent_activation={cfg['recurrent_activation']!r}: "
            "xrnn's gates are sigmoid"
        )
    if cfg.get("go_backwards", False):
        raise ValueError(f"the Keras {name} has go_backwards=True, which xrnn's layers do not read")
    units, bias = int(cfg["units"]), bool(cfg.get("use_bias", True))
    reset_after = bool(cfg.get("reset_after", True))
    perm = inverse(_PERMS[kind])
    params = []
    for _, arrays in directions:
        arrays = [to_host(a) if hasattr(a, "__array_namespace__") else _np().asarray(a) for a in arrays]
        if len(arrays) != 2 + bias:
            raise ValueError(
                f"the Keras {name} with use_bias={bias} has {2 + bias} weights, got {len(arrays)}"
            )
        kernel, recurrent = arrays[0], arrays[1]
        g = _GATES[kind] * units
        if len(kernel.shape) != 2 or kernel.shape[1] != g or tuple(recurrent.shape) != (units, g):
            raise ValueError(
                f"the Keras {name} of {units} units must have kernel (I, {g}) and "
                f"recurrent_kernel ({units}, {g}), "
                f"got {tuple(kernel.shape)} and {tuple(recurrent.shape)}"
            )
        p = {"weight_ih": permute_blocks(kernel.T, perm), "weight_hh": permute_blocks(recurrent.T, perm)}
        if bias:
            b = arrays[2]
            two = kind == "gru" and reset_after
            if tuple(b.shape) != ((2, g) if two else (g,)):
                raise ValueError(
                    f"the Keras {name}'s bias must have shape {(2, g) if two else (g,)}, got {b.shape}"
                )
            p["bias_ih"] = permute_blocks(b[0] if two else b, perm)
            p["bias_hh"] = permute_blocks(b[1], perm) if two else _np().zeros_like(p["bias_ih"])
        params.append(p)
    extra = {"nonlinearity": act} if kind == "rnn" and act == "relu" else {}
    if kind == "gru" and not reset_after:
        extra["reset_after"] = False
    return {
        "kind": kind,
        "units": units,
        "bias": bias,
        "dirs": len(directions),
        "sequences": bool(cfg.get("return_sequences", False)),
        "extra": extra,
        "params": params,
    }


def _np() -> ModuleType:
    import numpy as np

    return np


def from_keras_weights(
    layer_config: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    weights: Sequence[Any],
    *,
    batch_first: bool = True,
    xp: str | ModuleType | None = None,
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """Build the xrnn layer or model of Keras 3 recurrent layers from their configs and weights.

    Parameters
    ----------
    layer_config : dict or list of dict
        One layer's ``get_config()`` (``SimpleRNN``, ``LSTM``, ``GRU`` or ``Bidirectional``
        of one of them), or ``keras.layers.serialize(layer)``; or a list of them for a stack
        of layers of one kind and size, each but the last with ``return_sequences=True``,
        optionally ended by a ``Dense`` (the head of a :class:`~xrnn.SequenceModel`).
    weights : list of array, or list of lists
        ``layer.get_weights()`` for one layer: ``kernel`` ``(I, G*H)``, ``recurrent_kernel``
        ``(H, G*H)`` and, with ``use_bias``, ``bias`` ``(G*H,)`` (``(2, 3H)`` for a GRU with
        ``reset_after=True``); ``G`` is 1, 4 or 3. For ``Bidirectional``, the forward layer's
        then the backward layer's; for a ``Dense``, ``kernel`` ``(D*H, O)`` and ``bias``
        ``(O,)``. One such list per layer for a list of configs.
    batch_first : bool, default True
        Layout of ``x`` for the new layer (Keras reads ``(N, T, I)``).
    xp : str or module, optional
        Target namespace (default: ``XRNN_BACKEND``).
    dtype : dtype, optional
        Target dtype (default: that of the weights).
    device : device, optional
        Target device.

    Returns
    -------
    RNN, LSTM, GRU or SequenceModel
        A model when the configs end with a ``Dense``: ``head="every"`` if the last
        recurrent layer returns sequences, else ``"last"``.

    Raises
    ------
    ValueError
        For what xrnn does not compute: other activations, ``go_backwards``, a
        ``merge_mode`` other than ``"concat"``, layers of different kinds or sizes.
    """
    configs = [layer_config] if isinstance(layer_config, Mapping) else list(layer_config)
    groups = [weights] if isinstance(layer_config, Mapping) else list(weights)
    if not configs or len(groups) != len(configs):
        raise ValueError(f"weights must hold one list per layer config ({len(configs)}), got {len(groups)}")
    head = None
    if _class_of(configs[-1])[0] == "Dense" and len(configs) > 1:
        cfg = _class_of(configs[-1])[1]
        if cfg.get("activation", "linear") not in ("linear", None):
            raise ValueError(
                f"the Dense head must have a linear activation (xrnn's head is), got {cfg['activation']!r}"
            )
        dense = [to_host(a) if hasattr(a, "__array_namespace__") else _np().asarray(a) for a in groups[-1]]
        bias = dense[1] if len(dense) > 1 else _np().zeros(dense[0].shape[1], dtype=dense[0].dtype)
        head = [dense[0].T, bias]  # (O, D*H), (O,)
        configs, groups = configs[:-1], groups[:-1]
    layers = [_recurrent(c, w) for c, w in zip(configs, groups)]
    first = layers[0]
    for k, layer in enumerate(layers):
        same = {n: layer[n] for n in ("kind", "units", "bias", "dirs", "extra")}
        if same != {n: first[n] for n in same}:
            raise ValueError(
                f"stacked Keras layers must share kind, units, use_bias and direction; layer {k} differs"
            )
        if k < len(layers) - 1 and not layer["sequences"]:
            raise ValueError(
                f"every stacked Keras layer but the last must have return_sequences=True; layer {k} has not"
            )
    params = {
        f"{key}_l{k}{suffix}": value
        for k, layer in enumerate(layers)
        for suffix, p in zip(("", "_reverse"), layer["params"])
        for key, value in p.items()
    }
    mode = "every" if layers[-1]["sequences"] else "last"
    return build_model(
        first["kind"],
        params,
        None if head is None else (mode, head[0], head[1]),
        input_size=int(params["weight_ih_l0"].shape[1]),
        hidden_size=first["units"],
        num_layers=len(layers),
        bidirectional=first["dirs"] == 2,
        bias=first["bias"],
        batch_first=batch_first,
        xp=xp,
        dtype=dtype,
        device=device,
        **first["extra"],
    )


def to_keras_weights(model: Any) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The Keras 3 layer configs and weights that compute what an xrnn model or layer computes.

    Parameters
    ----------
    model : SequenceModel, RNN, LSTM or GRU
        A layer becomes one Keras layer per stacked layer (``Bidirectional`` when
        bidirectional), every one with ``return_sequences=True``; a model adds a ``Dense``
        and its top layer returns sequences only with ``head="every"``.

    Returns
    -------
    configs : list of dict
        ``{"class_name": ..., "config": ...}`` per Keras layer, as ``keras.layers.serialize``
        writes them (``keras.layers.deserialize`` builds each layer).
    weights : list of list of numpy.ndarray
        Each layer's weights in the order of its ``set_weights``.

    Raises
    ------
    ValueError
        For what Keras's layers do not have: the LSTM's projection and peepholes.
    """
    layer, seq_model = split_model(model)
    kind = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}[type(layer).__name__]
    if getattr(layer, "proj_size", 0) or getattr(layer, "peepholes", False):
        raise ValueError("Keras's LSTM has no projection (proj_size) or peepholes: cannot write such a layer")
    p, units, perm = host_params(layer), layer.hidden_size, _PERMS[kind]
    reset_after = bool(getattr(layer, "reset_after", True))
    configs, weights = [], []
    for k in range(layer.num_layers):
        sequences = seq_model is None or seq_model.head_mode == "every" or k < layer.num_layers - 1
        cfg: dict[str, Any] = {"units": units, "return_sequences": sequences, "use_bias": layer.bias}
        cfg["activation"] = getattr(layer, "nonlinearity", "tanh")
        if kind != "rnn":
            cfg["recurrent_activation"] = "sigmoid"
        if kind == "gru":
            cfg["reset_after"] = reset_after
        arrays: list[Any] = []
        for suffix in ("", "_reverse")[: layer.num_directions]:
            s = f"_l{k}{suffix}"
            arrays += [permute_blocks(p["weight_ih" + s], perm).T, permute_blocks(p["weight_hh" + s], perm).T]
            if layer.bias:
                b_ih, b_hh = permute_blocks(p["bias_ih" + s], perm), permute_blocks(p["bias_hh" + s], perm)
                arrays.append(_np().stack([b_ih, b_hh]) if kind == "gru" and reset_after else b_ih + b_hh)
        inner = {"module": "keras.layers", "class_name": _NAMES[kind], "config": cfg, "registered_name": None}
        if layer.bidirectional:
            inner = {
                "module": "keras.layers",
                "class_name": "Bidirectional",
                "config": {"layer": inner, "merge_mode": "concat"},
                "registered_name": None,
            }
        configs.append(inner)
        weights.append([_np().ascontiguousarray(a) for a in arrays])
    if seq_model is not None:
        w, b = to_host(seq_model.head.params["weight"]), to_host(seq_model.head.params["bias"])
        dense = {"units": int(w.shape[0]), "activation": "linear", "use_bias": True}
        configs.append(
            {"module": "keras.layers", "class_name": "Dense", "config": dense, "registered_name": None}
        )
        weights.append([_np().ascontiguousarray(w.T), b])
    return configs, weights
