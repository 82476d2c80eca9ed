"""Export an xrnn model or layer to ONNX: one ``RNN``, ``LSTM`` or ``GRU`` node per layer.

The graph, written with the ``onnx`` package's helpers (no torch), reads ``x`` (``(T, N, I)``,
or ``(N, T, I)`` with ``batch_first``) and, when asked, ``lengths`` (``(N,)`` int32, the
operators' ``sequence_lens``). Layer ``k``'s node writes ``Y`` ``(T, D, N, H)``, which a
``Transpose`` and a ``Reshape`` turn into the next layer's input ``(T, N, D*H)``. A
:class:`~xrnn.SequenceModel`'s head is a ``MatMul`` and an ``Add`` at every step
(``head="every"``) or a ``Gemm`` on the top layer's final states (``head="last"``), and
its output is ``z``; a bare layer's outputs are ``y``, ``h_n`` and, for the LSTM, ``c_n``.
"""

from __future__ import annotations

import os
from typing import Any

from .._util.namespaces import to_host
from ..nn.initial_state import WithInitialState
from .exchange import GRU_ZRH, LSTM_IOFC, PEEPHOLE_IOF, host_params, kind_of, permute_blocks, split_model

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx"]

#: The opset written unless another is asked for (ONNX Runtime 1.14 and later run it).
DEFAULT_OPSET = 17
#: The oldest opset accepted: ``Reshape`` with ``allowzero`` and the recurrent operators' ``layout``.
MIN_OPSET = 14
_OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_PERMS = {"rnn": (0,), "lstm": LSTM_IOFC, "gru": GRU_ZRH}


def export_onnx(
    model: Any,
    path: str | os.PathLike[str] | None,
    *,
    opset: int | None = None,
    dynamic_batch: bool | int = True,
    dynamic_time: bool | int = True,
    lengths: bool = False,
) -> Any:
    """Write a model or a recurrent layer as an ONNX graph of ``RNN``/``LSTM``/``GRU`` nodes.

    The graph computes what :meth:`SequenceModel.predict <xrnn.SequenceModel.predict>` (or
    the layer's ``forward`` in evaluation mode, from a zero state) computes, and passes
    ``onnx.checker`` with full shape inference. Needs the ``onnx`` package (the ``[onnx]``
    extra).

    Parameters
    ----------
    model : SequenceModel, RNN, LSTM, GRU or WithInitialState
        What to export: a model (input ``x``, output ``z`` as :meth:`~xrnn.SequenceModel.predict`)
        or a layer (input ``x``, outputs ``y`` ``(T, N, D*H)`` (``(N, T, D*H)`` with
        ``batch_first``), ``h_n`` ``(L*D, N, H)`` and, for the LSTM, ``c_n`` ``(L*D, N, H)``).
        A layer wrapped in :class:`~xrnn.nn.initial_state.WithInitialState` (as
        :func:`~xrnn.load_onnx` returns a node with a constant initial state) is written
        with that state as each node's ``initial_h``/``initial_c``, and needs
        ``dynamic_batch`` equal to the state's batch size.
    path : str, os.PathLike or None
        Where to write the ``.onnx`` file; None writes nothing and only returns the model.
    opset : int, optional
        The ONNX opset, from 14 to the installed ``onnx``'s newest; default 17.
    dynamic_batch : bool or int, default True
        True: the batch size ``N`` is a symbolic dimension ``"batch"``; an int: fixed to it.
    dynamic_time : bool or int, default True
        True: the number of steps ``T`` is a symbolic dimension ``"time"``; an int: fixed to it.
    lengths : bool, default False
        Add a second input ``lengths`` ``(N,)`` of int32, the valid steps of each sequence
        (the operators' ``sequence_lens``; xrnn's ``lengths``).

    Returns
    -------
    onnx.ModelProto
        The model written to ``path``.

    Raises
    ------
    ValueError
        For what ONNX's operators cannot express: the LSTM's projection (``proj_size > 0``).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initial = None
    if isinstance(model, WithInitialState):
        model, initial = model.layer, model.state
    layer, seq_model = split_model(model)
    kind = kind_of(layer)
    opset = _check_opset(opset, onnx.defs.onnx_opset_version())
    batch = _dim("dynamic_batch", dynamic_batch, "batch")
    if initial is not None:
        initial = [to_host(a) for a in (initial if isinstance(initial, tuple) else (initial,))]
        n0 = int(initial[0].shape[1])
        if batch != n0:
            raise ValueError(
                f"a layer with a default initial state for batch size {n0} exports with dynamic_batch={n0} "
                f"(ONNX's initial_h has a fixed batch size), got {dynamic_batch!r}"
            )
    time = _dim("dynamic_time", dynamic_time, "time")
    if not isinstance(lengths, bool):
        raise TypeError(f"lengths must be True or False, got {lengths!r}")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or None, got {type(path).__name__}")
    if getattr(layer, "proj_size", 0):
        raise ValueError(
            f"ONNX's LSTM operator has no projection of h: cannot export an LSTM with "
            f"proj_size={layer.proj_size} (export a model with proj_size=0)"
        )
    dtype = str(to_host(layer.params["weight_ih_l0"]).dtype)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"the model's dtype must be float32 or float64, got {dtype}")
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    g = _Graph(helper, numpy_helper)
    first = [batch, time] if layer.batch_first else [time, batch]
    inputs = [helper.make_tensor_value_info("x", elem, [*first, layer.input_size])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, [batch]))
    x = g.node("Transpose", ["x"], perm=[1, 0, 2]) if layer.batch_first else "x"
    h, states = _layers(g, layer, kind, x, "lengths" if lengths else "", initial)
    width = layer.num_directions * layer.hidden_size
    outputs = []
    if seq_model is None:
        g.node("Transpose", [h], "y", perm=[1, 0, 2]) if layer.batch_first else g.node("Identity", [h], "y")
        outputs.append(helper.make_tensor_value_info("y", elem, [*first, width]))
        stacked = layer.num_layers * layer.num_directions
        for name, parts in zip(("h_n", "c_n"), states):
            g.node("Concat", parts, name, axis=0)
            outputs.append(helper.make_tensor_value_info(name, elem, [stacked, batch, layer.hidden_size]))
    else:
        out = _head(g, seq_model, h, states[0][-1], width)
        if seq_model.head_mode == "last":
            shape = [batch, seq_model.head.out_features]
        else:
            shape = [*first, seq_model.head.out_features]
        if seq_model.head_mode == "every" and layer.batch_first:
            g.node("Transpose", [out], "z", perm=[1, 0, 2])
        else:
            g.node("Identity", [out], "z")
        outputs.append(helper.make_tensor_value_info("z", elem, shape))
    graph = helper.make_graph(g.nodes, "xrnn", inputs, outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph, opset_imports=opsets, producer_name="xrnn", ir_version=helper.find_min_ir_version_for(opsets)
    )
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


class _Graph:
    """The nodes and initializers of a graph being written, with fresh names."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, name: str, value: Any) -> str:
        self.initializers.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attrs))
        return output


