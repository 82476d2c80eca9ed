"""Hard edges of the training layer: parameters the library owns, saves that load, empty data.

Catalogue style, as tests/test_bad_input_catalogue.py: in the error table each row is one
rule (the call, the exception type, a pattern of its message naming the argument, what was
expected and what came); the tests after it state the behaviours that are not errors: a
torch tensor that requires a gradient is detached, early stopping keeps copies, a failed
save leaves the previous file as it was.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import xrnn
from helpers import to_numpy
from xrnn.io.npz_reader import HEADER

torch = pytest.importorskip("torch")


def _model(**options):
    return xrnn.SequenceModel("lstm", 2, 3, 2, xp="numpy", seed=0, **options)


def _stepped(optimizer, model, steps=1):
    """``optimizer`` after ``steps`` updates of the parameters of ``model`` with gradients of ones."""
    params = model.params
    for _ in range(steps):
        params = optimizer.step(params, {k: np.ones_like(v) for k, v in params.items()})
    return optimizer


def _with(params, key, value):
    return dict(params) | {key: value}


MODEL = _model()
P = MODEL.params
LAYER_KEYS = {k.removeprefix("rnn."): v for k, v in P.items() if k.startswith("rnn.")}


def _save_with_layer_optimizer(path):
    layer_optimizer = _stepped(xrnn.Adam(), xrnn.LSTM(2, 3, xp="numpy", seed=0))  # keys without 'rnn.'
    xrnn.save_checkpoint(path, MODEL, layer_optimizer)


def _save_with_foreign_optimizer(path):
    xrnn.save_checkpoint(
        path, MODEL, _stepped(xrnn.SGD(0.1, momentum=0.9), xrnn.SequenceModel("gru", 2, 3, 2))
    )


def _save_float64_params(path):
    model = _model()
    model.rnn.params["weight_hh_l0"] = model.rnn.params["weight_hh_l0"].astype(
        np.float64
    )  # behind set_params
    xrnn.save_checkpoint(path, model)


def _save_int_params(path):
    model = _model()
    model.rnn.params = {k: v.astype(np.int64) for k, v in model.rnn.params.items()}
    model.head.params = {k: v.astype(np.int64) for k, v in model.head.params.items()}
    xrnn.save_checkpoint(path, model)


def _partial_adam():
    adam = _stepped(xrnn.Adam(), _model())
    del adam.state["v"]["head.bias"]
    return adam


CASES = {
    # ownership: set_params takes only arrays of the model's namespace, dtype and device
    "set_params_float64_into_float32": (
        lambda: _model().set_params({k: v.astype(np.float64) for k, v in P.items()}),
        TypeError,
        r"params\['rnn.weight_ih_l0'\] must have the model's dtype float32, got float64",
    ),
    "set_params_int64": (
        lambda: _model().set_params(_with(P, "head.bias", np.zeros(2, np.int64))),
        TypeError,
        r"params\['head.bias'\] must have the model's dtype float32, got int64",
    ),
    "set_params_torch_into_numpy": (
        lambda: _model().set_params(_with(P, "head.weight", torch.zeros(2, 3))),
        TypeError,
        r"params\['head.weight'\] must be an array of the model's namespace numpy, got one of torch",
    ),
    "set_params_a_list": (
        lambda: _model().set_params(_with(P, "head.bias", [0.0, 0.0])),
        TypeError,
        r"params\['head.bias'\] must be an array of the model's namespace, got list",
    ),
    # optimisers refuse a state that does not belong to the parameters they update
    "step_with_the_state_of_the_inner_layer": (
        lambda: _stepped(xrnn.Adam(), xrnn.LSTM(2, 3, xp="numpy", seed=0)).step(P, P),
        ValueError,
        r"optimizer cannot update these params: its state 'm' holds key\(s\) \['bias_hh_l0'.*another model",
    ),
    "step_with_a_partial_state": (
        lambda: _partial_adam().step(P, P),
        ValueError,
        r"its state 'v' holds 5 of the model's 6 parameters at step 1 \(missing \['head.bias'\]\)",
    ),
    "step_with_a_float64_state": (
        lambda: _stepped(xrnn.Adam(), _model(dtype="float64")).step(P, P),
        ValueError,
        r"its state m\['.*'\] is .*numpy float64 but the parameter is .*numpy float32",
    ),
    # saves that would not load are refused before any file is touched
    "save_the_optimizer_of_the_inner_layer": (
        _save_with_layer_optimizer,
        xrnn.CheckpointError,
        r"cannot save .*: the optimizer does not fit this model: its state 'm' holds key\(s\) \['bias_hh_l0'",
    ),
    "save_the_optimizer_of_another_model": (
        _save_with_foreign_optimizer,
        xrnn.CheckpointError,
        r"does not fit this model: its state velocity\['rnn.bias_hh_l0'\] has shape \(9,\) but the "
        r"parameter has \(12,\)",
    ),
    "save_parameters_of_two_dtypes": (
        _save_float64_params,
        xrnn.CheckpointError,
        r"cannot save a checkpoint that would not load: .*array 'param/rnn.weight_hh_l0' has dtype float64, "
        r"expected float32",
    ),
    "save_integer_parameters": (
        _save_int_params,
        xrnn.CheckpointError,
        r"would not load: .*dtype must be float32 or float64, got 'int64'",
    ),
    # empty data: refused before any update, naming the argument
    "fit_on_zero_sequences": (
        lambda: xrnn.fit(
            _model(),
            xrnn.Adam(),
            np.ones((4, 0, 2), np.float32),
            np.ones((4, 0, 2), np.float32),
            loss="mse",
            epochs=1,
            batch_size=2,
            verbose=False,
        ),  # fmt: skip
        ValueError,
        r"x must hold at least one step of one sequence \(T, N, input_size\), got shape \(4, 0, 2\)",
    ),
    "fit_on_zero_steps": (
        lambda: xrnn.fit(
            _model(),
            xrnn.Adam(),
            np.ones((0, 3, 2), np.float32),
            np.ones((0, 3, 2), np.float32),
            loss="mse",
            epochs=1,
            batch_size=2,
            verbose=False,
        ),  # fmt: skip
        ValueError,
        r"x must hold at least one step of one sequence \(T, N, input_size\), got shape \(0, 3, 2\)",
    ),
    "fit_with_empty_validation": (
        lambda: xrnn.fit(
            _model(),
            xrnn.Adam(),
            np.ones((4, 3, 2), np.float32),
            np.ones((4, 3, 2), np.float32),
            loss="mse",
            epochs=1,
            batch_size=2,
            verbose=False,
            validation=(np.ones((4, 0, 2), np.float32), np.ones((4, 0, 2), np.float32)),
        ),  # fmt: skip
        ValueError,
        r"x_val must hold at least one step of one sequence \(T, N, input_size\), got shape \(4, 0, 2\)",
    ),
    "fit_on_torch_data_for_a_numpy_model": (
        lambda: xrnn.fit(
            _model(),
            xrnn.Adam(),
            torch.ones(4, 3, 2),
            torch.ones(4, 3, 2),
            loss="mse",
            epochs=1,
            batch_size=2,
            verbose=False,
        ),  # fmt: skip
        TypeError,
        r"x must be an array of the model's namespace numpy, got an array of torch",
    ),
    "predict_on_zero_sequences": (
        lambda: _model().predict(np.ones((4, 0, 2), np.float32)),
        ValueError,
        r"x must hold at least one step of one sequence \(T, N, input_size\), got shape \(4, 0, 2\)",
    ),
    "predict_on_torch_data_for_a_numpy_model": (
        lambda: _model().predict(torch.ones(4, 3, 2)),
        TypeError,
        r"x must be an array of the model's namespace numpy, got an array of torch",
    ),
    "cross_entropy_of_zero_positions": (
        lambda: xrnn.softmax_cross_entropy(np.ones((0, 3), np.float32), np.ones((0,), np.int64)),
        ValueError,
        r"logits must hold at least one position of at least one class \(\.\.\., C\), got shape \(0, 3\)",
    ),
    "evaluate_zero_held_out_sequences": (
        lambda: xrnn.AddingTask(5, 4, eval_size=0, xp="numpy"),
        ValueError,
        r"eval_size must be a positive int, got 0",
    ),
    "evaluate_zero_steps": (
        lambda: xrnn.TextTask("abc abc", 0, 4, xp="numpy"),
        ValueError,
        r"seq_len must be a positive int, got 0",
    ),
    "reber_batches_of_zero_strings": (
        lambda: xrnn.ReberTask(0, xp="numpy"),
        ValueError,
        r"batch_size must be a positive int, got 0",
    ),
    "mse_of_zero_values": (
        lambda: xrnn.mse(np.ones((0, 3), np.float32), np.ones((0, 3), np.float32)),
        ValueError,
        r"prediction must hold at least one value, got shape \(0, 3\)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_edge_is_refused_with_a_message_naming_the_argument(case, tmp_path):
    call, error, message = CASES[case]
    path = tmp_path / "saved.npz"
    with pytest.raises(error, match=message) as info:
        call(path) if call.__code__.co_argcount else call()
    assert len(str(info.value)) < 500
    assert not path.exists()  # a refused save writes nothing


# ----------------------------------------------------------------- ownership, not errors


def test_set_params_detaches_torch_tensors_that_require_a_gradient():
    model = xrnn.SequenceModel("gru", 2, 3, 2, xp="torch", seed=0)
    model.set_params({k: v.clone().requires_grad_(True) for k, v in model.params.items()})
    assert not any(v.requires_grad for v in model.params.values())


@pytest.mark.parametrize("optimizer", [lambda: xrnn.SGD(0.1, momentum=0.9), lambda: xrnn.Adam()])
def test_optimisers_never_build_an_autograd_graph(optimizer):
    optimizer = optimizer()
    params = {"w": torch.ones(3, requires_grad=True)}
    for _ in range(3):
        grads = {"w": params["w"] * 2}  # a gradient that is itself part of a graph
        params = optimizer.step(params, grads)
        assert params["w"].grad_fn is None and not params["w"].requires_grad
    assert all(a.grad_fn is None for a in optimizer.state_arrays().values())


class _InPlaceSGD:
    """An optimiser that updates the arrays it is given in place (as torch.optim does)."""

    def step(self, params, grads):
        for key, p in params.items():
            p -= 5.0 * grads[key]  # a large step: the validation loss rises after the first epochs
        return dict(params)


def test_early_stopping_restores_a_copy_that_updates_in_place_cannot_change():
    model = xrnn.SequenceModel("gru", 2, 4, 1, head="last", xp="numpy", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 8, 2)), rng.standard_normal((8, 1))
    seen = {}

    def remember(epoch, history):
        seen[epoch] = {k: v.copy() for k, v in model.params.items()}

    history = xrnn.fit(
        model, _InPlaceSGD(), x, y, loss="mse", epochs=30, batch_size=8, patience=2, verbose=False,
        validation=(x, y), callback=remember,
    )  # fmt: skip
    assert history.stopped_early and history.best_epoch < len(history.loss)
    for key, value in seen[history.best_epoch].items():
        np.testing.assert_array_equal(model.params[key], value, err_msg=key)


# ----------------------------------------------------------------------- saves that load


def test_a_numpy_integer_in_a_configuration_is_saved_as_a_plain_int(tmp_path):
    model = xrnn.SequenceModel(
        "lstm", np.int64(2), np.int64(3), np.int64(3), num_layers=np.int64(1), xp="numpy"
    )
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    loaded = xrnn.load_checkpoint(tmp_path / "m.npz").model
    assert loaded.config == model.config and type(loaded.config["output_size"]) is int


def test_a_refused_save_leaves_the_previous_file_as_it_was(tmp_path):
    path = tmp_path / "m.npz"
    xrnn.save_checkpoint(path, MODEL)
    before = path.read_bytes()
    with pytest.raises(xrnn.CheckpointError):
        _save_with_layer_optimizer(path)
    assert path.read_bytes() == before


def _drop_member(path: pathlib.Path, member: str) -> None:
    """Rewrite the archive without ``optim/<member>`` (and without its line in the header)."""
    with np.load(path) as archive:
        header = json.loads(archive[HEADER].tobytes())
        del header["arrays"][f"optim/{member}"]
        arrays = {name: archive[name] for name in header["arrays"]}
    np.savez(path, **arrays, **{HEADER: np.frombuffer(json.dumps(header).encode(), np.uint8)})


@pytest.mark.parametrize(
    "optimizer,member",
    [(xrnn.Adam, "v.head.bias"), (lambda: xrnn.SGD(0.1, momentum=0.5), "velocity.rnn.weight_hh_l0")],
)
def test_a_file_with_part_of_the_optimizer_state_missing_is_refused(tmp_path, optimizer, member):
    model = _model()
    path = tmp_path / "m.npz"
    xrnn.save_checkpoint(path, model, _stepped(optimizer(), model))
    _drop_member(path, member)
    with pytest.raises(xrnn.CheckpointError, match=r"optimizer state is not valid: .*partial"):
        xrnn.load_checkpoint(path)


# ---------------------------------------------------------------- dtypes that hold (JAX)


@pytest.fixture
def jax_without_x64():
    jax = pytest.importorskip("jax")
    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield jax
    finally:
        jax.config.update("jax_enable_x64", was)


@pytest.mark.parametrize("build", [
    lambda: xrnn.LSTM(2, 3, xp="jax", dtype="float64"),
    lambda: xrnn.SequenceModel("gru", 2, 3, 1, xp="jax", dtype="float64"),
    lambda: xrnn.AddingTask(5, 4, xp="jax", dtype="float64"),
], ids=["layer", "model", "task"])  # fmt: skip
def test_float64_on_jax_without_x64_is_a_clear_error(jax_without_x64, build):
    with pytest.raises(
        ValueError, match=r"dtype float64 was asked for on JAX, but .*jax_enable_x64\) is off"
    ):
        build()


def test_a_float64_checkpoint_does_not_load_truncated_on_jax_without_x64(tmp_path, jax_without_x64):
    xrnn.save_checkpoint(tmp_path / "m.npz", _model(dtype="float64"))
    with pytest.raises(ValueError, match=r"m.npz holds float64 arrays: dtype float64 was asked for on JAX"):
        xrnn.load_checkpoint(tmp_path / "m.npz", xp="jax")


def test_float32_on_jax_without_x64_still_works(jax_without_x64):
    assert str(to_numpy(xrnn.LSTM(2, 3, xp="jax").params["weight_ih_l0"]).dtype) == "float32"


# ------------------------------------------------------------------------- mixed inputs


def test_the_command_sample_on_a_layer_checkpoint_says_what_the_file_holds(tmp_path, capsys):
    from xrnn.cli.command import main

    path = tmp_path / "layer.npz"
    xrnn.save_checkpoint(
        path, xrnn.LSTM(4, 5, xp="numpy", seed=0), metadata={"task": "text", "vocab": "ab \n"}
    )
    assert main(["sample", str(path)]) == 1
    err = capsys.readouterr().err
    assert "layer.npz holds a LSTM layer, not a SequenceModel of text" in err and "Traceback" not in err


@pytest.mark.parametrize("call", ["forward", "apply"])
def test_a_traced_checkpoint_under_jit_is_named(call):
    jax = pytest.importorskip("jax")
    layer = xrnn.GRU(2, 3, xp="jax", seed=0)
    x = jax.numpy.ones((4, 2, 2), dtype=layer.dtype)
    run = {
        "forward": lambda x, k: layer.forward(x, checkpoint=k)[0],
        "apply": lambda x, k: layer.apply(layer.params, x, checkpoint=k)[0],
    }[call]
    with pytest.raises(TypeError, match=r"checkpoint must be a static value under jax.jit .*static_argnames"):
        jax.jit(run)(x, 2)


def test_the_demo_in_float64_on_jax_without_x64_stops_before_training(jax_without_x64, tmp_path, capsys):
    from xrnn.cli.command import main

    with pytest.raises(SystemExit) as info:
        main(["demo", "--backend", "jax", "--dtype", "float64", "--steps", "1", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "jax_enable_x64" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("build", ["layer", "model"])
def test_from_state_dict_copies_torch_tensors_off_their_graph(build):
    module = torch.nn.GRU(2, 3)
    sd = {k: v.clone().requires_grad_(True) for k, v in module.state_dict().items()}
    if build == "layer":
        made = xrnn.GRU.from_state_dict(sd, xp="torch")
    else:
        head = {"head.weight": torch.ones(2, 3, requires_grad=True), "head.bias": torch.zeros(2)}
        made = xrnn.SequenceModel.from_state_dict(
            {f"rnn.{k}": v for k, v in sd.items()} | head, "gru", xp="torch"
        )
    assert not any(v.requires_grad for v in made.params.values())
    with torch.no_grad():
        sd["weight_hh_l0"].add_(1.0)  # a change of the given tensor after the build
    key = "weight_hh_l0" if build == "layer" else "rnn.weight_hh_l0"
    assert not torch.equal(made.params[key], sd["weight_hh_l0"].detach())  # the layer holds a copy
