"""The checks of a checkpoint's header, made before anything is built from it (:mod:`.checkpoint`)."""

from __future__ import annotations

import pathlib
import re
from typing import Any

from ..nn.cell_layer import resolve
from ..nn.dense import Dense
from ..nn.indrnn import IndRNN
from ..nn.layernorm import LayerNormGRU, LayerNormLSTM
from ..nn.layers import GRU, LSTM, RNN
from ..nn.minimal import MinGRU, MinLSTM
from ..nn.model import SequenceModel
from ..nn.model_base import LAYERS, extra_options, layer_class
from ..nn.options import option_types
from ..training.optim import OPTIMIZERS
from .npz_reader import CheckpointError

__all__ = ["CLASSES", "FORMAT", "VERSION", "check_file", "option_types_of", "saved_class"]

#: Format tag in every header.
FORMAT = "xrnn-checkpoint"
#: Version written; files of a higher version are refused.
VERSION = 2

#: The classes a checkpoint may hold, by the name its header records.
CLASSES: dict[str, type] = {
    "SequenceModel": SequenceModel,
    "RNN": RNN,
    "LSTM": LSTM,
    "GRU": GRU,
    "MinGRU": MinGRU,
    "MinLSTM": MinLSTM,
    "IndRNN": IndRNN,
    "LayerNormLSTM": LayerNormLSTM,
    "LayerNormGRU": LayerNormGRU,
    "Dense": Dense,
}
#: The configuration of a version 1 file (always a SequenceModel).
_V1_KEYS = {"cell": str, "input_size": int, "hidden_size": int, "output_size": int, "num_layers": int}
#: Gates per cell (rows of ``weight_hh_l0`` per hidden unit).
_GATES = {"rnn": 1, "gru": 3, "lstm": 4, "mingru": 2, "minlstm": 3, "indrnn": 1}
_GATES |= {
    "layernorm_lstm": 4,
    "layernorm_gru": 3,
    "layernormlstm": 4,
    "layernormgru": 3,
}  # and by class name
#: Cells with no recurrent weight matrix (none, or IndRNN's vector): counted and sized by ``weight_ih``.
_NO_HH = ("mingru", "minlstm", "indrnn")


def option_types_of(name: str, config: dict[str, Any]) -> dict[str, tuple[type, bool]]:
    """``{option: (type, required)}`` of class ``name`` (a SequenceModel's layer options for its cell)."""
    types = option_types(CLASSES[name])
    if name == "SequenceModel":
        layer = option_types(layer_class(config["cell"])[1])
        types |= {k: layer[k] for k in extra_options(config["cell"])}
    return types


def saved_class(header: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The class name and configuration of a checked header (version 1: a SequenceModel)."""
    entry = dict(header["model"])
    return entry.pop("class", "SequenceModel"), entry


def check_file(
    path: pathlib.Path, header: Any, declared: dict[str, tuple[tuple[int, ...], Any]]
) -> dict[str, Any]:
    """The header, checked; then its list of arrays and its model's sizes against ``declared``."""
    header = _check_header(path, header)
    _check_manifest(path, header, declared)
    _check_sizes(path, *saved_class(header), {name: shape for name, (shape, _) in declared.items()})
    return header


def _check_header(path: pathlib.Path, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an xrnn checkpoint: format tag is not {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {version!r}; this xrnn reads versions 1..{VERSION}"
        )
    required = {"model": dict, "dtype": str, "metadata": dict, "arrays": dict}
    for key, kind in required.items():
        if not isinstance(header.get(key), kind):
            raise CheckpointError(
                f"{path}: header entry {key!r} must be a {kind.__name__}, got {header.get(key)!r}"
            )
    if version == 1:
        _check_v1_config(path, header["model"])
    else:
        _check_config(path, header["model"])
    if header["dtype"] not in ("float32", "float64"):
        raise CheckpointError(f"{path}: dtype must be float32 or float64, got {header['dtype']!r}")
    optimizer = header.get("optimizer")
    if optimizer is not None and not (
        isinstance(optimizer, dict)
        and optimizer.get("name") in OPTIMIZERS
        and isinstance(optimizer.get("hyperparameters"), dict)
        and isinstance(optimizer.get("step"), int)
        and optimizer["step"] >= 0
    ):
        raise CheckpointError(f"{path}: optimizer entry is not valid: {optimizer!r}")
    return header


def _check_v1_config(path: pathlib.Path, config: dict[str, Any]) -> None:
    if set(config) != set(_V1_KEYS) or any(
        not isinstance(config[k], kind) or isinstance(config[k], bool) for k, kind in _V1_KEYS.items()
    ):
        raise CheckpointError(
            f"{path}: model configuration must have {', '.join(_V1_KEYS)} of types "
            f"{', '.join(t.__name__ for t in _V1_KEYS.values())}, got {config!r}"
        )
    if config["cell"] not in LAYERS or min(config[k] for k in _V1_KEYS if k != "cell") < 1:
        raise CheckpointError(f"{path}: model configuration is not valid: {config!r}")


def _check_config(path: pathlib.Path, entry: dict[str, Any]) -> None:
    """The class is one of :data:`CLASSES`; its options are known, the required ones there, of their types."""
    name = entry.get("class")
    if not isinstance(name, str) or name not in CLASSES:
        raise CheckpointError(f"{path}: model class {name!r} is not one of {', '.join(CLASSES)}")
    config = {k: v for k, v in entry.items() if k != "class"}
    cell = config.get("cell")
    if name == "SequenceModel":
        try:
            layer_class(cell)
        except ValueError as exc:  # a defined cell not registered here, or registered otherwise
            raise CheckpointError(f"{path}: model configuration is not valid: {exc}") from None
    types = option_types_of(name, config)
    required = [k for k, (_, needed) in types.items() if needed]

    def fits(value: Any, kind: type) -> bool:
        if kind is type(None):  # an option that defaults to None is a switch: None or a bool
            return value is None or isinstance(value, bool)
        if kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))

    def fits_option(key: str, value: Any) -> bool:  # zoneout may be one probability per state part
        pair = key == "zoneout" and isinstance(value, (list, tuple)) and len(value) == 2
        return all(fits(v, float) for v in value) if pair else fits(value, types[key][0])

    if (
        set(config) - set(types)
        or set(required) - set(config)
        or any(not fits_option(k, v) for k, v in config.items())
    ):
        described = ", ".join(
            f"{k} ({t.__name__}{'' if needed else ', optional'})" for k, (t, needed) in types.items()
        )
        raise CheckpointError(
            f"{path}: model configuration must have {described} for a {name}, got {config!r}"
        )


