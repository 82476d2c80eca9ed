"""Inputs as they come: array-likes converted, dtypes cast only when asked, layout mistakes named."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import to_numpy


def model(xp="numpy", head="last", batch_first=False, dtype="float32"):
    return xrnn.SequenceModel("gru", 1, 4, 1, head=head, batch_first=batch_first, xp=xp, dtype=dtype, seed=0)


def series(rng, t=12, n=40):
    return rng.standard_normal((t, n, 1))  # float64, as pandas and statsmodels give


# ------------------------------------------------------------------------ 1. layout mistakes


def test_lengths_of_the_other_axis_in_predict_names_batch_first():
    x = np.zeros((40, 12, 1), np.float32)  # batch-first data, a time-major model
    with pytest.raises(ValueError, match=r"N=12 from its axis 1; its axis 0 has 40.*batch_first=True"):
        model().predict(x, lengths=[12] * 40)


def test_targets_of_the_other_axis_in_fit_name_batch_first():
    x = np.zeros((40, 12, 1), np.float32)
    y = np.zeros((40, 1), np.float32)
    with pytest.raises(ValueError, match=r"y must have shape \(12, 1\).*batch_first=False.*batch_first=True"):
        xrnn.fit(model(), xrnn.Adam(), x, y, verbose=False)


def test_lengths_of_the_other_axis_in_fit_name_batch_first():
    x = np.zeros((12, 40, 1), np.float32)  # time-major data, a batch-first model
    y = np.zeros((12, 1), np.float32)
    with pytest.raises(ValueError, match=r"lengths must have one entry.*N=12.*batch_first=False"):
        xrnn.fit(model(batch_first=True), xrnn.Adam(), x, y, lengths=[40] * 40, verbose=False)


@pytest.mark.parametrize("batch_first", [False, True])
def test_predict_returns_one_row_per_sequence_of_x(batch_first):
    x = np.zeros((12, 40, 1) if not batch_first else (40, 12, 1), np.float32)
    assert model(batch_first=batch_first).predict(x, batch_size=7).shape == (40, 1)


# --------------------------------------------------------------------- 2. inputs as they come


def test_lists_of_python_numbers_are_taken_in_the_models_dtype(xp):
    m = model(xp)
    x = np.random.default_rng(0).standard_normal((5, 3, 1))
    z = m.predict(x.tolist())
    assert z.dtype == m.dtype
    expected = m.predict(xp.asarray(np.asarray(x, np.float32)))
    np.testing.assert_allclose(to_numpy(z), to_numpy(expected), rtol=1e-6)


def test_pandas_targets_and_lengths_are_taken_by_fit():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = np.asarray(rng.standard_normal((6, 8, 1)), np.float32)
    y = pd.DataFrame({"target": rng.standard_normal(8).astype(np.float32)})
    lengths = pd.Series([6, 5, 4, 6, 3, 6, 2, 6])
    history = xrnn.fit(model(), xrnn.Adam(), x, y, lengths=lengths, epochs=2, batch_size=4, verbose=False)
    assert len(history.loss) == 2 and np.isfinite(history.loss).all()


def test_float64_is_refused_by_a_float32_model_without_cast():
    x = series(np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"x must have the model's dtype float32, got float64.*cast=True"):
        model().predict(x)


@pytest.mark.parametrize("call", ["predict", "forward"])
def test_cast_true_converts_float64_to_the_models_dtype(xp, call):
    m = model(xp)
    x = series(np.random.default_rng(0), t=5, n=3)
    got = m.predict(xp.asarray(x), cast=True) if call == "predict" else m.forward(xp.asarray(x), cast=True)[0]
    assert got.dtype == m.dtype
    expected = m.predict(xp.asarray(np.asarray(x, np.float32)))
    np.testing.assert_allclose(to_numpy(got), to_numpy(expected), rtol=1e-6)


def test_fit_with_cast_trains_on_float64_data_and_leaves_it_unchanged():
    rng = np.random.default_rng(0)
    x, y = series(rng, t=5, n=8), rng.standard_normal((8, 1))
    before = x.copy()
    history = xrnn.fit(model(), xrnn.Adam(), x, y, cast=True, epochs=1, batch_size=4, verbose=False)
    assert len(history.loss) == 1 and np.array_equal(x, before)


def test_pandas_lengths_in_predict_are_read_as_lengths():
    pd = pytest.importorskip("pandas")
    x = np.asarray(series(np.random.default_rng(0), t=5, n=3), np.float32)
    got = model().predict(x, lengths=pd.Series([5, 3, 2]))
    np.testing.assert_array_equal(got, model().predict(x, lengths=[5, 3, 2]))


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("lengths_range", "lengths"),
        ("lengths_count", "lengths"),
        ("y_shape", "y"),
        ("lengths_type", "lengths"),
    ],
)
def test_errors_name_the_argument_and_stay_short_for_any_n(case, name):
    n = 5000
    x = np.zeros((3, n, 1), np.float32)
    y = np.zeros((n, 1), np.float32)
    calls = {
        "lengths_range": lambda: xrnn.fit(model(), xrnn.Adam(), x, y, lengths=[4] * n, verbose=False),
        "lengths_count": lambda: model().predict(x, lengths=[3] * (n + 1)),
        "y_shape": lambda: xrnn.fit(model(), xrnn.Adam(), x, np.zeros((n, 2), np.float32), verbose=False),
        "lengths_type": lambda: model().predict(x, lengths=[3.0] * n),
    }
    with pytest.raises((ValueError, TypeError)) as info:
        calls[case]()
    message = str(info.value)
    assert message.startswith(name) and len(message) < 500, message
