"""Checkpoints: round trips across backends, atomic writes, and a clear error for every bad file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
import xrnn.io.checkpoint
from helpers import to_numpy
from xrnn import CheckpointError, load_checkpoint, save_checkpoint


def trained(cell="lstm", steps=2, optimizer=None, xp="numpy", dtype="float32"):
    model = xrnn.SequenceModel(cell, 2, 3, 1, xp=xp, dtype=dtype, seed=0)
    optimizer = optimizer or xrnn.Adam(0.01)
    xrnn.train(
        model, xrnn.AddingTask(seq_len=4, batch_size=2, xp=xp, dtype=dtype), optimizer, steps=steps, seed=0
    )
    return model, optimizer


def host(params):
    return {k: to_numpy(v) for k, v in params.items()}


def rewrite(path, edit_header=None, edit_arrays=None):
    """Re-save a checkpoint with its header and arrays edited (to make bad files)."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("header").tobytes())
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)


@pytest.fixture
def saved(tmp_path):
    model, optimizer = trained()
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, optimizer, metadata={"task": "adding", "note": "é"})
    return path, model, optimizer


# ---------------------------------------------------------------------------------- round trips


def test_round_trip_restores_parameters_optimizer_and_metadata_exactly(saved):
    path, model, optimizer = saved
    loaded, opt, metadata = load_checkpoint(path, xp="numpy")
    assert loaded.config == model.config and loaded.dtype == model.dtype
    for key, value in host(model.params).items():
        assert np.array_equal(to_numpy(loaded.params[key]), value)
    assert isinstance(opt, xrnn.Adam) and opt.hyperparameters() == optimizer.hyperparameters()
    assert opt.state["step"] == 2
    for key, value in host(optimizer.state_arrays()).items():
        assert np.array_equal(to_numpy(opt.state_arrays()[key]), value)
    assert metadata == {"task": "adding", "note": "é"}


@pytest.mark.parametrize(
    "make", [lambda: xrnn.Adam(0.01), lambda: xrnn.SGD(0.1, momentum=0.9)], ids=["adam", "sgd"]
)
def test_training_resumed_from_a_checkpoint_continues_exactly(tmp_path, make):
    model, optimizer = trained(cell="gru", optimizer=make())
    save_checkpoint(tmp_path / "a.npz", model, optimizer)
    task = xrnn.AddingTask(seq_len=4, batch_size=2, xp="numpy")
    xrnn.train(model, task, optimizer, steps=2, seed=1)
    resumed, opt, _ = load_checkpoint(tmp_path / "a.npz", xp="numpy")
    xrnn.train(resumed, task, opt, steps=2, seed=1)
    for key, value in model.params.items():
        assert np.array_equal(resumed.params[key], value)


def test_a_checkpoint_without_optimizer_loads_with_none(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path / "m.npz", model)
    assert load_checkpoint(tmp_path / "m.npz").optimizer is None


def test_saved_on_numpy_loads_on_every_backend(saved, xp):
    path, model, _ = saved
    loaded, opt, _ = load_checkpoint(path, xp=xp)
    assert all(array_namespace(v) is xp for v in loaded.params.values())
    assert all(array_namespace(v) is xp for v in opt.state_arrays().values())
    for key, value in host(model.params).items():
        assert np.array_equal(to_numpy(loaded.params[key]), value)


def test_saved_on_every_backend_loads_on_numpy(tmp_path, xp):
    model = xrnn.SequenceModel("gru", 2, 3, 1, xp=xp, dtype="float64", seed=0)
    optimizer = xrnn.Adam()
    model.set_params(optimizer.step(model.params, model.params))
    save_checkpoint(tmp_path / "m.npz", model, optimizer)
    loaded, _, _ = load_checkpoint(tmp_path / "m.npz", xp="numpy")
    assert loaded.params["head.weight"].dtype == np.float64
    for key, value in host(model.params).items():
        assert np.array_equal(loaded.params[key], value)


def test_loading_into_a_model_converts_to_its_namespace_and_dtype(saved, xp):
    path, model, _ = saved
    target = xrnn.SequenceModel("lstm", 2, 3, 1, xp=xp, dtype="float64", seed=9)
    loaded, _, _ = load_checkpoint(path, model=target)
    assert loaded is target and str(target.params["head.weight"].dtype).endswith("float64")
    for key, value in host(model.params).items():
        assert np.allclose(to_numpy(target.params[key]), value)


