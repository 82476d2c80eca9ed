"""Inference never trains: every inference path runs in evaluation mode without changing the model.

The mode is an argument of the call (``forward(..., training=False)``), not a flag flipped on
the shared model, so ``predict`` is safe from many threads, and no inference entry point of
the library ever draws a dropout mask, whatever the model's mode.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import xrnn
from helpers import asarray, to_numpy
from xrnn.nn.modes import Modes

T, N, IN, H, OUT = 6, 5, 3, 4, 3


def _dropout_model(xp, dtype="float64", **options):
    model = xrnn.SequenceModel(
        "lstm", IN, H, OUT, num_layers=2, dropout=0.5, xp=xp, dtype=dtype, seed=0, **options
    )
    assert model.training  # the mode after construction, as torch
    return model


def _x(xp, dtype="float64", shape=(T, N, IN)):
    return asarray(xp, np.random.default_rng(1).standard_normal(shape), dtype)


def test_predict_from_8_threads_on_a_training_model_equals_the_single_threaded_eval_result():
    # The race was on the shared model's mode, which no backend changes: NumPy alone, kept fast.
    model = _dropout_model("numpy")
    x = _x(model.xp, shape=(3, 2, IN))
    expected = to_numpy(model.predict(x)).copy()
    differences, failures = [], []
    start = threading.Barrier(8)

    def run() -> None:
        try:
            start.wait()
            for _ in range(100):
                got = to_numpy(model.predict(x))
                differences.append(int(np.sum(got != expected)))
        except Exception as exc:  # reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(differences) == 800 and sum(differences) == 0
    assert model.training and model.rnn.training  # the mode was never changed


@pytest.mark.parametrize("xp", ["numpy", "torch"])  # the mode is read above the arrays: two suffice
def test_predict_equals_forward_in_eval_mode_and_leaves_the_mode(xp):
    pytest.importorskip(xp)
    model = _dropout_model(xp)
    x = _x(model.xp)
    got = to_numpy(model.predict(x))
    assert model.training
    model.eval()
    np.testing.assert_array_equal(got, to_numpy(model.forward(x)[0]))
    assert not model.training


def test_forward_with_training_true_on_an_eval_model_draws_the_masks_of_training_mode():
    model = _dropout_model("numpy")
    x = _x(model.xp)
    model.rnn.generator = np.random.default_rng(5)
    in_training = to_numpy(model.forward(x)[0])
    model.eval()
    model.rnn.generator = np.random.default_rng(5)
    asked = to_numpy(model.forward(x, training=True)[0])
    np.testing.assert_array_equal(asked, in_training)
    assert not model.training


def test_a_mode_that_is_not_a_bool_is_refused_naming_training():
    model = _dropout_model("numpy")
    with pytest.raises(TypeError, match=r"training must be True, False or None .*got 'no'"):
        model.forward(_x(model.xp), training="no")


# ------------------------------------------------- no inference path ever draws a dropout mask


@pytest.fixture
def no_dropout_draws(monkeypatch):
    """Drawing a dropout mask raises: any inference path that applies dropout fails."""
    draw = Modes._dropout_mask

    def refuse(self, *args, **kwargs):
        if draw(self, *args, **kwargs) is not None:  # a mask was drawn (None: none applies)
            raise AssertionError("a dropout mask was drawn during inference")

    monkeypatch.setattr(Modes, "_dropout_mask", refuse)


def test_drawing_a_mask_is_what_the_patch_refuses(no_dropout_draws):
    model = _dropout_model("numpy")
    with pytest.raises(AssertionError, match="dropout mask"):
        model.forward(_x(model.xp))  # training mode: the patch would catch an inference path that drew


@pytest.mark.parametrize("head", ["every", "last"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_predict_and_predict_proba_draw_no_mask(no_dropout_draws, head, batch_first):
    model = _dropout_model("numpy", head=head, batch_first=batch_first)
    x = _x(model.xp, shape=(N, T, IN) if batch_first else (T, N, IN))
    model.predict(x, lengths=[6, 2, 3, 1, 6], batch_size=2)
    model.predict_proba(x)


def test_distributed_predict_draws_no_mask(no_dropout_draws):
    da = pytest.importorskip("dask.array")
    from xrnn import distributed

    model = _dropout_model("numpy")
    z = distributed.predict(model, da.from_array(to_numpy(_x(model.xp)), chunks=(T, 2, IN)))
    np.testing.assert_array_equal(z.compute(scheduler="synchronous"), model.predict(_x(model.xp)))


@pytest.mark.parametrize(
    "task",
    [
        lambda: xrnn.AddingTask(5, 4, eval_size=3, dtype="float64", xp="numpy"),
        lambda: xrnn.ReberTask(4, eval_size=3, dtype="float64", xp="numpy"),
        lambda: xrnn.TextTask("abcab cabba " * 4, 5, 4, eval_size=3, dtype="float64", xp="numpy"),
    ],
    ids=["adding", "reber", "text"],
)
def test_task_evaluate_draws_no_mask(no_dropout_draws, task):
    task = task()
    model = xrnn.SequenceModel(
        "gru", task.input_size, 4, task.output_size, num_layers=2, dropout=0.5, dtype="float64", seed=0
    )
    first = task.evaluate(model).value
    assert task.evaluate(model).value == first and model.training


def test_sample_draws_no_mask(no_dropout_draws):
    model = xrnn.SequenceModel("lstm", 4, 5, 4, num_layers=2, dropout=0.5, xp="numpy", seed=0)
    assert xrnn.sample(model, [0, 1], 10, seed=0) == xrnn.sample(model, [0, 1], 10, seed=0)


def test_gradient_by_step_draws_no_mask(no_dropout_draws):
    model = _dropout_model("numpy")
    assert xrnn.gradient_by_step(model, _x(model.xp)).shape == (T,)


def test_the_command_sample_draws_no_mask(no_dropout_draws, tmp_path, capsys):
    from xrnn.cli.command import main

    chars = "ab \n"
    model = xrnn.SequenceModel("gru", 4, 5, 4, num_layers=2, dropout=0.5, xp="numpy", seed=0)
    path = tmp_path / "text.npz"
    xrnn.save_checkpoint(path, model, metadata={"task": "text", "vocab": chars, "start": "a"})
    assert main(["sample", str(path), "--length", "20", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) > 20
