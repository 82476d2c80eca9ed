"""Import ONNX recurrent graphs: ``RNN``/``LSTM``/``GRU`` nodes become an xrnn layer or model.

Two kinds of graph are read: a single recurrent node (as ONNX's own operator tests have
them, weights given as initializers or by value), and the graphs that
:func:`xrnn.export_onnx` writes (a stack of nodes joined by ``Transpose`` and ``Reshape``,
then a ``MatMul`` + ``Add`` or ``Gemm`` head). What xrnn cannot compute is refused by
name: ``clip``, ``input_forget``, activations other than the operator's defaults (and
``Relu`` for the RNN). A non-zero constant initial state becomes the default state of the
layer (:class:`xrnn.nn.initial_state.WithInitialState`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..nn.initial_state import WithInitialState
from ..nn.reversed import Reversed
from .exchange import GRU_ZRH, LSTM_IOFC, PEEPHOLE_IOF, build_model, inverse, permute_blocks
from .onnx_graph import Graph

__all__ = ["load_onnx"]

_KINDS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_PERMS = {"rnn": (0,), "lstm": LSTM_IOFC, "gru": GRU_ZRH}
_DEFAULT_ACTIVATIONS = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"]}


def load_onnx(
    model: Any,
    *,
    values: Mapping[str, Any] | None = None,
    xp: str | ModuleType | None = None,
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """Build the xrnn layer or model that an ONNX graph of recurrent nodes computes.

    Needs the ``onnx`` package (the ``[onnx]`` extra).

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The ``.onnx`` file, its bytes, or the loaded model.
    values : mapping of str to array, optional
        Values of graph inputs that hold weights, for graphs that take them as inputs, as
        ONNX's operator tests do: ``W`` ``(D, G*H, I)``, ``R`` ``(D, G*H, H)``, ``B``
        ``(D, 2*G*H)``, ``P`` ``(D, 3*H)``, ``initial_h``/``initial_c`` ``(D, N, H)``.
        Inputs left out stay inputs of the layer (``X``, ``sequence_lens`` as ``lengths``,
        ``initial_h``/``initial_c`` as ``state``).
    xp : str or module, optional
        Target namespace (default: ``XRNN_BACKEND``).
    dtype : dtype, optional
        Target dtype (default: that of the weights).
    device : device, optional
        Target device.

    Returns
    -------
    SequenceModel, RNN, LSTM, GRU, Reversed or WithInitialState
        A :class:`~xrnn.SequenceModel` when the graph has the head that
        :func:`~xrnn.export_onnx` writes; else the layer, wrapped in
        :class:`xrnn.nn.reversed.Reversed` for a node with ``direction="reverse"``, and
        in :class:`xrnn.nn.initial_state.WithInitialState` when a node has a non-zero
        constant ``initial_h``/``initial_c`` (the state used when ``forward`` is given
        none; it serves that batch size only).
        ONNX's ``layout=1`` is ``batch_first=True``; gate orders are converted.

    Raises
    ------
    ValueError
        For an attribute xrnn cannot compute (``clip``, ``input_forget``, other
        activations, a non-zero constant initial state in a graph with a head) or a graph
        of another shape.
    """
    import onnx

    if isinstance(model, (str, os.PathLike)):
        proto = onnx.load(os.fspath(model))
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    elif isinstance(model, onnx.ModelProto):
        proto = model
    else:
        raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
    if values is not None and not isinstance(values, Mapping):
        raise TypeError(f"values must be a dict of graph input names to arrays, got {type(values).__name__}")
    graph = Graph(proto.graph, values or {})
    nodes = graph.recurrent_nodes()
    kind = _KINDS[nodes[0].op_type]
    attrs = [_attributes(graph, node, kind) for node in nodes]
    first = attrs[0]
    for node, a in zip(nodes[1:], attrs[1:]):
        if a != first:
            raise ValueError(
                f"every recurrent node must have the attributes of the first ({first}) to form one xrnn "
                f"layer; node {node.name!r} has {a}"
            )
    if first["direction"] == "reverse" and len(nodes) > 1:
        raise ValueError(f"a stack of direction='reverse' nodes is not read; got {len(nodes)} nodes")
    dirs = 2 if first["direction"] == "bidirectional" else 1
    transposed = graph.chain(nodes, dirs * first["hidden_size"])
    if first["layout"] == 1 and (transposed or len(nodes) > 1):
        raise ValueError("a stack of nodes, or a transposed input, with layout=1 is not read")
    batch_first = transposed or first["layout"] == 1
    params, extra, bias = _params(graph, nodes, kind, first)
    initial = _initial_state(graph, nodes, kind, first["hidden_size"], dirs)
    w0 = params["weight_ih_l0"]
    sizes = {"input_size": int(w0.shape[1]), "hidden_size": first["hidden_size"], "num_layers": len(nodes)}
    place = {"xp": xp, "dtype": dtype, "device": device}
    head = graph.head(nodes[-1], dirs * sizes["hidden_size"])
    if head is not None and first["direction"] == "reverse":
        raise ValueError("a direction='reverse' node with a dense head is not read (a bare node is)")
    if head is not None and initial is not None:
        raise ValueError(
            "a graph with a dense head and a non-zero constant initial_h/initial_c is not read: a "
            "SequenceModel starts from zeros (a bare recurrent graph keeps its initial state)"
        )
    out = build_model(
        kind,
        params,
        head,
        **sizes,
        bidirectional=dirs == 2,
        bias=bias,
        batch_first=batch_first,
        **place,
        **extra,
    )
    out = Reversed(out) if first["direction"] == "reverse" else out
    return out if initial is None else WithInitialState(out, initial)


def _initial_state(graph: Graph, nodes: list[Any], kind: str, hidden: int, dirs: int) -> Any:
    """The nodes' constant ``initial_h``/``initial_c`` stacked as the layer's state; None if all zeros.

    A node without a constant state starts from zeros; a state left as a graph input stays the
    ``state`` argument of the layer.
    """
    import numpy as np

    names = ("initial_h", "initial_c") if kind == "lstm" else ("initial_h",)
    constants = [[graph.constant_input(node, 5 + i) for i in range(len(names))] for node in nodes]
    given = [a for per_node in constants for a in per_node if a is not None]
    if not any(np.any(a != 0) for a in given):
        return None
    for node, per_node in zip(nodes, constants):
        for name, index, a in zip(names, (5, 6), per_node):
            if a is None and graph.input_of(node, index) is not None:
                raise ValueError(
                    f"the ONNX node {node.name!r} reads {name} from a graph input while another state is "
                    "a non-zero constant: give its value as values= to make the initial state whole"
                )
            if a is not None:
                _expect(node, name, a, (dirs, None, hidden))
    batches = sorted({int(a.shape[1]) for a in given})
    if len(batches) > 1:
        raise ValueError(f"the constant initial states must have one batch size, got {batches}")
    zeros = np.zeros((dirs, batches[0], hidden), dtype=given[0].dtype)
    parts = tuple(
        np.concatenate([zeros if per_node[i] is None else per_node[i] for per_node in constants])
        for i in range(len(names))
    )
    return parts if kind == "lstm" else parts[0]


def _attributes(graph: Graph, node: Any, kind: str) -> dict[str, Any]:
    """The node's attributes that xrnn maps; a ValueError naming any it cannot compute."""
    a = graph.attributes(node)
    where = f"the ONNX {node.op_type} node {node.name!r}"
    if "clip" in a:
        raise ValueError(f"{where} has clip={a['clip']}: xrnn has no cell clipping, cannot load it")
    if a.get("input_forget", 0):
        raise ValueError(
            f"{where} has input_forget={a['input_forget']} (coupled input and forget gates): "
            "xrnn's LSTM has no such option, cannot load it"
        )
    if "activation_alpha" in a or "activation_beta" in a:
        raise ValueError(
            f"{where} has activation_alpha/activation_beta: xrnn's activations take no parameters"
        )
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    dirs = 2 if direction == "bidirectional" else 1
    acts = [s.decode() if isinstance(s, bytes) else str(s) for s in a.get("activations", [])]
    nonlinearity = None
    if kind == "rnn":
        allowed = {"tanh": ["Tanh"] * dirs, "relu": ["Relu"] * dirs}
        matches = [name for name, names in allowed.items() if acts in ([], names)]
        if not matches:
            raise ValueError(
                f"{where} has activations={acts}: xrnn's RNN computes {allowed['tanh']} "
                f"or {allowed['relu']} only"
            )
        nonlinearity = matches[0]
    elif acts and acts != _DEFAULT_ACTIVATIONS[kind] * dirs:
        raise ValueError(
            f"{where} has activations={acts}: xrnn's {kind.upper()} computes only the defaults "
            f"{_DEFAULT_ACTIVATIONS[kind] * dirs}"
        )
    if "hidden_size" not in a:
        raise ValueError(f"{where} has no hidden_size attribute")
    return {
        "hidden_size": int(a["hidden_size"]),
        "direction": direction,
        "layout": int(a.get("layout", 0)),
        "nonlinearity": nonlinearity,
        "linear_before_reset": int(a.get("linear_before_reset", 0)) if kind == "gru" else None,
    }