def test_the_file_holds_no_pickle(saved):
    path, _, _ = saved
    with np.load(path, allow_pickle=False) as f:
        assert all(f[name].dtype != object for name in f.files)
        assert set(f.files) >= {"header", "param/head.weight", "optim/m.rnn.weight_ih_l0"}


# ------------------------------------------------------------------------------------ atomicity


def test_a_crash_mid_write_leaves_the_previous_file_intact_and_no_temporary_file(saved, monkeypatch):
    path, model, _ = saved
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(xrnn.io.checkpoint.np, "savez", crash)
    other, _ = trained(cell="lstm", steps=3)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, other)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert load_checkpoint(path).model.config == model.config


def test_an_interrupt_mid_write_also_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupt(file, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(xrnn.io.checkpoint.np, "savez", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.npz", trained()[0])
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_re_saved_compressed_loads(saved):
    path, model, _ = saved
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez_compressed(path, **arrays)
    loaded = load_checkpoint(path).model
    for key, value in host(model.params).items():
        assert np.array_equal(to_numpy(loaded.params[key]), value)


def test_saving_replaces_an_existing_checkpoint(saved):
    path, _, _ = saved
    other, _ = trained(cell="rnn")
    save_checkpoint(path, other)
    assert load_checkpoint(path).model.config["cell"] == "rnn"


# ---------------------------------------------------------------------------------- bad files


def test_a_truncated_file_is_a_clear_error(saved):
    path, _, _ = saved
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 10, 0):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="not a readable xrnn checkpoint"):
            load_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"not a checkpoint at all" * 10, "not a readable xrnn checkpoint"),
        (None, "single .npy array"),
    ],
    ids=["random_bytes", "npy_file"],
)
def test_a_file_that_is_not_an_npz_archive_is_a_clear_error(tmp_path, content, pattern):
    path = tmp_path / "model.npz"
    if content is None:
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)


def test_an_npz_of_another_program_is_not_an_xrnn_checkpoint(tmp_path):
    np.savez(tmp_path / "weights.npz", W=np.ones((2, 2)))
    with pytest.raises(CheckpointError, match="not an xrnn checkpoint: it has no 'header' member"):
        load_checkpoint(tmp_path / "weights.npz")


def test_an_archive_holding_a_pickle_is_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", header=np.array([{"format": "xrnn-checkpoint"}], dtype=object))
    with pytest.raises(CheckpointError, match="not a readable xrnn checkpoint"):
        load_checkpoint(tmp_path / "evil.npz")