def _check_manifest(
    path: pathlib.Path, header: dict[str, Any], declared: dict[str, tuple[tuple[int, ...], Any]]
) -> None:
    """The archive holds exactly the arrays the header lists, of those shapes and dtypes."""
    listed = header["arrays"]
    if set(listed) != set(declared):
        missing, extra = sorted(set(listed) - set(declared)), sorted(set(declared) - set(listed))
        raise CheckpointError(
            f"{path}: arrays do not match its header; missing {missing}, unexpected {extra}"
        )
    for name, (shape, dtype) in declared.items():
        entry = listed[name]
        if (
            not isinstance(entry, dict)
            or entry.get("shape") != list(shape)
            or entry.get("dtype") != str(dtype)
        ):
            raise CheckpointError(
                f"{path}: array {name!r} has shape {shape} and dtype {dtype}, but the header says {entry!r}"
            )
        if str(dtype) != header["dtype"]:
            raise CheckpointError(f"{path}: array {name!r} has dtype {dtype}, expected {header['dtype']}")


def _check_sizes(
    path: pathlib.Path, name: str, config: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> None:
    """The configuration's sizes are those of the arrays, so the model built from it is no larger.

    A recurrent layer's are read from ``weight_ih_l0`` ``(G*hidden_size, input_size)``,
    ``weight_hh_l0`` ``(G*hidden_size, *)`` and the number of ``weight_hh_l<k>`` (under
    ``rnn.`` in a SequenceModel, whose ``output_size`` is read from ``head.weight``
    ``(output_size, *)``); a Dense's from ``weight`` ``(out_features, in_features)``.
    Every shape is checked against the built model afterwards.
    """
    found: dict[str, tuple[int, ...]] = {}

    def matrix(key: str) -> tuple[int, ...]:
        found[key] = shapes.get(f"param/{key}", ())
        if len(found[key]) != 2:
            raise CheckpointError(
                f"{path}: parameter {key!r} must be a 2-d array, got shape {found[key] or None}"
            )
        return found[key]

    def agree(size: str, value: Any, key: str) -> None:
        if config.get(size) != value:
            shown = f"{value:g}" if isinstance(value, float) else value
            raise CheckpointError(
                f"{path}: the header says {size} {config.get(size)} but its arrays have {size} "
                f"{shown} ({key!r} has shape {found[key]})"
            )

    if name == "Dense":
        rows, columns = matrix("weight")
        agree("out_features", rows, "weight")
        agree("in_features", columns, "weight")
        return
    prefix, cell = ("rnn.", config["cell"]) if name == "SequenceModel" else ("", name.lower())
    _, n_in = matrix(f"{prefix}weight_ih_l0")
    sized_by = "weight_ih" if cell in _NO_HH else "weight_hh"
    gate_rows, _ = matrix(f"{prefix}{sized_by}_l0")
    if name == "SequenceModel":
        agree("output_size", matrix("head.weight")[0], "head.weight")
    agree("input_size", n_in, f"{prefix}weight_ih_l0")
    defined = resolve(cell)
    gates = _GATES[cell] if defined is None else defined.n_gates
    agree(
        "hidden_size",
        gate_rows // gates if gate_rows % gates == 0 else gate_rows / gates,
        f"{prefix}{sized_by}_l0",
    )
    layers = sum(1 for key in shapes if re.fullmatch(rf"param/{re.escape(prefix)}{sized_by}_l\d+", key))
    if config.get("num_layers", 1) != layers:
        raise CheckpointError(
            f"{path}: the header says num_layers {config.get('num_layers', 1)} but its arrays have "
            f"num_layers {layers} (arrays '{prefix}{sized_by}_l<k>')"
        )
