"""xrnn.fit: the hand-written minibatch loop in one call, validation, early stopping, reports."""

from __future__ import annotations

import re
import sys

import array_api_strict
import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, to_numpy

PNG = b"\x89PNG\r\n\x1a\n"


def data(xp, *, n=10, t=5, features=3, classes=4, head="last", seed=0, dtype="float64"):
    xp = np if xp == "numpy" else xp
    rng = np.random.default_rng(seed)
    x = asarray(xp, rng.standard_normal((t, n, features)), dtype)
    shape = (n,) if head == "last" else (t, n)
    labels = xp.asarray(rng.integers(0, classes, shape))
    values = asarray(xp, rng.standard_normal((*shape, classes)), dtype)
    return x, labels, values


def model_for(xp, head="last", cell="gru", **options):
    return xrnn.SequenceModel(cell, 3, 4, 4, head=head, xp=xp, dtype="float64", seed=1, **options)


def hand_loop(model, optimizer, x, y, loss, *, epochs, batch_size, seed, lengths=None, clip=None):
    """The loop that fit's docstring describes, written out."""
    xp = array_namespace(x)
    rng = np.random.default_rng(seed)
    n = x.shape[1]
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            rows = xp.asarray(idx.tolist())
            xb, yb = xp.take(x, rows, axis=1), xp.take(y, rows, axis=1 if model.head_mode == "every" else 0)
            lb = None if lengths is None else [lengths[i] for i in idx]
            z, _, cache = model.forward(xb, lengths=lb)
            mask = None
            if lb is not None and model.head_mode == "every":
                mask = asarray(xp, np.arange(x.shape[0])[:, None] < np.asarray(lb)[None, :], "bool")
            _, dz = loss(z, yb, mask)
            _, grads = model.backward(cache, dz)
            if clip is not None:
                grads, _ = xrnn.clip_grad_norm(grads, clip)
            model.set_params(optimizer.step(model.params, grads))


@pytest.mark.parametrize(
    ("loss", "head", "lengths", "clip", "options"),
    [
        ("cross_entropy", "last", None, None, {}),
        ("mse", "last", [5, 2, 3, 5, 1, 4, 5, 2, 3, 3], 0.5, {}),
        ("cross_entropy", "every", [5, 2, 3, 5, 1, 4, 5, 2, 3, 3], None, {}),
        ("mse", "every", None, 1.0, {}),
        ("cross_entropy", "last", None, None, {"num_layers": 2, "dropout": 0.3, "bidirectional": True}),
    ],
)
def test_fit_equals_a_hand_written_loop_with_the_same_seed(xp, loss, head, lengths, clip, options):
    x, labels, values = data(xp, head=head)
    y = labels if loss == "cross_entropy" else values
    fn = xrnn.softmax_cross_entropy if loss == "cross_entropy" else xrnn.mse
    by_hand, fitted = model_for(xp, head, **options), model_for(xp, head, **options)
    hand_loop(by_hand, xrnn.Adam(0.01), x, y, fn, epochs=2, batch_size=4, seed=3, lengths=lengths, clip=clip)
    history = xrnn.fit(
        fitted, xrnn.Adam(0.01), x, y, loss=loss, epochs=2, batch_size=4, seed=3, lengths=lengths,
        clip=clip, verbose=False,
    )  # fmt: skip
    assert len(history) == 2 and all(np.isfinite(history.loss))
    for key, value in by_hand.params.items():
        assert array_namespace(fitted.params[key]) is xp
        assert np.array_equal(to_numpy(fitted.params[key]), to_numpy(value)), key


def test_a_callable_loss_gets_the_batch_and_the_mask_of_valid_steps():
    x, _, values = data("numpy", head="every")
    seen = []

    def loss(z, y, mask=None):
        seen.append((z.shape, y.shape, None if mask is None else mask.shape))
        return xrnn.mse(z, y, mask)

    lengths = [5, 2, 3, 5, 1, 4, 5, 2, 3, 3]
    xrnn.fit(model_for("numpy", "every"), xrnn.SGD(0.1), x, values, loss=loss, epochs=1, batch_size=6,
             lengths=lengths, verbose=False)  # fmt: skip
    assert seen == [((5, 6, 4), (5, 6, 4), (5, 6)), ((5, 4, 4), (5, 4, 4), (5, 4))]