MALFORMED = {
    "header_not_json": (
        lambda a: a.update(header=np.frombuffer(b"{not json", dtype=np.uint8)),
        None,
        "header is not valid JSON",
    ),
    "format_tag": (None, lambda h: h.update(format="something-else"), "format tag is not 'xrnn-checkpoint'"),
    "newer_version": (
        None,
        lambda h: h.update(version=99),
        "has checkpoint version 99; this xrnn reads versions 1..2",
    ),
    "unknown_cell": (
        None,
        lambda h: h["model"].update(cell="transformer"),
        "model configuration is not valid",
    ),
    "config_keys": (None, lambda h: h["model"].pop("hidden_size"), "model configuration must have"),
    "missing_array": (lambda a: a.pop("param/head.bias"), None, r"missing \['param/head.bias'\]"),
    "unlisted_array": (lambda a: a.update(extra=np.ones(2, np.float32)), None, r"unexpected \['extra'\]"),
    "manifest_shape": (
        None,
        lambda h: h["arrays"]["param/head.bias"].update(shape=[5]),
        "array 'param/head.bias' has shape",
    ),
    "optimizer_entry": (
        None,
        lambda h: h.update(optimizer={"name": "rmsprop"}),
        "optimizer entry is not valid",
    ),
    "optimizer_hyper": (
        None,
        lambda h: h["optimizer"]["hyperparameters"].update(lr=-1),
        "optimizer hyperparameters are not valid",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_checkpoint_is_a_clear_error(saved, case):
    path, _, _ = saved
    edit_arrays, edit_header, pattern = MALFORMED[case]
    if case == "header_not_json":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        edit_arrays(arrays)
        np.savez(path, **arrays)
    else:
        rewrite(path, edit_header, edit_arrays)
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)


def test_a_checkpoint_of_another_model_is_refused_by_name(saved):
    path, _, _ = saved
    gru = xrnn.SequenceModel("gru", 2, 5, 1, xp="numpy", seed=0)
    with pytest.raises(
        CheckpointError, match="holds another model: cell is 'lstm' in the file but 'gru' in the model"
    ):
        load_checkpoint(path, model=gru)


def test_arrays_of_other_shapes_than_the_configuration_are_refused(saved):
    path, _, _ = saved

    def grow(arrays):
        arrays["param/head.weight"] = np.zeros((1, 4), np.float32)

    def relist(header):
        header["arrays"]["param/head.weight"]["shape"] = [1, 4]

    rewrite(path, relist, grow)
    with pytest.raises(
        CheckpointError, match=r"parameter 'head.weight' has shape \(1, 4\), expected \(1, 3\)"
    ):
        load_checkpoint(path)


def test_optimizer_state_of_other_shapes_is_refused(saved):
    path, _, _ = saved

    def grow(arrays):
        arrays["optim/m.head.bias"] = np.zeros((2,), np.float32)

    def relist(header):
        header["arrays"]["optim/m.head.bias"]["shape"] = [2]

    rewrite(path, relist, grow)
    with pytest.raises(CheckpointError, match="optimizer state 'm.head.bias' of shape"):
        load_checkpoint(path)


def test_mixed_dtypes_are_refused(saved):
    path, _, _ = saved

    def widen(arrays):
        arrays["param/head.bias"] = arrays["param/head.bias"].astype(np.float64)

    def relist(header):
        header["arrays"]["param/head.bias"]["dtype"] = "float64"

    rewrite(path, relist, widen)
    with pytest.raises(CheckpointError, match="array 'param/head.bias' has dtype float64, expected float32"):
        load_checkpoint(path)


def test_a_missing_file_or_folder_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "such" / "dir.npz", trained()[0])


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_checkpoint(tmp_path / "m.npz", trained()[0], metadata={"f": np.ones(2)})
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_gets_the_usual_permissions_of_a_new_file(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    save_checkpoint(tmp_path / "m.npz", trained()[0])
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------- any model or layer

ANY_MODEL = {
    "rnn_relu_bidirectional": lambda xp: xrnn.RNN(2, 3, num_layers=2, nonlinearity="relu", bidirectional=True,
                                                  xp=xp, seed=0),
    "lstm_batch_first": lambda xp: xrnn.LSTM(2, 3, batch_first=True, xp=xp, seed=0),
    "gru_two_layers": lambda xp: xrnn.GRU(4, 5, num_layers=2, xp=xp, seed=0),
    "dense": lambda xp: xrnn.Dense(3, 2, xp=xp, seed=0),
    "lstm_projection_without_bias": lambda xp: xrnn.LSTM(2, 4, num_layers=2, bias=False, dropout=0.5,
                                                         proj_size=3, xp=xp, seed=0),
    "sequence_model_projection": lambda xp: xrnn.SequenceModel("lstm", 2, 4, 3, bidirectional=True,
                                                               proj_size=2, bias=False, head="last", xp=xp,
                                                               seed=0),
    "sequence_model_last": lambda xp: xrnn.SequenceModel("rnn", 2, 3, 4, num_layers=2, bidirectional=True,
                                                         batch_first=True, head="last", nonlinearity="relu",
                                                         xp=xp, seed=0),
}  # fmt: skip


def _config(model):
    return model.config if isinstance(model, xrnn.SequenceModel) else xrnn.io.checkpoint.config_of(model)


@pytest.mark.parametrize("case", list(ANY_MODEL))
def test_every_model_and_layer_round_trips_with_its_class_and_configuration(tmp_path, xp, case):
    model = ANY_MODEL[case](xp)
    optimizer = xrnn.Adam(0.01)
    optimizer.step(model.params, model.params)
    save_checkpoint(tmp_path / "m.npz", model, optimizer, metadata={"case": case})
    loaded, opt, metadata = load_checkpoint(tmp_path / "m.npz", xp=xp)
    assert type(loaded) is type(model) and _config(loaded) == _config(model) and metadata == {"case": case}
    for key, value in model.params.items():
        assert array_namespace(loaded.params[key]) is xp
        assert np.array_equal(to_numpy(loaded.params[key]), to_numpy(value)), key
    assert sorted(opt.state_arrays()) == sorted(optimizer.state_arrays())


def test_a_layer_loads_into_a_layer_of_its_class_and_configuration_only(tmp_path):
    save_checkpoint(tmp_path / "gru.npz", xrnn.GRU(2, 3, xp="numpy", seed=0))
    target = xrnn.GRU(2, 3, xp="numpy", dtype="float64", seed=1)
    assert load_checkpoint(tmp_path / "gru.npz", model=target).model is target
    with pytest.raises(CheckpointError, match="holds a GRU, not a LSTM like the model given"):
        load_checkpoint(tmp_path / "gru.npz", model=xrnn.LSTM(2, 3, xp="numpy"))
    with pytest.raises(
        CheckpointError, match="holds another model: bidirectional is False in the file but True"
    ):
        load_checkpoint(tmp_path / "gru.npz", model=xrnn.GRU(2, 3, bidirectional=True, xp="numpy"))


def test_a_version_1_checkpoint_still_loads_as_a_sequence_model(saved):
    path, model, _ = saved

    def as_version_1(header):
        header["version"] = 1
        header["model"] = {k: header["model"][k] for k in ("cell", "input_size", "hidden_size", "output_size",
                                                           "num_layers")}  # fmt: skip

    rewrite(path, as_version_1)
    loaded = load_checkpoint(path).model
    assert loaded.config == model.config
    for key, value in model.params.items():
        assert np.array_equal(loaded.params[key], value)


def test_an_option_a_file_does_not_record_takes_its_default(saved):
    path, model, _ = saved
    rewrite(path, lambda header: [header["model"].pop(k) for k in ("bidirectional", "batch_first", "head")])
    assert load_checkpoint(path).model.config == model.config


LAYER_FILES = {
    "unknown_class": (lambda h: h["model"].update({"class": "Transformer"}),
                      "model class 'Transformer' is not one"),
    "class_of_json_list": (lambda h: h["model"].update({"class": ["RNN"]}),
                           r"model class \['RNN'\] is not one"),
    "unknown_option": (lambda h: h["model"].update(heads=2), "model configuration must have input_size"),
    "option_type": (lambda h: h["model"].update(bidirectional=1), "model configuration must have"),
    "hidden_size_20000": (lambda h: h["model"].update(hidden_size=20000),
                          "the header says hidden_size 20000 but its arrays have hidden_size 3"),
    "input_size": (lambda h: h["model"].update(input_size=7), "the header says input_size 7 but its arrays"),
    "num_layers": (lambda h: h["model"].update(num_layers=9000), "the header says num_layers 9000"),
    "nonlinearity": (lambda h: h["model"].update(nonlinearity="gelu"), "model configuration is not valid: "
                     "nonlinearity must be 'tanh' or 'relu'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LAYER_FILES))
def test_a_malformed_layer_checkpoint_is_refused_before_anything_is_built(tmp_path, case, monkeypatch):
    path = tmp_path / "rnn.npz"
    save_checkpoint(path, xrnn.RNN(2, 3, xp="numpy", seed=0))
    edit, pattern = LAYER_FILES[case]
    rewrite(path, edit)
    built = []
    monkeypatch.setattr(
        xrnn.io.checkpoint, "CLASSES", {k: _spy(v, built) for k, v in xrnn.io.checkpoint.CLASSES.items()}
    )
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)
    assert built in ([], ["RNN"]) and (case == "nonlinearity") == (built == ["RNN"])


def _spy(cls, built):
    def make(*args, **kwargs):
        built.append(cls.__name__)
        return cls(*args, **kwargs)

    return make


def test_saving_a_subclass_or_another_object_is_refused(tmp_path):
    class MyLSTM(xrnn.LSTM):
        pass

    for thing in (MyLSTM(2, 3, xp="numpy"), {"weight": np.ones(2)}):
        with pytest.raises(TypeError, match="model must be a SequenceModel, RNN, LSTM, GRU or Dense, got"):
            save_checkpoint(tmp_path / "m.npz", thing)
    assert list(tmp_path.iterdir()) == []
