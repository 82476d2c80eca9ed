"""xrnn.load_onnx: ONNX's operator cases, random nodes against ONNX Runtime, own exports, refusals by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xrnn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

from onnx import helper  # noqa: E402

from onnx_cases import (  # noqa: E402
    as_onnx_outputs,
    operator_cases,
    recurrent_node,
    run_onnxruntime,
)

with warnings.catch_warnings():  # generating every operator's cases warns in unrelated ones (casts)
    warnings.simplefilter("ignore")
    CASES = operator_cases()


def test_the_operator_cases_of_all_three_operators_are_generated():
    assert {c.model.graph.node[0].op_type for c in CASES} == {"RNN", "LSTM", "GRU"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.model.graph.node[0].op_type}-{c.name}" for c in CASES])
def test_an_onnx_operator_case_loads_and_reproduces_its_expected_outputs(case):
    node = case.model.graph.node[0]
    ((inputs, expected),) = case.data_sets
    feed = dict(zip([n for n in node.input if n], inputs))
    weights = {k: v for k, v in feed.items() if k not in ("X", "sequence_lens")}
    layer = xrnn.load_onnx(case.model, values=weights, xp="numpy")
    layout = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "layout"), 0)
    got = dict(zip(["Y", "Y_h", "Y_c"], as_onnx_outputs(layer, feed["X"], feed.get("sequence_lens"), layout)))
    for name, want in zip([n for n in node.output if n], expected, strict=True):
        np.testing.assert_allclose(got[name], want, rtol=case.rtol, atol=1e-6)


@hypothesis.settings(max_examples=30, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    op=st.sampled_from(["RNN", "LSTM", "GRU"]),
    direction=st.sampled_from(["forward", "reverse", "bidirectional"]),
    bias=st.booleans(),
    with_lengths=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_a_random_weight_node_loads_and_matches_onnxruntime(op, direction, bias, with_lengths, seed):
    # random weights tell the gate orders apart, which the operator cases' constant weights cannot
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    proto = recurrent_node(
        op, hidden=3, inputs=2, direction=direction, bias=bias, lengths=with_lengths, seed=seed, **attrs
    )
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    lengths = rng.integers(1, 6, size=4).astype(np.int32) if with_lengths else None
    want = run_onnxruntime(proto, {"X": x} | ({"sequence_lens": lengths} if with_lengths else {}))
    got = as_onnx_outputs(xrnn.load_onnx(proto, xp="numpy"), x, lengths, 0)
    for out, ref in zip(got, want, strict=True):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_layout_1_is_batch_first(op):
    # ONNX Runtime runs layout=0 only: the oracle is the same node with layout=0 on the transposed input
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    batchwise = recurrent_node(op, hidden=3, inputs=2, direction="bidirectional", layout=1, **attrs)
    timewise = recurrent_node(op, hidden=3, inputs=2, direction="bidirectional", layout=0, **attrs)
    layer = xrnn.load_onnx(batchwise, xp="numpy")
    assert layer.batch_first
    x = np.random.default_rng(2).standard_normal((4, 5, 2)).astype(np.float32)  # (N, T, I)
    want = run_onnxruntime(timewise, {"X": np.transpose(x, (1, 0, 2))})
    got = as_onnx_outputs(layer, x, None, 1)
    np.testing.assert_allclose(got[0], np.transpose(want[0], (2, 0, 1, 3)), rtol=1e-5, atol=1e-5)
    for state, ref in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(state, np.transpose(ref, (1, 0, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("head", ["every", "last", None])
def test_onnx_to_xrnn_to_onnx_writes_the_same_graph(cell, head, tmp_path):
    common = {"num_layers": 2, "bidirectional": True, "batch_first": True, "seed": 3, "xp": "numpy"}
    if head is None:
        model = {"lstm": xrnn.LSTM, "gru": xrnn.GRU, "rnn": xrnn.RNN}[cell](3, 4, **common)
    else:
        model = xrnn.SequenceModel(cell, 3, 4, 2, head=head, **common)
    first = xrnn.export_onnx(model, tmp_path / "a.onnx", lengths=True)
    loaded = xrnn.load_onnx(tmp_path / "a.onnx", xp="numpy")
    assert type(loaded) is type(model)
    assert xrnn.export_onnx(loaded, None, lengths=True).graph == first.graph


def test_a_stacked_export_of_two_directions_loads_as_the_same_model():
    options = {"num_layers": 2, "bidirectional": True, "head": "last", "seed": 1, "xp": "numpy"}
    model = xrnn.SequenceModel("gru", 3, 4, 2, **options)
    loaded = xrnn.load_onnx(xrnn.export_onnx(model, None).SerializeToString(), xp="numpy")
    assert loaded.config == model.config
    for key, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[key], value)


def _lstm(**attrs):
    return recurrent_node("LSTM", hidden=3, inputs=2, **attrs)


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (_lstm(clip=3.0), r"has clip=3.0: xrnn has no cell clipping"),
        (_lstm(input_forget=1), r"has input_forget=1 \(coupled input and forget gates\)"),
        (
            _lstm(activations=["Sigmoid", "Relu", "Tanh"]),
            r"activations=\['Sigmoid', 'Relu', 'Tanh'\]: xrnn's LSTM computes only the defaults",
        ),
        (
            recurrent_node("RNN", hidden=3, inputs=2, activations=["Sigmoid"]),
            r"activations=\['Sigmoid'\]: xrnn's RNN computes \['Tanh'\] or \['Relu'\] only",
        ),
        (
            _lstm(activations=["Sigmoid", "Tanh", "Tanh"], activation_alpha=[1.0]),
            "activation_alpha/activation_beta",
        ),
    ],
)
def test_an_attribute_xrnn_cannot_compute_is_refused_by_name(proto, message):
    with pytest.raises(ValueError, match=message):
        xrnn.load_onnx(proto)


def test_a_non_zero_constant_initial_state_is_refused():
    proto = _lstm()  # inputs X, W, R, B
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 1, 3), np.float32), "h0"))
    proto.graph.node[0].input.extend(["", "h0"])  # sequence_lens absent, initial_h
    with pytest.raises(ValueError, match="non-zero constant initial_h.*pass it as state= to forward"):
        xrnn.load_onnx(proto)


def test_weights_given_as_graph_inputs_must_have_values():
    case = next(c for c in CASES if c.name == "test_lstm_defaults")
    with pytest.raises(ValueError, match=r"reads its W from the graph input 'W': give its value as values="):
        xrnn.load_onnx(case.model)


def test_a_graph_with_another_operator_is_refused_by_name():
    proto = _lstm()
    proto.graph.node.append(helper.make_node("Relu", ["Y"], ["Z"], name="act"))
    with pytest.raises(ValueError, match="the graph has a ai.onnx:Relu node 'act'"):
        xrnn.load_onnx(proto)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_a_random_reset_before_gru_node_matches_onnxruntime(direction):
    proto = recurrent_node("GRU", hidden=3, inputs=2, direction=direction, linear_before_reset=0, seed=4)
    x = np.random.default_rng(4).standard_normal((5, 4, 2)).astype(np.float32)
    for out, ref in zip(as_onnx_outputs(xrnn.load_onnx(proto), x, None, 0), run_onnxruntime(proto, {"X": x})):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_a_random_peephole_lstm_node_matches_onnxruntime(direction):
    proto = _lstm(direction=direction, peepholes=True, seed=5)
    x = np.random.default_rng(5).standard_normal((5, 4, 2)).astype(np.float32)
    for out, ref in zip(as_onnx_outputs(xrnn.load_onnx(proto), x, None, 0), run_onnxruntime(proto, {"X": x})):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: xrnn.load_onnx(3), TypeError, "model must be a path, bytes or an onnx.ModelProto, got int"),
        (
            lambda: xrnn.load_onnx(_lstm(), values=[1]),
            TypeError,
            "values must be a dict of graph input names",
        ),
        (
            lambda: xrnn.load_onnx(_lstm(), values={"Q": np.zeros(1)}),
            ValueError,
            r"values names \['Q'\], which are not inputs of the graph \['X'\]",
        ),
    ],
)
def test_bad_arguments_of_load_onnx_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_weights_of_the_wrong_shape_are_refused_by_name():
    case = next(c for c in CASES if c.name == "test_lstm_defaults")
    ((inputs, _),) = case.data_sets
    w, r = inputs[1], inputs[2]
    with pytest.raises(ValueError, match=r"input R must have shape \(1, 12, 3\), got \(1, 12, 2\)"):
        xrnn.load_onnx(case.model, values={"W": w, "R": r[..., :2]})
