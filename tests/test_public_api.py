"""The public surface survives the package layout: every name importable from where it was, old files load.

``PUBLIC`` lists what ``xrnn``, ``xrnn.classic``, ``xrnn.distributed``, ``xrnn.data``, ``xrnn.io``
and ``xrnn.training`` offered before the layout (docs/architecture.rst); the files under
``tests/data/pre-layout-*`` were written by xrnn before it.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import numpy as np
import pytest

import xrnn

DATA = pathlib.Path(__file__).parent / "data"
DOCS = pathlib.Path(__file__).parents[1] / "docs"

PUBLIC = {
    "xrnn": sorted(xrnn.__all__),
    "xrnn.classic": [
        "lstm_backward",
        "lstm_cell_backward",
        "lstm_cell_forward",
        "lstm_forward",
        "rnn_backward",
        "rnn_cell_backward",
        "rnn_cell_forward",
        "rnn_forward",
        "sigmoid",
        "softmax",
    ],
    "xrnn.distributed": ["CollectiveError", "block_bounds", "predict", "train"],
    "xrnn.data": [
        "REBER_SYMBOLS",
        "CharVocab",
        "ReberBatch",
        "adding_problem",
        "embedded_reber",
        "read_corpus",
        "reber_batch",
        "reber_successors",
        "text_batch",
        "zen_of_python",
    ],
    "xrnn.io": ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"],
    "xrnn.training": ["local_gradient", "train", "gradient_by_step"],
    "xrnn.cli": ["main"],
    "xrnn.backends.numba": ["release"],
}
#: What ``xrnn.__all__`` held before the layout: the layout adds nothing and removes nothing.
TOP_LEVEL_BEFORE = {
    "BACKENDS", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell", "SGD", "Adam", "AddingTask",
    "Checkpoint", "CheckpointError", "Dense", "History", "ReberTask", "SequenceModel", "TextTask",
    "clip_grad_norm", "default_namespace", "fit", "get_backend", "gradient_by_step", "load_checkpoint",
    "mse", "sample", "save_checkpoint", "softmax", "softmax_cross_entropy", "train", "truncated_bptt",
    "use_backend",
}  # fmt: skip


#: Names added to ``xrnn.__all__`` since the layout, each by its own change: the ONNX and Keras
#: exchange; AdamW, the learning-rate schedules of fit and the thread policy; minGRU, minLSTM and
#: the layer over any cell; IndRNN.
TOP_LEVEL_ADDED = {
    "export_onnx", "from_keras_weights", "load_onnx", "to_keras_weights",
    "AdamW", "CosineDecay", "StepDecay", "cpu_threads",
    "CellLayer", "MinGRU", "MinLSTM", "IndRNN",
    "LayerNormLSTM", "LayerNormGRU",
}  # fmt: skip


def test_the_top_level_names_are_those_of_before_and_those_added_since():
    assert set(xrnn.__all__) == TOP_LEVEL_BEFORE | TOP_LEVEL_ADDED


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in PUBLIC.items() for n in names])
def test_a_public_name_imports_from_where_it_did(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def _documented() -> list[str]:
    """Every ``xrnn.`` name that the API reference lists (autosummary entries)."""
    text = (DOCS / "api.rst").read_text()
    return re.findall(r"^\s+(xrnn\.[\w.]+)\s*$", text, re.M)


@pytest.mark.parametrize("dotted", _documented())
def test_every_name_of_the_api_reference_resolves(dotted):
    module, _, name = dotted.rpartition(".")
    while True:
        try:
            obj = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module, _, attribute = module.rpartition(".")
            name = f"{attribute}.{name}"
    for part in name.split("."):
        obj = getattr(obj, part)


def test_a_model_checkpoint_written_before_the_layout_loads_and_predicts_the_same():
    saved = np.load(DATA / "pre-layout-outputs.npz")
    checkpoint = xrnn.load_checkpoint(DATA / "pre-layout-model.npz", xp="numpy")
    assert checkpoint.metadata == {"note": "written before the package layout"}
    assert type(checkpoint.optimizer).__name__ == "Adam" and checkpoint.optimizer.state["step"] == 1
    np.testing.assert_array_equal(checkpoint.model.predict(saved["x"]), saved["model"])


def test_a_layer_checkpoint_written_before_the_layout_loads_and_runs_the_same():
    saved = np.load(DATA / "pre-layout-outputs.npz")
    gru = xrnn.load_checkpoint(DATA / "pre-layout-gru.npz", xp="numpy").model
    np.testing.assert_array_equal(gru.forward(saved["x"], need_cache=False)[0], saved["gru"])
