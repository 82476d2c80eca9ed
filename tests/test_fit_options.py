"""fit's Keras habits: defaults, validation_split, metrics, schedules, AdamW, NaN and early stopping."""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest

import xrnn


def regression(n=8, t=5, seed=0):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal((t, n, 2)), np.float32)
    return x, np.asarray(x.sum(axis=0)[:, :1], np.float32)  # (T, N, 2), (N, 1)


def classes(n=8, t=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_normal((t, n, 2)), np.float32), rng.integers(0, 3, n)


def model(output_size=1, seed=0):
    return xrnn.SequenceModel("lstm", 2, 4, output_size, head="last", seed=seed)


def test_loss_epochs_and_batch_size_have_defaults_inferred_from_the_targets():
    x, y = regression(n=40)
    m, twin = model(), model()
    history = xrnn.fit(m, xrnn.Adam(0.01), x, y, verbose=False)
    same = xrnn.fit(twin, xrnn.Adam(0.01), x, y, loss="mse", epochs=1, batch_size=32, verbose=False)
    assert history.loss == same.loss and len(history.loss) == 1
    xc, labels = classes()
    assert math.isclose(
        xrnn.fit(model(3), xrnn.Adam(), xc, labels, verbose=False).loss[0],
        xrnn.fit(model(3), xrnn.Adam(), xc, labels, loss="cross_entropy", verbose=False).loss[0],
    )


def test_validation_split_holds_out_the_last_sequences_before_shuffling():
    x, y = regression(n=10)
    split = xrnn.fit(
        model(), xrnn.Adam(0.01), x, y, validation_split=0.3, epochs=2, batch_size=4, verbose=False
    )
    given = xrnn.fit(model(), xrnn.Adam(0.01), x[:, :7], y[:7], validation=(x[:, 7:], y[7:]), epochs=2,
                     batch_size=4, verbose=False)  # fmt: skip
    assert split.loss == given.loss and split.val_loss == given.val_loss


def test_metrics_are_recorded_for_training_and_validation_and_printed(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    x, y = regression(n=10)

    def max_error(z, target):
        return float(np.max(np.abs(z - target)))

    m = model()
    history = xrnn.fit(m, xrnn.Adam(0.01), x, y, metrics=["mae", "rmse", max_error], validation=(x, y),
                       epochs=2, batch_size=10, shuffle=False)  # fmt: skip
    z = m.predict(x)
    assert math.isclose(history.metrics["val_mae"][-1], float(np.mean(np.abs(z - y))), rel_tol=1e-5)
    assert math.isclose(history.metrics["val_rmse"][-1], float(np.sqrt(np.mean((z - y) ** 2))), rel_tol=1e-5)
    assert math.isclose(history.metrics["val_max_error"][-1], max_error(z, y), rel_tol=1e-6)
    assert set(history.metrics) == {"mae", "rmse", "max_error", "val_mae", "val_rmse", "val_max_error"}
    assert all(len(values) == 2 for values in history.metrics.values())
    assert re.search(
        r"epoch 2/2: .* mae [0-9.e-]+, rmse [0-9.e-]+, max_error .* val_mae", capsys.readouterr().out
    )


def test_accuracy_is_a_metric_of_class_targets_and_mae_is_refused_for_them():
    x, labels = classes()
    history = xrnn.fit(model(3), xrnn.Adam(), x, labels, metrics=["accuracy"], epochs=1, batch_size=8,
                       verbose=False)  # fmt: skip
    assert 0.0 <= history.metrics["accuracy"][0] <= 1.0
    with pytest.raises(ValueError, match="metric 'mae' needs targets that are values like the outputs"):
        xrnn.fit(model(3), xrnn.Adam(), x, labels, metrics=["mae"], verbose=False)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: xrnn.StepDecay(0.1, 2, gamma=0.5), lambda opt: __import__("torch").optim.lr_scheduler.StepLR(
            opt, step_size=2, gamma=0.5)),
        (lambda: xrnn.CosineDecay(0.1, 4, final=0.01), lambda opt: __import__("torch").optim.lr_scheduler.
            CosineAnnealingLR(opt, T_max=4, eta_min=0.01)),
    ],
)  # fmt: skip
def test_built_in_schedules_follow_torchs_schedulers(ours, theirs):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler, expected = theirs(opt), []
    for _ in range(5):  # up to CosineDecay's steps: past them torch's cosine rises again, Keras's holds
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    schedule = ours()
    assert [schedule(t) for t in range(5)] == pytest.approx(expected, rel=1e-12)


