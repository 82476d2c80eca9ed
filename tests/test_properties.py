"""Property-based tests over cell types, shapes, lengths, layers, directions and dtypes.

Hypothesis draws the configurations (derandomised, so CI sees the same examples every
run); each property holds for every one of them.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from helpers import LAYER_KINDS, make_layer

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
SETTINGS = hypothesis.settings(max_examples=40, deadline=None, derandomize=True, database=None)


@st.composite
def configs(draw, bidirectional=None):
    t_steps = draw(st.integers(1, 6))
    n = draw(st.integers(1, 4))
    ragged = draw(st.booleans())
    lengths = [draw(st.integers(1, t_steps)) for _ in range(n)] if ragged else None
    return {
        "cell": draw(st.sampled_from(sorted(LAYER_KINDS))),
        "t": t_steps,
        "n": n,
        "i": draw(st.integers(1, 3)),
        "h": draw(st.integers(1, 3)),
        "layers": draw(st.integers(1, 2)),
        "bi": draw(st.booleans()) if bidirectional is None else bidirectional,
        "lengths": lengths,
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "seed": draw(st.integers(0, 2**16)),
    }


def make(c, dtype=None):
    layer = make_layer(
        c["cell"],
        c["i"],
        c["h"],
        num_layers=c["layers"],
        bidirectional=c["bi"],
        xp="numpy",
        dtype=dtype or c["dtype"],
        seed=c["seed"],
    )
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["t"], c["n"], c["i"])).astype(dtype or c["dtype"])
    return layer, x, rng


def states(y_state):
    return y_state if isinstance(y_state, tuple) else (y_state,)


@SETTINGS
@hypothesis.given(configs())
def test_gradients_agree_with_finite_differences_along_a_random_direction(c):
    layer, x, rng = make(c, dtype="float64")
    d = 2 if c["bi"] else 1
    dy = rng.standard_normal((c["t"], c["n"], d * c["h"]))
    y, _, cache = layer.forward(x, lengths=c["lengths"])
    dx, _, grads = layer.backward(cache, dy)
    directions = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}
    vx = rng.standard_normal(x.shape)
    analytic = float(np.sum(dx * vx)) + sum(float(np.sum(grads[k] * v)) for k, v in directions.items())

    def loss(eps):
        shifted = copy.copy(layer)
        shifted.params = {k: v + eps * directions[k] for k, v in layer.params.items()}
        return float(np.sum(shifted.forward(x + eps * vx, lengths=c["lengths"])[0] * dy))

    eps = 1e-6
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic))


@SETTINGS
@hypothesis.given(configs(bidirectional=False), st.data())
def test_changing_x_at_step_t_changes_no_output_before_t(c, data):
    layer, x, _ = make(c)
    t = data.draw(st.integers(0, c["t"] - 1))
    y, _, _ = layer.forward(x)
    x2 = x.copy()
    x2[t] += 1.0
    y2, _, _ = layer.forward(x2)
    assert np.array_equal(y[:t], y2[:t])


@SETTINGS
@hypothesis.given(configs(bidirectional=True))
def test_reverse_direction_equals_forward_direction_on_time_reversed_input(c):
    c = {**c, "layers": 1}
    layer, x, _ = make(c)
    lengths = c["lengths"] or [c["t"]] * c["n"]
    forward_only = make_layer(c["cell"], c["i"], c["h"], xp="numpy", dtype=c["dtype"], seed=0)
    forward_only.params = {
        k.removesuffix("_reverse"): v for k, v in layer.params.items() if k.endswith("_reverse")
    }
    x_rev = x.copy()
    for n, length in enumerate(lengths):
        x_rev[:length, n] = x[:length, n][::-1]
    y, state, _ = layer.forward(x, lengths=c["lengths"])
    y_fwd, state_fwd, _ = forward_only.forward(x_rev, lengths=c["lengths"])
    for n, length in enumerate(lengths):
        np.testing.assert_array_equal(y[:length, n, c["h"] :], y_fwd[:length, n][::-1])
    for s, s_fwd in zip(states(state), states(state_fwd)):
        np.testing.assert_array_equal(s[1], s_fwd[0])


@SETTINGS
@hypothesis.given(configs())
def test_a_batch_equals_its_sequences_run_one_at_a_time(c):
    layer, x, rng = make(c)
    lengths = c["lengths"] or [c["t"]] * c["n"]
    dy = rng.standard_normal((c["t"], c["n"], (2 if c["bi"] else 1) * c["h"])).astype(c["dtype"])
    y, state, cache = layer.forward(x, lengths=c["lengths"])
    dx, _, grads = layer.backward(cache, dy)
    tol = 1e-5 if c["dtype"] == "float32" else 1e-12
    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    for n, length in enumerate(lengths):
        y1, state1, cache1 = layer.forward(x[:length, n : n + 1])
        dx1, _, g1 = layer.backward(cache1, dy[:length, n : n + 1])
        np.testing.assert_allclose(y[:length, n : n + 1], y1, rtol=tol, atol=tol)
        np.testing.assert_allclose(dx[:length, n : n + 1], dx1, rtol=tol, atol=tol)
        for s, s1 in zip(states(state), states(state1)):
            np.testing.assert_allclose(s[:, n : n + 1], s1, rtol=tol, atol=tol)
        summed = {k: summed[k] + g1[k] for k in summed}
    for k in grads:
        np.testing.assert_allclose(grads[k], summed[k], rtol=tol * 10, atol=tol * 10)


@SETTINGS
@hypothesis.given(configs())
def test_results_do_not_depend_on_padding_values(c):
    hypothesis.assume(c["lengths"] is not None and min(c["lengths"]) < c["t"])
    layer, x, rng = make(c)
    dy = rng.standard_normal((c["t"], c["n"], (2 if c["bi"] else 1) * c["h"])).astype(c["dtype"])
    x2 = x.copy()
    for n, length in enumerate(c["lengths"]):
        x2[length:, n] = rng.standard_normal(x2[length:, n].shape) * 100
    results = []
    for inp in (x, x2):
        y, state, cache = layer.forward(inp, lengths=c["lengths"])
        dx, _, grads = layer.backward(cache, dy)
        results.append((y, states(state), dx, grads))
    (y, s, dx, g), (y2, s2, dx2, g2) = results
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(dx, dx2)
    for a, b in zip(s, s2):
        np.testing.assert_array_equal(a, b)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k])
    for n, length in enumerate(c["lengths"]):
        assert not np.any(y[length:, n]) and not np.any(dx[length:, n])
