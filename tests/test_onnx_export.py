"""xrnn.export_onnx: the graph passes the checker and computes what xrnn computes.

The oracles are ONNX Runtime (float32) and ONNX's reference evaluator (float64).
"""

from __future__ import annotations

import numpy as np
import pytest

import xrnn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

from onnx_cases import (  # noqa: E402
    run_onnxruntime,
)

SETTINGS = hypothesis.settings(max_examples=30, deadline=None, derandomize=True, database=None)
CELLS = [("lstm", {}), ("gru", {}), ("rnn", {}), ("rnn", {"nonlinearity": "relu"})]
CELLS += [("gru", {"reset_after": False})]
CELLS += [("lstm", {"peepholes": True})]


@st.composite
def configs(draw):
    cell, options = draw(st.sampled_from(CELLS))
    c = {
        "cell": cell,
        "options": dict(options, bias=draw(st.booleans())),
        "layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "head": draw(st.sampled_from(["every", "last", None])),  # None: the bare layer
        "t": draw(st.integers(1, 5)),
        "n": draw(st.integers(1, 3)),
        "seed": draw(st.integers(0, 2**16)),
    }
    with_lengths = draw(st.booleans())
    c["lengths"] = [draw(st.integers(1, c["t"])) for _ in range(c["n"])] if with_lengths else None
    return c


def _build(c, dtype="float32"):
    common = {"num_layers": c["layers"], "bidirectional": c["bidirectional"], "batch_first": c["batch_first"]}
    common |= {"dtype": dtype, "xp": "numpy", "seed": c["seed"], **c["options"]}
    if c["head"] is None:
        layer_class = {"lstm": xrnn.LSTM, "gru": xrnn.GRU, "rnn": xrnn.RNN}[c["cell"]]
        return layer_class(3, 4, **common).eval()
    return xrnn.SequenceModel(c["cell"], 3, 4, 2, head=c["head"], **common)


def _expected(model, x, lengths):
    if isinstance(model, xrnn.SequenceModel):
        return [model.predict(x, lengths=lengths)]
    y, state, _ = model.forward(x, None, lengths, need_cache=False)
    return [y, *(state if isinstance(state, tuple) else (state,))]


def _inputs(c, dtype):
    rng = np.random.default_rng(c["seed"])
    shape = (c["n"], c["t"], 3) if c["batch_first"] else (c["t"], c["n"], 3)
    feed = {"x": rng.standard_normal(shape).astype(dtype)}
    if c["lengths"] is not None:
        feed["lengths"] = np.asarray(c["lengths"], dtype=np.int32)
    return feed


@SETTINGS
@hypothesis.given(configs())
def test_onnxruntime_runs_the_export_as_predict_does_float32(c):
    model = _build(c)
    proto = xrnn.export_onnx(model, None, lengths=c["lengths"] is not None)
    feed = _inputs(c, np.float32)
    got = run_onnxruntime(proto, feed)
    for out, want in zip(got, _expected(model, feed["x"], c["lengths"]), strict=True):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@SETTINGS
@hypothesis.given(configs())
def test_onnx_to_xrnn_to_onnx_writes_the_same_graph(c):
    lengths = c["lengths"] is not None
    proto = xrnn.export_onnx(_build(c), None, lengths=lengths)
    loaded = xrnn.load_onnx(proto, xp="numpy")
    assert xrnn.export_onnx(loaded, None, lengths=lengths).graph == proto.graph


@hypothesis.settings(SETTINGS, max_examples=8)
@hypothesis.given(configs())
def test_the_reference_evaluator_runs_the_export_as_predict_does_float64(c):
    # ONNX Runtime has no float64 kernel of these operators, and ONNX's reference
    # evaluator ignores sequence_lens and has no Relu RNN: full-length tanh sequences here.
    from onnx.reference import ReferenceEvaluator

    hypothesis.assume(c["options"].get("nonlinearity") != "relu")
    c = dict(c, lengths=None)
    model = _build(c, "float64")
    feed = _inputs(c, np.float64)
    got = ReferenceEvaluator(xrnn.export_onnx(model, None)).run(None, feed)
    for out, want in zip(got, _expected(model, feed["x"], None), strict=True):
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)