def test_cosine_decay_holds_its_final_rate_after_its_steps():
    assert [xrnn.CosineDecay(0.1, 4, final=0.01)(t) for t in (4, 5, 100)] == [0.01, 0.01, 0.01]


@pytest.mark.parametrize("by", ["epoch", "step"])
def test_fit_sets_the_learning_rate_of_the_schedule(by):
    x, y = regression(n=8)
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.01 / (1 + t)

    optimizer = xrnn.Adam(0.01)
    history = xrnn.fit(model(), optimizer, x, y, lr_schedule=schedule, schedule_by=by, epochs=3, batch_size=4,
                       verbose=False)  # fmt: skip
    assert seen == ([0, 1, 2] if by == "epoch" else [0, 1, 2, 3, 4, 5])
    assert optimizer.lr == 0.01 / (1 + seen[-1])
    assert history.lr == ([0.01, 0.005, 0.01 / 3] if by == "epoch" else [0.01, 0.01 / 3, 0.01 / 5])


def test_adamw_matches_torchs_adamw():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal((3, 4)), [rng.standard_normal((3, 4)) for _ in range(3)]
    ours, params = xrnn.AdamW(0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3), {"w": p0}
    weight = torch.tensor(p0, requires_grad=True)
    theirs = torch.optim.AdamW([weight], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)
    for g in grads:
        params = ours.step(params, {"w": g})
        weight.grad = torch.tensor(g)
        theirs.step()
    np.testing.assert_allclose(params["w"], weight.detach().numpy(), rtol=1e-12)


def test_adamw_round_trips_through_a_checkpoint(tmp_path):
    x, y = regression()
    m, optimizer = model(), xrnn.AdamW(0.01, weight_decay=0.1)
    xrnn.fit(m, optimizer, x, y, epochs=1, batch_size=4, verbose=False)
    xrnn.save_checkpoint(tmp_path / "m.npz", m, optimizer=optimizer)
    restored = xrnn.load_checkpoint(tmp_path / "m.npz").optimizer
    assert isinstance(restored, xrnn.AdamW) and restored.hyperparameters() == optimizer.hyperparameters()


def test_a_nan_loss_stops_fit_with_a_message_and_keeps_the_last_finite_parameters():
    x, y = regression(n=8)
    x[:, 5] = np.nan  # the second batch of four
    m = model()
    with pytest.warns(RuntimeWarning, match=r"fit stopped: the loss was nan at epoch 1, batch 2"):
        history = xrnn.fit(m, xrnn.Adam(0.01), x, y, epochs=3, batch_size=4, shuffle=False, verbose=False)
    twin = model()
    xrnn.fit(twin, xrnn.Adam(0.01), x[:, :4], y[:4], epochs=1, batch_size=4, shuffle=False, verbose=False)
    assert history.stopped_on_nan and history.loss == []
    assert all(np.array_equal(m.params[k], twin.params[k]) for k in m.params)


def test_early_stopping_says_when_it_stops_and_which_epoch_it_restored(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    x, y = regression(n=8)
    history = xrnn.fit(model(), xrnn.Adam(0.5), x, y, validation=(x[:, :2], y[:2] + 5.0), patience=1,
                       epochs=50, batch_size=4)  # fmt: skip
    assert history.stopped_early
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        f"early stopping at epoch {len(history)}: val_loss not below {min(history.val_loss):.4g} for 1 "
        f"epoch(s); restored the parameters of epoch {history.best_epoch}"
    )
