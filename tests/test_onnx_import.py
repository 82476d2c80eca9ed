"""xrnn.load_onnx: ONNX's operator cases, random nodes against ONNX Runtime, own exports, refusals by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xrnn
from xrnn.nn.initial_state import WithInitialState

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


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_stacked_layer_with_an_initial_state_goes_to_onnx_and_back(cell, tmp_path):
    layer = {"lstm": xrnn.LSTM, "gru": xrnn.GRU, "rnn": xrnn.RNN}[cell](
        3, 4, num_layers=2, bidirectional=True, seed=3, xp="numpy", dtype="float32"
    )
    rng = np.random.default_rng(3)
    h0 = rng.standard_normal((4, 5, 4)).astype(np.float32)
    wrapped = WithInitialState(layer, (h0, -h0) if cell == "lstm" else h0)
    first = xrnn.export_onnx(wrapped, tmp_path / "a.onnx", dynamic_batch=5)
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    want = wrapped.forward(x, need_cache=False)
    got = run_onnxruntime(first, {"x": x})
    for out, ref in zip(got, [want[0], *(want[1] if cell == "lstm" else [want[1]])], strict=True):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    loaded = xrnn.load_onnx(tmp_path / "a.onnx", xp="numpy")
    assert isinstance(loaded, WithInitialState)
    assert xrnn.export_onnx(loaded, None, dynamic_batch=5).graph == first.graph


def test_a_layer_with_an_initial_state_exports_only_for_its_batch_size():
    wrapped = WithInitialState(xrnn.GRU(2, 3, xp="numpy"), np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match="initial state for batch size 4 exports with dynamic_batch=4"):
        xrnn.export_onnx(wrapped, None)


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


@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_a_constant_initial_state_is_the_default_state_and_matches_onnxruntime(op, direction):
    proto = recurrent_node(op, hidden=3, inputs=2, direction=direction, lengths=True, initial_batch=4, seed=6)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    lengths = np.array([5, 2, 4, 1], np.int32)
    want = run_onnxruntime(proto, {"X": x, "sequence_lens": lengths})
    got = as_onnx_outputs(xrnn.load_onnx(proto, xp="numpy"), x, lengths, 0)
    for out, ref in zip(got, want, strict=True):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_a_state_passed_to_forward_replaces_the_default_initial_state():
    proto = recurrent_node("LSTM", hidden=3, inputs=2, initial_batch=4, seed=7)
    layer = xrnn.load_onnx(proto, xp="numpy")
    x = np.random.default_rng(7).standard_normal((5, 4, 2)).astype(np.float32)
    zeros = (np.zeros((1, 4, 3), np.float32),) * 2
    y, _, _ = layer.forward(x, zeros)
    y_plain, _, _ = layer.layer.forward(x)
    y_default, _, _ = layer.forward(x)
    np.testing.assert_array_equal(y, y_plain)
    assert not np.allclose(y_default, y_plain)


def test_the_default_initial_state_serves_its_own_batch_size_only():
    layer = xrnn.load_onnx(recurrent_node("GRU", hidden=3, inputs=2, initial_batch=4), xp="numpy")
    with pytest.raises(ValueError, match="batch size 6, but the default initial state is for batch size 4"):
        layer.forward(np.zeros((5, 6, 2), np.float32))


def test_the_gradient_of_the_default_initial_state_is_returned():
    proto = recurrent_node("RNN", hidden=3, inputs=2, initial_batch=4)
    layer = xrnn.load_onnx(proto, xp="numpy", dtype="float64")
    x = np.random.default_rng(8).standard_normal((5, 4, 2))
    y, _, cache = layer.forward(x)
    _, dh0, _ = layer.backward(cache, np.ones_like(y))
    _, dh0_direct, _ = layer.layer.backward(layer.layer.forward(x, layer.state)[2], np.ones_like(y))
    np.testing.assert_array_equal(dh0, dh0_direct)
    assert dh0.shape == (1, 4, 3)


def test_a_zero_constant_initial_state_leaves_the_bare_layer():
    proto = recurrent_node("GRU", hidden=3, inputs=2, initial_batch=4)
    h0 = next(t for t in proto.graph.initializer if t.name == "initial_h")
    h0.CopyFrom(onnx.numpy_helper.from_array(np.zeros((1, 4, 3), np.float32), "initial_h"))
    assert isinstance(xrnn.load_onnx(proto, xp="numpy"), xrnn.GRU)


def test_a_non_zero_initial_state_with_a_dense_head_is_refused(tmp_path):
    model = xrnn.SequenceModel("gru", 2, 3, 1, xp="numpy", dtype="float32")
    path = tmp_path / "m.onnx"
    xrnn.export_onnx(model, path)
    proto = onnx.load(path)
    node = next(n for n in proto.graph.node if n.op_type == "GRU")
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 4, 3), np.float32), "h0"))
    node.input.extend([""] * (5 - len(node.input)) + ["h0"])
    with pytest.raises(ValueError, match="a dense head and a non-zero constant initial_h/initial_c"):
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