def test_batch_first_models_take_batch_first_data():
    x, labels, _ = data("numpy", head="every")
    time_major, batch_first = model_for("numpy", "every"), model_for("numpy", "every", batch_first=True)
    kw = {"loss": "cross_entropy", "epochs": 1, "batch_size": 4, "verbose": False}
    xrnn.fit(time_major, xrnn.Adam(0.01), x, labels, **kw)
    xrnn.fit(batch_first, xrnn.Adam(0.01), np.transpose(x, (1, 0, 2)), labels.T, **kw)
    for key, value in time_major.params.items():
        assert np.allclose(batch_first.params[key], value, rtol=0, atol=1e-12)


def test_validation_loss_and_accuracy_are_those_of_the_whole_validation_set():
    x, labels, _ = data("numpy")
    xv, yv, _ = data("numpy", n=7, seed=5)
    model = model_for("numpy")
    history = xrnn.fit(model, xrnn.Adam(0.01), x, labels, loss="cross_entropy", epochs=1, batch_size=3,
                       validation=(xv, yv), verbose=False)  # fmt: skip
    z, _, _ = model.forward(xv)
    assert np.isclose(history.val_loss[0], float(xrnn.softmax_cross_entropy(z, yv)[0]), rtol=1e-12)
    assert history.val_accuracy[0] == np.mean(np.argmax(z, axis=-1) == yv)
    assert history.best_epoch == 1


def test_patience_stops_early_and_restores_the_best_parameters():
    x, _, values = data("numpy")
    model = model_for("numpy")
    seen = {}
    history = xrnn.fit(
        model, xrnn.Adam(0.05), x, values, loss="mse", epochs=20, batch_size=10,
        validation=(x, -values), patience=2, verbose=False,  # learning y moves away from -y
        callback=lambda epoch, h: seen.setdefault(epoch, model.params),
    )  # fmt: skip
    assert history.stopped_early and len(history) == history.best_epoch + 2 < 20
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)
    for key, value in seen[history.best_epoch].items():
        assert np.array_equal(model.params[key], value)


def test_fit_leaves_the_model_in_the_mode_it_had():
    x, labels, _ = data("numpy")
    model = model_for("numpy").eval()
    xrnn.fit(model, xrnn.SGD(0.1), x, labels, loss="cross_entropy", epochs=1, batch_size=5, verbose=False)
    assert model.training is False