def test_the_export_passes_the_checker_with_full_shape_inference_and_is_written_to_path(tmp_path):
    model = xrnn.SequenceModel("lstm", 3, 4, 2, num_layers=2, bidirectional=True, seed=0, xp="numpy")
    xrnn.export_onnx(model, tmp_path / "m.onnx", lengths=True)
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    (z,) = inferred.graph.output
    assert [d.dim_param or d.dim_value for d in z.type.tensor_type.shape.dim] == ["time", "batch", 2]
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 2


def test_fixed_sizes_are_written_into_the_input_shape():
    model = xrnn.SequenceModel("gru", 3, 4, 2, batch_first=True, head="last", seed=0, xp="numpy")
    proto = xrnn.export_onnx(model, None, dynamic_batch=7, dynamic_time=5)
    (x,) = proto.graph.input
    assert [d.dim_value for d in x.type.tensor_type.shape.dim] == [7, 5, 3]
    assert proto.opset_import[0].version == 17


def test_a_bare_lstm_exports_y_h_n_and_c_n():
    proto = xrnn.export_onnx(xrnn.LSTM(3, 4, num_layers=2, seed=0, xp="numpy"), None)
    assert [o.name for o in proto.graph.output] == ["y", "h_n", "c_n"]


def test_a_projected_lstm_is_refused_by_name():
    model = xrnn.SequenceModel("lstm", 3, 4, 2, proj_size=2, seed=0, xp="numpy")
    with pytest.raises(ValueError, match=r"ONNX's LSTM operator has no projection.*proj_size=2"):
        xrnn.export_onnx(model, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 12}, r"opset must be an int from 14 to \d+, got 12"),
        ({"dynamic_batch": False}, r"dynamic_batch must be True .* or a positive int .*, got False"),
        ({"dynamic_time": 0}, r"dynamic_time must be True .* or a positive int .*, got 0"),
    ],
)
def test_bad_export_options_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        xrnn.export_onnx(xrnn.GRU(3, 4, seed=0, xp="numpy"), None, **kwargs)


def test_something_that_is_not_a_model_is_refused():
    with pytest.raises(TypeError, match="model must be an xrnn.SequenceModel or an xrnn.RNN, LSTM or GRU"):
        xrnn.export_onnx(xrnn.Dense(3, 2, xp="numpy"), None)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_reset_before_gru_exports_as_linear_before_reset_0(bidirectional):
    layer = xrnn.GRU(3, 4, bidirectional=bidirectional, reset_after=False, seed=0, xp="numpy").eval()
    proto = xrnn.export_onnx(layer, None)
    node = next(n for n in proto.graph.node if n.op_type == "GRU")
    attribute = next(a for a in node.attribute if a.name == "linear_before_reset")
    assert onnx.helper.get_attribute_value(attribute) == 0
    x = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32)
    for out, want in zip(run_onnxruntime(proto, {"x": x}), _expected(layer, x, None)):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_peephole_lstm_exports_its_peepholes_as_p(bidirectional):
    layer = xrnn.LSTM(3, 4, bidirectional=bidirectional, peepholes=True, seed=0, xp="numpy").eval()
    proto = xrnn.export_onnx(layer, None)
    node = next(n for n in proto.graph.node if n.op_type == "LSTM")
    assert len(node.input) == 8 and node.input[7] == "l0.P"
    x = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32)
    for out, want in zip(run_onnxruntime(proto, {"x": x}), _expected(layer, x, None)):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_importing_xrnn_imports_none_of_the_exchange_extras():
    import subprocess
    import sys

    code = "import sys, xrnn; print(sorted(m for m in ('onnx', 'onnxruntime', 'keras') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_model_on_any_backend_exports_and_loads_back_onto_it(xp):
    from array_api_compat import array_namespace

    from xrnn._util.namespaces import to_host

    model = xrnn.SequenceModel("lstm", 3, 4, 2, bidirectional=True, seed=0, xp=xp)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    want = to_host(model.predict(xp.asarray(x)))
    (got,) = run_onnxruntime(xrnn.export_onnx(model, None), {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    loaded = xrnn.load_onnx(xrnn.export_onnx(model, None), xp=xp)
    assert array_namespace(loaded.params["head.weight"]) is array_namespace(model.params["head.weight"])
    for key, value in model.params.items():  # the same weights (their layout in memory may differ)
        np.testing.assert_array_equal(to_host(loaded.params[key]), to_host(value))
    np.testing.assert_allclose(to_host(loaded.predict(xp.asarray(x))), want, rtol=1e-6, atol=1e-6)