def _params(
    graph: Graph, nodes: list[Any], kind: str, attrs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The xrnn parameters from the nodes' ``W``, ``R``, ``B``, ``P``; the layer options; whether biased."""
    hidden, perm = attrs["hidden_size"], inverse(_PERMS[kind])
    extra: dict[str, Any] = {}
    if kind == "rnn" and attrs["nonlinearity"] == "relu":
        extra["nonlinearity"] = "relu"
    if kind == "gru" and attrs["linear_before_reset"] == 0:
        extra["reset_after"] = False
    params: dict[str, Any] = {}
    has_bias = [graph.input_of(node, 3) is not None for node in nodes]
    if len(set(has_bias)) > 1:
        raise ValueError("either every recurrent node or none must have a bias input B")
    for k, node in enumerate(nodes):
        w, r = graph.value_of(node, 1, "W"), graph.value_of(node, 2, "R")
        dirs, gates = (2 if attrs["direction"] == "bidirectional" else 1), _GATES[kind] * hidden
        _expect(node, "W", w, (dirs, gates, None))
        _expect(node, "R", r, (dirs, gates, hidden))
        b = graph.value_of(node, 3, "B") if has_bias[0] else None
        if b is not None:
            _expect(node, "B", b, (dirs, 2 * gates))
        peep = graph.value_of(node, 7, "P") if kind == "lstm" and graph.input_of(node, 7) else None
        if peep is not None:
            _expect(node, "P", peep, (dirs, 3 * hidden))
            extra["peepholes"] = True
        for d, suffix in enumerate(("", "_reverse")[:dirs]):
            params[f"weight_ih_l{k}{suffix}"] = permute_blocks(w[d], perm)
            params[f"weight_hh_l{k}{suffix}"] = permute_blocks(r[d], perm)
            if b is not None:
                params[f"bias_ih_l{k}{suffix}"] = permute_blocks(b[d, :gates], perm)
                params[f"bias_hh_l{k}{suffix}"] = permute_blocks(b[d, gates:], perm)
            if peep is not None:
                params[f"weight_ch_l{k}{suffix}"] = permute_blocks(peep[d], inverse(PEEPHOLE_IOF))
    return params, extra, has_bias[0]


def _expect(node: Any, name: str, a: Any, shape: tuple[int | None, ...]) -> None:
    if len(a.shape) != len(shape) or any(s is not None and s != got for s, got in zip(shape, a.shape)):
        want = tuple("any" if s is None else s for s in shape)
        raise ValueError(
            f"the ONNX node {node.name!r} input {name} must have shape {want}, got {tuple(a.shape)}"
        )