def test_without_tqdm_fit_prints_one_line_per_epoch(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    x, labels, _ = data("numpy")
    xrnn.fit(model_for("numpy"), xrnn.Adam(0.01), x, labels, loss="cross_entropy", epochs=3, batch_size=5,
             validation=(x, labels))  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    pattern = r"epoch {}/3: loss [0-9.e-]+, val_loss [0-9.e-]+, val_accuracy [0-9.]+% \([0-9.]+ s\)"
    assert all(re.fullmatch(pattern.format(i + 1), line) for i, line in enumerate(lines)), lines


def test_with_tqdm_fit_shows_a_progress_bar_and_verbose_false_shows_nothing(capsys):
    pytest.importorskip("tqdm")
    x, labels, _ = data("numpy")
    kw = {"loss": "cross_entropy", "epochs": 2, "batch_size": 5}
    xrnn.fit(model_for("numpy"), xrnn.Adam(0.01), x, labels, **kw)
    out, err = capsys.readouterr()
    assert out == "" and "fit: 100%" in err and "2/2" in err
    xrnn.fit(model_for("numpy"), xrnn.Adam(0.01), x, labels, verbose=False, **kw)
    assert capsys.readouterr() == ("", "")


def test_history_plots_its_losses_and_accuracy(tmp_path):
    pytest.importorskip("matplotlib")
    x, labels, _ = data("numpy")
    history = xrnn.fit(model_for("numpy"), xrnn.Adam(0.01), x, labels, loss="cross_entropy", epochs=2,
                       batch_size=5, validation=(x, labels), verbose=False)  # fmt: skip
    history.plot(tmp_path / "history.png")
    assert (tmp_path / "history.png").read_bytes().startswith(PNG)
    assert history.epochs == [1, 2] and "val_accuracy" in history.summary(2)


X, LABELS, VALUES = data("numpy")
MODEL = model_for("numpy")
ADAM = xrnn.Adam(0.01)
BAD = {
    "model": (lambda: xrnn.fit("model", ADAM, X, LABELS, loss="mse", epochs=1, batch_size=2),
              TypeError, "model must be a SequenceModel, got str"),
    "optimizer": (lambda: xrnn.fit(MODEL, "adam", X, LABELS, loss="mse", epochs=1, batch_size=2),
                  TypeError, "optimizer must have step"),
    "loss_name": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="hinge", epochs=1, batch_size=2),
                  ValueError, "loss must be 'mse', 'cross_entropy' or a function"),
    "epochs": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=0, batch_size=2),
               ValueError, "epochs must be a positive int, got 0"),
    "batch_size": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=1.5),
                   ValueError, "batch_size must be a positive int, got 1.5"),
    "y_shape": (lambda: xrnn.fit(MODEL, ADAM, X, VALUES, loss="cross_entropy", epochs=1, batch_size=2),
                ValueError, r"y must have shape \(10,\) \(N\) for loss='cross_entropy' with head='last'"),
    "y_dtype": (lambda: xrnn.fit(MODEL, ADAM, X, X[0, :, 0], loss="cross_entropy", epochs=1, batch_size=2),
                TypeError, "y must hold integer class indices"),
    "mse_shape": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="mse", epochs=1, batch_size=2),
                  ValueError, r"y must have shape \(10, 4\) \(N, output_size\) for loss='mse'"),
    "x_dims": (lambda: xrnn.fit(MODEL, ADAM, X[0], LABELS, loss="cross_entropy", epochs=1, batch_size=2),
               ValueError, r"x must have 3 dimensions \(T, N, input_size\), got shape \(10, 3\)"),
    "lengths": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2,
                                 lengths=[9] * 10), ValueError, r"lengths must lie in 1..T=5"),
    "validation": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2,
                                    validation=X), TypeError, "validation must be a tuple"),
    "y_val": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2,
                               validation=(X, LABELS[:3])), ValueError, r"y_val must have shape \(10,\)"),
    "x_val_features": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2,
                                        validation=(X[..., :2], LABELS)),
                       ValueError, r"x_val must have shape \(\*, \*, 3\) \(T, N, input_size\), got shape"),
    "x_dtype": (lambda: xrnn.fit(MODEL, ADAM, X.astype(np.float32), LABELS, loss="cross_entropy", epochs=1,
                                 batch_size=2), TypeError, "x must have the model's dtype float64"),
    "patience_alone": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2,
                                        patience=2), ValueError, "patience needs validation data"),
    "clip": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss="cross_entropy", epochs=1, batch_size=2, clip=-1),
             ValueError, "clip must be None or a positive number, got -1"),
    "namespaces": (lambda: xrnn.fit(MODEL, ADAM, X, array_api_strict.asarray(LABELS), loss="cross_entropy",
                                    epochs=1, batch_size=2),
                   TypeError, "y must be an array of the model's namespace numpy, got an array of array_"),
    "callable_result": (lambda: xrnn.fit(MODEL, ADAM, X, LABELS, loss=lambda z, y: 1.0, epochs=1,
                                         batch_size=2, verbose=False), TypeError, "loss must return a tuple"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_to_fit_is_a_clear_error(case):
    call, error, pattern = BAD[case]
    before = {k: v.copy() for k, v in MODEL.params.items()}
    with pytest.raises(error, match=pattern):
        call()
    assert all(np.array_equal(MODEL.params[k], v) for k, v in before.items())