def _layers(
    g: _Graph, layer: Any, kind: str, x: str, seq_lens: str, initial: list[Any] | None
) -> tuple[str, list[list[str]]]:
    """Write one recurrent node per layer; the top output ``(T, N, D*H)`` and each layer's final states.

    ``initial``: the host arrays ``h0`` (and ``c0``), each ``(L*D, N, H)``, written as each node's
    ``initial_h``/``initial_c``; None for zeros.
    """
    import numpy as np

    p = host_params(layer)
    dirs, hidden = layer.num_directions, layer.hidden_size
    width = np.asarray([0, 0, dirs * hidden], dtype=np.int64)
    to_features = g.const("shape_tn_dh", width)  # (T, D, N, H) -> (T, N, D*H) after the transpose
    peepholes = bool(getattr(layer, "peepholes", False))
    reset_after = bool(getattr(layer, "reset_after", True))
    hs: list[str] = []
    cs: list[str] = []
    for k in range(layer.num_layers):
        suffixes = ("", "_reverse")[:dirs]
        perm = _PERMS[kind]
        w = np.stack([permute_blocks(p[f"weight_ih_l{k}{s}"], perm) for s in suffixes])  # (D, G*H, I)
        r = np.stack([permute_blocks(p[f"weight_hh_l{k}{s}"], perm) for s in suffixes])  # (D, G*H, H)
        names = [x, g.const(f"l{k}.W", w), g.const(f"l{k}.R", r), "", seq_lens, "", ""]
        for index, (label, a) in enumerate(zip(("initial_h", "initial_c"), initial or [])):
            names[5 + index] = g.const(f"l{k}.{label}", np.ascontiguousarray(a[k * dirs : (k + 1) * dirs]))
        if layer.bias:
            b = np.stack(
                [
                    np.concatenate(
                        [
                            permute_blocks(p[f"bias_ih_l{k}{s}"], perm),
                            permute_blocks(p[f"bias_hh_l{k}{s}"], perm),
                        ]
                    )
                    for s in suffixes
                ]
            )  # (D, 2*G*H)
            names[3] = g.const(f"l{k}.B", b)
        if peepholes:
            peep = np.stack([permute_blocks(p[f"weight_ch_l{k}{s}"], PEEPHOLE_IOF) for s in suffixes])
            names.append(g.const(f"l{k}.P", peep))  # (D, 3*H)
        while names[-1] == "":
            names.pop()
        attrs: dict[str, Any] = {
            "hidden_size": hidden,
            "direction": "bidirectional" if dirs == 2 else "forward",
        }
        if kind == "rnn" and layer.nonlinearity == "relu":
            attrs["activations"] = ["Relu"] * dirs
        if kind == "gru":
            attrs["linear_before_reset"] = int(reset_after)
        outs = [f"l{k}.Y", f"l{k}.Y_h"] + ([f"l{k}.Y_c"] if kind == "lstm" else [])
        g.nodes.append(g.helper.make_node(_OPS[kind], names, outs, name=f"layer{k}", **attrs))
        hs.append(outs[1])
        cs.extend(outs[2:])
        x = g.node("Reshape", [g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3]), to_features])
    return x, [hs, cs] if kind == "lstm" else [hs]


def _head(g: _Graph, model: Any, h: str, h_n_top: str, width: int) -> str:
    """Write the model's dense head: ``MatMul`` + ``Add`` on ``h``, or ``Gemm`` on the final states."""
    import numpy as np

    weight, bias = to_host(model.head.params["weight"]), to_host(model.head.params["bias"])  # (O, D*H), (O,)
    b = g.const("head.bias", bias)
    if model.head_mode == "every":
        w_t = g.const("head.weight_t", np.ascontiguousarray(weight.T))  # (D*H, O)
        return g.node("Add", [g.node("MatMul", [h, w_t]), b])
    last_shape = g.const("shape_n_dh", np.asarray([0, width], dtype=np.int64))
    last = g.node("Reshape", [g.node("Transpose", [h_n_top], perm=[1, 0, 2]), last_shape])  # (N, D*H)
    return g.node("Gemm", [last, g.const("head.weight", weight), b], transB=1)


def _check_opset(opset: Any, newest: int) -> int:
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest}, got {opset!r}")
    return opset


def _dim(name: str, value: Any, symbol: str) -> str | int:
    if value is True:
        return symbol
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name} must be True (a symbolic size) or a positive int (a fixed size), got {value!r}"
        )
    return value
