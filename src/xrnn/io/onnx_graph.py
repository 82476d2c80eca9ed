"""Reading an ONNX graph for :func:`xrnn.load_onnx`: constants, the recurrent nodes, how they are joined.

The graph is recognised, not interpreted: a chain of recurrent nodes joined as
:func:`xrnn.export_onnx` joins them, and a head as it writes it. Anything else is refused by
name, so that a graph is never read as something it does not compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._util.namespaces import to_host

__all__ = ["Graph"]

_RECURRENT = ("RNN", "LSTM", "GRU")
_PLUMBING = ("Transpose", "Reshape", "Squeeze", "Identity", "Concat", "Constant")
_HEAD = ("MatMul", "Add", "Gemm")


class Graph:
    """Constants, producers and consumers of an ONNX ``GraphProto``.

    Parameters
    ----------
    graph : onnx.GraphProto
        The graph.
    values : mapping of str to array
        Values of graph inputs that hold weights.
    """

    def __init__(self, graph: Any, values: Mapping[str, Any]) -> None:
        import numpy as np
        from onnx import helper, numpy_helper

        self.graph, self.helper = graph, helper
        self.inputs = {i.name for i in graph.input}
        self.constants: dict[str, Any] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        unknown = sorted(set(values) - self.inputs)
        if unknown:
            raise ValueError(
                f"values names {unknown}, which are not inputs of the graph {sorted(self.inputs)}"
            )
        for name, value in values.items():
            self.constants[name] = (
                to_host(value) if hasattr(value, "__array_namespace__") else np.asarray(value)
            )
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            for out in node.output:
                self.producer[out] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            if node.domain not in ("", "ai.onnx") or node.op_type not in _RECURRENT + _PLUMBING + _HEAD:
                raise ValueError(
                    f"load_onnx reads RNN, LSTM and GRU nodes joined by {', '.join(_PLUMBING)} with a "
                    f"{'/'.join(_HEAD)} head; the graph has a {node.domain or 'ai.onnx'}:{node.op_type} "
                    f"node {node.name!r}"
                )

    def recurrent_nodes(self) -> list[Any]:
        """The recurrent nodes in graph order, all of one operator."""
        nodes = [n for n in self.graph.node if n.op_type in _RECURRENT]
        if not nodes:
            raise ValueError("the graph has no RNN, LSTM or GRU node")
        ops = sorted({n.op_type for n in nodes})
        if len(ops) > 1:
            raise ValueError(f"the recurrent nodes must all be of one operator to form one layer, got {ops}")
        return nodes

    def attributes(self, node: Any) -> dict[str, Any]:
        """The node's attributes by name."""
        return {a.name: self.helper.get_attribute_value(a) for a in node.attribute}

    @staticmethod
    def input_of(node: Any, index: int) -> str | None:
        """The name of the node's input ``index``, or None when absent or empty."""
        return node.input[index] if index < len(node.input) and node.input[index] else None

    def value_of(self, node: Any, index: int, label: str) -> Any:
        """The constant value of the node's input ``index`` (a NumPy array); a ValueError if not constant."""
        name = self.input_of(node, index)
        if name is None:
            raise ValueError(f"the ONNX node {node.name!r} has no input {label}")
        if name not in self.constants:
            raise ValueError(
                f"the ONNX node {node.name!r} reads its {label} from the graph input {name!r}: give its "
                f"value as values={{{name!r}: array}}"
            )
        return self.constants[name]

    def constant_input(self, node: Any, index: int) -> Any:
        """The node's input ``index`` if it is constant, else None."""
        name = self.input_of(node, index)
        return None if name is None else self.constants.get(name)

    def _through(self, name: str) -> tuple[str, list[Any]]:
        """Walk back from ``name`` through plumbing nodes; the source name and the nodes passed."""
        passed = []
        while name in self.producer and self.producer[name].op_type in ("Transpose", "Reshape", "Squeeze"):
            node = self.producer[name]
            passed.append(node)
            name = node.input[0]
        return name, passed[::-1]

    def _is(self, node: Any, op: str, **expected: Any) -> bool:
        if node.op_type != op:
            return False
        if op == "Reshape":
            return [int(v) for v in self.constants.get(node.input[1], [])] == expected["shape"]
        if op == "Squeeze":
            axes = (
                self.constants.get(node.input[1])
                if len(node.input) > 1
                else self.attributes(node).get("axes")
            )
            return axes is not None and [int(v) for v in axes] == expected["axes"]
        return list(self.attributes(node).get("perm", [])) == expected["perm"]

    def chain(self, nodes: list[Any], width: int) -> bool:
        """Check that the nodes form a stack fed by the graph input; whether that input is batch-first."""
        source, passed = self._through(nodes[0].input[0])
        if source not in self.inputs or source in self.constants:
            raise ValueError(f"the first recurrent node's input X must be a graph input, got {source!r}")
        if passed and not (len(passed) == 1 and self._is(passed[0], "Transpose", perm=[1, 0, 2])):
            raise ValueError(
                "the first recurrent node's input X must be a graph input or its (1, 0, 2) transpose"
            )
        transposed = bool(passed)
        for below, node in zip(nodes, nodes[1:]):
            source, passed = self._through(node.input[0])
            joined = [op.op_type for op in passed]
            ok = source == below.output[0] and (
                (joined == ["Transpose", "Reshape"])
                and self._is(passed[0], "Transpose", perm=[0, 2, 1, 3])
                and self._is(passed[1], "Reshape", shape=[0, 0, width])
                or joined == ["Squeeze"]
                and self._is(passed[0], "Squeeze", axes=[1])
            )
            if not ok:
                raise ValueError(
                    f"the recurrent node {node.name!r} must read the output Y of {below.name!r} as "
                    f"(T, N, D*H) (Transpose (0, 2, 1, 3) and Reshape, or Squeeze of axis 1), got {source!r} "
                    f"through {joined}"
                )
        return transposed

    def head(self, top: Any, width: int) -> tuple[str, Any, Any] | None:
        """``(head mode, weight (O, D*H), bias (O,))`` of the dense head after ``top``, or None."""
        heads = [n for n in self.graph.node if n.op_type in ("MatMul", "Gemm")]
        if not heads:
            return None
        if len(heads) > 1:
            raise ValueError(f"a graph with one dense head is read, got {len(heads)} MatMul/Gemm nodes")
        node = heads[0]
        source, passed = self._through(node.input[0])
        if node.op_type == "MatMul":
            adds = self.consumers.get(node.output[0], [])
            ok = source == top.output[0] and [p.op_type for p in passed] in (
                ["Transpose", "Reshape"],
                ["Squeeze"],
            )
            if not ok or len(adds) != 1 or adds[0].op_type != "Add":
                raise ValueError(
                    "the MatMul head must read the top layer's Y as (T, N, D*H) and feed one Add"
                )
            weight = self.value_of(node, 1, "the head's weight").T  # (O, D*H)
            other = [name for name in adds[0].input if name != node.output[0]]
            bias = self.value_of(adds[0], list(adds[0].input).index(other[0]), "the head's bias")
            return "every", weight, bias
        a = self.attributes(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise ValueError("the Gemm head must have alpha=1, beta=1 and transA=0")
        ok = len(top.output) > 1 and source == top.output[1] and len(passed) == 2
        if not (ok and self._is(passed[0], "Transpose", perm=[1, 0, 2])):
            raise ValueError(
                "the Gemm head must read the top layer's Y_h as (N, D*H) (Transpose (1, 0, 2), Reshape)"
            )
        if not self._is(passed[1], "Reshape", shape=[0, width]):
            raise ValueError(f"the Gemm head must read the top layer's Y_h reshaped to (N, {width})")
        weight = self.value_of(node, 1, "the head's weight")
        weight = weight if a.get("transB", 0) else weight.T  # (O, D*H)
        return "last", weight, self.value_of(node, 2, "the head's bias")
