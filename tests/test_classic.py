"""The classic API (docs/classic.rst): formulas, shapes, caches, keys and the short-``da`` rule.

Oracles: the formulas written out here in NumPy for the forward pass, torch autograd
of the same formulas for every gradient, and central finite differences in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import asarray, assert_close, numeric_gradient, to_numpy
from xrnn import classic

N_X, N_A, N_Y, M, T_X = 3, 5, 2, 4, 6
GATES = ("f", "i", "c", "o")


def rnn_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "Wax": rng.standard_normal((N_A, N_X)) * 0.6,
        "Waa": rng.standard_normal((N_A, N_A)) * 0.6,
        "Wya": rng.standard_normal((N_Y, N_A)),
        "ba": rng.standard_normal((N_A, 1)),
        "by": rng.standard_normal((N_Y, 1)),
    }


def lstm_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = {f"W{g}": rng.standard_normal((N_A, N_A + N_X)) * 0.6 for g in GATES}
    p.update({f"b{g}": rng.standard_normal((N_A, 1)) for g in GATES})
    p.update({"Wy": rng.standard_normal((N_Y, N_A)), "by": rng.standard_normal((N_Y, 1))})
    return p


def on(xp, dtype, d: dict[str, np.ndarray]) -> dict:
    return {k: asarray(xp, v, dtype) for k, v in d.items()}


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_softmax(z):
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


def ref_rnn_cell(xt, a_prev, p):
    a_next = np.tanh(p["Waa"] @ a_prev + p["Wax"] @ xt + p["ba"])
    return a_next, np_softmax(p["Wya"] @ a_next + p["by"])


def ref_lstm_cell(xt, a_prev, c_prev, p):
    concat = np.concatenate([a_prev, xt], axis=0)
    ft, it, ot = (np_sigmoid(p[f"W{g}"] @ concat + p[f"b{g}"]) for g in "fio")
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    a_next = ot * np.tanh(c_next)
    return a_next, c_next, np_softmax(p["Wy"] @ a_next + p["by"]), (ft, it, cct, ot)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


# ---------------------------------------------------------------- forward maths


def test_rnn_cell_forward_follows_the_formulas(xp, dtype, rng):
    p, xt, a_prev = rnn_params(rng), rng.standard_normal((N_X, M)), rng.standard_normal((N_A, M))
    a_next, yt_pred, cache = classic.rnn_cell_forward(
        asarray(xp, xt, dtype), asarray(xp, a_prev, dtype), on(xp, dtype, p)
    )
    want_a, want_y = ref_rnn_cell(xt, a_prev, p)
    assert_close(a_next, want_a, xp=xp, dtype=dtype)
    assert_close(yt_pred, want_y, xp=xp, dtype=dtype)


def test_rnn_forward_equals_stepping_the_cell(xp, dtype, rng):
    p, x, a0 = (
        on(xp, dtype, rnn_params(rng)),
        asarray(xp, rng.standard_normal((N_X, M, T_X)), dtype),
        asarray(xp, rng.standard_normal((N_A, M)), dtype),
    )
    a, y_pred, _ = classic.rnn_forward(x, a0, p)
    a_prev = a0
    for t in range(T_X):
        a_prev, yt, _ = classic.rnn_cell_forward(x[:, :, t], a_prev, p)
        assert_close(a[:, :, t], to_numpy(a_prev), xp=xp, dtype=dtype)
        assert_close(y_pred[:, :, t], to_numpy(yt), xp=xp, dtype=dtype)


def test_lstm_cell_forward_follows_the_formulas(xp, dtype, rng):
    p = lstm_params(rng)
    xt, a_prev, c_prev = (rng.standard_normal(s) for s in ((N_X, M), (N_A, M), (N_A, M)))
    a_next, c_next, yt, cache = classic.lstm_cell_forward(
        asarray(xp, xt, dtype), asarray(xp, a_prev, dtype), asarray(xp, c_prev, dtype), on(xp, dtype, p)
    )
    want_a, want_c, want_y, (ft, it, cct, ot) = ref_lstm_cell(xt, a_prev, c_prev, p)
    for got, want in [
        (a_next, want_a),
        (c_next, want_c),
        (yt, want_y),
        (cache[4], ft),
        (cache[5], it),
        (cache[6], cct),
        (cache[7], ot),
    ]:
        assert_close(got, want, xp=xp, dtype=dtype)


def test_lstm_forward_equals_stepping_the_cell_from_a_zero_cell_state(xp, dtype, rng):
    p = on(xp, dtype, lstm_params(rng))
    x, a0 = (
        asarray(xp, rng.standard_normal((N_X, M, T_X)), dtype),
        asarray(xp, rng.standard_normal((N_A, M)), dtype),
    )
    a, y, c, _ = classic.lstm_forward(x, a0, p)
    a_prev, c_prev = a0, xp.zeros_like(a0)
    for t in range(T_X):
        a_prev, c_prev, yt, _ = classic.lstm_cell_forward(x[:, :, t], a_prev, c_prev, p)
        for got, want in [(a[:, :, t], a_prev), (c[:, :, t], c_prev), (y[:, :, t], yt)]:
            assert_close(got, to_numpy(want), xp=xp, dtype=dtype)


# ---------------------------------------------------------------- shapes, caches, keys


def test_rnn_shapes_and_caches(xp, rng):
    p = on(xp, "float64", rnn_params(rng))
    x, a0 = (
        asarray(xp, rng.standard_normal((N_X, M, T_X)), "float64"),
        asarray(xp, rng.standard_normal((N_A, M)), "float64"),
    )
    a, y_pred, caches = classic.rnn_forward(x, a0, p)
    assert a.shape == (N_A, M, T_X) and y_pred.shape == (N_Y, M, T_X)
    cells, x_cached = caches
    assert x_cached is x and len(cells) == T_X
    for t, (a_next, a_prev, xt, params) in enumerate(cells):
        assert params is p
        assert_close(a_next, to_numpy(a[:, :, t]))
        assert_close(a_prev, to_numpy(a0 if t == 0 else a[:, :, t - 1]))
        assert_close(xt, to_numpy(x[:, :, t]))
    a_next, yt, cache = classic.rnn_cell_forward(x[:, :, 0], a0, p)
    assert len(cache) == 4 and cache[0] is a_next and cache[1] is a0 and cache[3] is p


def test_lstm_shapes_and_caches(xp, rng):
    p = on(xp, "float64", lstm_params(rng))
    x, a0 = (
        asarray(xp, rng.standard_normal((N_X, M, T_X)), "float64"),
        asarray(xp, rng.standard_normal((N_A, M)), "float64"),
    )
    a, y, c, caches = classic.lstm_forward(x, a0, p)
    assert a.shape == c.shape == (N_A, M, T_X) and y.shape == (N_Y, M, T_X)
    cells, x_cached = caches
    assert x_cached is x and len(cells) == T_X
    for t, cache in enumerate(cells):
        assert len(cache) == 10 and cache[9] is p
        a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, _ = cache
        assert all(g.shape == (N_A, M) for g in (ft, it, cct, ot))
        assert_close(a_next, to_numpy(a[:, :, t]))
        assert_close(c_next, to_numpy(c[:, :, t]))
        assert_close(a_prev, to_numpy(a0 if t == 0 else a[:, :, t - 1]))
        assert_close(c_prev, np.zeros((N_A, M)) if t == 0 else to_numpy(c[:, :, t - 1]))
        assert_close(xt, to_numpy(x[:, :, t]))


def test_backward_functions_return_exactly_the_classic_keys_and_shapes(rng):
    x, a0 = rng.standard_normal((N_X, M, T_X)), rng.standard_normal((N_A, M))
    _, _, caches = classic.rnn_forward(x, a0, rnn_params(rng))
    g = classic.rnn_cell_backward(rng.standard_normal((N_A, M)), caches[0][2])
    assert {k: v.shape for k, v in g.items()} == {
        "dxt": (N_X, M),
        "da_prev": (N_A, M),
        "dWax": (N_A, N_X),
        "dWaa": (N_A, N_A),
        "dba": (N_A, 1),
    }
    g = classic.rnn_backward(rng.standard_normal((N_A, M, T_X)), caches)
    assert {k: v.shape for k, v in g.items()} == {
        "dx": (N_X, M, T_X),
        "da0": (N_A, M),
        "dWax": (N_A, N_X),
        "dWaa": (N_A, N_A),
        "dba": (N_A, 1),
    }
    _, _, _, caches = classic.lstm_forward(x, a0, lstm_params(rng))
    gates = {f"dW{g}": (N_A, N_A + N_X) for g in GATES} | {f"db{g}": (N_A, 1) for g in GATES}
    g = classic.lstm_cell_backward(rng.standard_normal((N_A, M)), rng.standard_normal((N_A, M)), caches[0][1])
    assert {k: v.shape for k, v in g.items()} == {
        "dxt": (N_X, M),
        "da_prev": (N_A, M),
        "dc_prev": (N_A, M),
    } | gates
    g = classic.lstm_backward(rng.standard_normal((N_A, M, T_X)), caches)
    assert {k: v.shape for k, v in g.items()} == {"dx": (N_X, M, T_X), "da0": (N_A, M)} | gates


def test_star_import_gives_the_ten_names():
    namespace: dict = {}
    exec("from xrnn.classic import *", namespace)
    assert set(namespace) - {"__builtins__"} == {
        "rnn_cell_forward",
        "rnn_forward",
        "lstm_cell_forward",
        "lstm_forward",
        "rnn_cell_backward",
        "rnn_backward",
        "lstm_cell_backward",
        "lstm_backward",
        "softmax",
        "sigmoid",
    }


# ---------------------------------------------------------------- gradients: torch oracle

torch = pytest.importorskip("torch")


def torch_rnn(x, a0, p):
    a, out = a0, []
    for t in range(x.shape[2]):
        a = torch.tanh(p["Waa"] @ a + p["Wax"] @ x[:, :, t] + p["ba"])
        out.append(a)
    return torch.stack(out, dim=2), None


def torch_lstm(x, a0, p, c0=None):
    a, c, out = a0, torch.zeros_like(a0) if c0 is None else c0, []
    for t in range(x.shape[2]):
        concat = torch.cat([a, x[:, :, t]], dim=0)
        ft, it, ot = (torch.sigmoid(p[f"W{g}"] @ concat + p[f"b{g}"]) for g in "fio")
        c = ft * c + it * torch.tanh(p["Wc"] @ concat + p["bc"])
        a = ot * torch.tanh(c)
        out.append(a)
    return torch.stack(out, dim=2), c


def torch_grads(fn, x, a0, p, da, c0=None, dc=None):
    leaves = {"x": x, "a0": a0, "c0": c0, **p}
    tl = {k: torch.tensor(v, requires_grad=True) for k, v in leaves.items() if v is not None}
    params = {k: tl[k] for k in p}
    a, c = fn(tl["x"], tl["a0"], params, tl["c0"]) if c0 is not None else fn(tl["x"], tl["a0"], params)
    loss = (a * torch.tensor(da)).sum() + (0 if dc is None else (c * torch.tensor(dc)).sum())
    loss.backward()
    return {k: v.grad.numpy() for k, v in tl.items() if v.grad is not None}


def test_rnn_backward_matches_torch_autograd(xp, dtype, rng):
    p, x, a0, da = (
        rnn_params(rng),
        rng.standard_normal((N_X, M, T_X)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M, T_X)),
    )
    want = torch_grads(torch_rnn, x, a0, p, da)
    _, _, caches = classic.rnn_forward(asarray(xp, x, dtype), asarray(xp, a0, dtype), on(xp, dtype, p))
    g = classic.rnn_backward(asarray(xp, da, dtype), caches)
    for key, ref in [("dx", "x"), ("da0", "a0"), ("dWax", "Wax"), ("dWaa", "Waa"), ("dba", "ba")]:
        assert_close(g[key], want[ref], xp=xp, dtype=dtype)


def test_lstm_backward_matches_torch_autograd(xp, dtype, rng):
    p, x, a0, da = (
        lstm_params(rng),
        rng.standard_normal((N_X, M, T_X)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M, T_X)),
    )
    want = torch_grads(torch_lstm, x, a0, p, da)
    _, _, _, caches = classic.lstm_forward(asarray(xp, x, dtype), asarray(xp, a0, dtype), on(xp, dtype, p))
    g = classic.lstm_backward(asarray(xp, da, dtype), caches)
    assert_close(g["dx"], want["x"], xp=xp, dtype=dtype)
    assert_close(g["da0"], want["a0"], xp=xp, dtype=dtype)
    for gate in GATES:
        assert_close(g[f"dW{gate}"], want[f"W{gate}"], xp=xp, dtype=dtype)
        assert_close(g[f"db{gate}"], want[f"b{gate}"], xp=xp, dtype=dtype)


def test_rnn_cell_backward_matches_torch_autograd(xp, dtype, rng):
    p, xt, a_prev, da = (
        rnn_params(rng),
        rng.standard_normal((N_X, M, 1)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M, 1)),
    )
    want = torch_grads(torch_rnn, xt, a_prev, p, da)
    _, _, cache = classic.rnn_cell_forward(
        asarray(xp, xt[:, :, 0], dtype), asarray(xp, a_prev, dtype), on(xp, dtype, p)
    )
    g = classic.rnn_cell_backward(asarray(xp, da[:, :, 0], dtype), cache)
    for key, ref in [("da_prev", "a0"), ("dWax", "Wax"), ("dWaa", "Waa"), ("dba", "ba")]:
        assert_close(g[key], want[ref], xp=xp, dtype=dtype)
    assert_close(g["dxt"], want["x"][:, :, 0], xp=xp, dtype=dtype)


def test_lstm_cell_backward_matches_torch_autograd(xp, dtype, rng):
    p = lstm_params(rng)
    xt, a_prev, c_prev = (
        rng.standard_normal((N_X, M, 1)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M)),
    )
    da, dc = rng.standard_normal((N_A, M, 1)), rng.standard_normal((N_A, M))
    want = torch_grads(torch_lstm, xt, a_prev, p, da, c0=c_prev, dc=dc)
    *_, cache = classic.lstm_cell_forward(
        asarray(xp, xt[:, :, 0], dtype),
        asarray(xp, a_prev, dtype),
        asarray(xp, c_prev, dtype),
        on(xp, dtype, p),
    )
    g = classic.lstm_cell_backward(asarray(xp, da[:, :, 0], dtype), asarray(xp, dc, dtype), cache)
    assert_close(g["dxt"], want["x"][:, :, 0], xp=xp, dtype=dtype)
    assert_close(g["da_prev"], want["a0"], xp=xp, dtype=dtype)
    assert_close(g["dc_prev"], want["c0"], xp=xp, dtype=dtype)
    for gate in GATES:
        assert_close(g[f"dW{gate}"], want[f"W{gate}"], xp=xp, dtype=dtype)
        assert_close(g[f"db{gate}"], want[f"b{gate}"], xp=xp, dtype=dtype)


# ---------------------------------------------------------------- the short-da rule


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("steps", [1, 3, T_X])
def test_short_da_is_the_gradient_of_a_loss_on_the_first_steps(xp, kind, steps, rng):
    params = rnn_params(rng) if kind == "rnn" else lstm_params(rng)
    x, a0, da = (
        rng.standard_normal((N_X, M, T_X)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M, steps)),
    )
    want = torch_grads(torch_rnn if kind == "rnn" else torch_lstm, x[:, :, :steps], a0, params, da)
    forward = classic.rnn_forward if kind == "rnn" else classic.lstm_forward
    backward = classic.rnn_backward if kind == "rnn" else classic.lstm_backward
    caches = forward(asarray(xp, x, "float64"), asarray(xp, a0, "float64"), on(xp, "float64", params))[-1]
    g = backward(asarray(xp, da, "float64"), caches)
    assert g["dx"].shape == (N_X, M, steps)
    assert_close(g["dx"], want["x"], xp=xp)
    assert_close(g["da0"], want["a0"], xp=xp)
    first_w = "dWax" if kind == "rnn" else "dWf"
    assert_close(g[first_w], want[first_w[1:]], xp=xp)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_da_longer_than_the_forward_pass_is_an_error(kind, rng):
    params = rnn_params(rng) if kind == "rnn" else lstm_params(rng)
    forward = classic.rnn_forward if kind == "rnn" else classic.lstm_forward
    backward = classic.rnn_backward if kind == "rnn" else classic.lstm_backward
    caches = forward(rng.standard_normal((N_X, M, T_X)), rng.standard_normal((N_A, M)), params)[-1]
    with pytest.raises(ValueError, match=r"da must have between 1 and T_x=6 steps .* got 7"):
        backward(rng.standard_normal((N_A, M, T_X + 1)), caches)


# ---------------------------------------------------------------- finite differences


def _fd_check(loss, leaves: dict[str, np.ndarray], analytic: dict[str, np.ndarray]) -> None:
    for name, grad in analytic.items():
        numeric = numeric_gradient(loss, leaves[name])
        err = np.max(np.abs(numeric - grad)) / max(np.max(np.abs(grad)), 1e-12)
        assert err < 1e-6, f"{name}: finite-difference relative error {err:.3g}"


def test_rnn_backward_agrees_with_finite_differences(rng):
    p, x, a0, da = (
        rnn_params(rng),
        rng.standard_normal((N_X, 2, 4)),
        rng.standard_normal((N_A, 2)),
        rng.standard_normal((N_A, 2, 4)),
    )
    g = classic.rnn_backward(da, classic.rnn_forward(x, a0, p)[2])
    leaves = {"x": x, "a0": a0, **p}
    _fd_check(
        lambda: float(np.sum(classic.rnn_forward(x, a0, p)[0] * da)),
        leaves,
        {"x": g["dx"], "a0": g["da0"], "Wax": g["dWax"], "Waa": g["dWaa"], "ba": g["dba"]},
    )


def test_rnn_cell_backward_agrees_with_finite_differences(rng):
    p, xt, a_prev, da = (
        rnn_params(rng),
        rng.standard_normal((N_X, 2)),
        rng.standard_normal((N_A, 2)),
        rng.standard_normal((N_A, 2)),
    )
    g = classic.rnn_cell_backward(da, classic.rnn_cell_forward(xt, a_prev, p)[2])
    leaves = {"xt": xt, "a_prev": a_prev, **p}
    _fd_check(
        lambda: float(np.sum(classic.rnn_cell_forward(xt, a_prev, p)[0] * da)),
        leaves,
        {"xt": g["dxt"], "a_prev": g["da_prev"], "Wax": g["dWax"], "Waa": g["dWaa"], "ba": g["dba"]},
    )


def test_lstm_backward_agrees_with_finite_differences(rng):
    p, x, a0, da = (
        lstm_params(rng),
        rng.standard_normal((N_X, 2, 4)),
        rng.standard_normal((N_A, 2)),
        rng.standard_normal((N_A, 2, 4)),
    )
    g = classic.lstm_backward(da, classic.lstm_forward(x, a0, p)[3])
    leaves = {"x": x, "a0": a0, **p}
    analytic = (
        {"x": g["dx"], "a0": g["da0"]}
        | {f"W{k}": g[f"dW{k}"] for k in GATES}
        | {f"b{k}": g[f"db{k}"] for k in GATES}
    )
    _fd_check(lambda: float(np.sum(classic.lstm_forward(x, a0, p)[0] * da)), leaves, analytic)


def test_lstm_cell_backward_agrees_with_finite_differences(rng):
    p = lstm_params(rng)
    xt, a_prev, c_prev, da, dc = (
        rng.standard_normal(s) for s in [(N_X, 2), (N_A, 2), (N_A, 2), (N_A, 2), (N_A, 2)]
    )
    g = classic.lstm_cell_backward(da, dc, classic.lstm_cell_forward(xt, a_prev, c_prev, p)[3])

    def loss():
        a_next, c_next, _, _ = classic.lstm_cell_forward(xt, a_prev, c_prev, p)
        return float(np.sum(a_next * da) + np.sum(c_next * dc))

    leaves = {"xt": xt, "a_prev": a_prev, "c_prev": c_prev, **p}
    analytic = {"xt": g["dxt"], "a_prev": g["da_prev"], "c_prev": g["dc_prev"]}
    analytic |= {f"W{k}": g[f"dW{k}"] for k in GATES} | {f"b{k}": g[f"db{k}"] for k in GATES}
    _fd_check(loss, leaves, analytic)


# ---------------------------------------------------------------- helpers and purity


def test_softmax_is_stable_per_column_and_sigmoid_does_not_overflow(xp, dtype):
    z = asarray(xp, np.array([[1000.0, -1000.0, 0.0], [999.0, -1001.0, 0.0]]), dtype)
    s = classic.softmax(z)
    e = np.exp([0.0, -1.0])
    assert_close(
        s, np.array([[e[0] / e.sum()] * 2 + [0.5], [e[1] / e.sum()] * 2 + [0.5]]), xp=xp, dtype=dtype
    )
    sig = classic.sigmoid(asarray(xp, np.array([-1e4, -50.0, 0.0, 50.0, 1e4]), dtype))
    tail = math.exp(-50.0) / (1.0 + math.exp(-50.0))
    assert_close(sig, np.array([0.0, tail, 0.5, 1.0, 1.0]), xp=xp, dtype=dtype)
    assert abs(float(to_numpy(sig)[1]) / tail - 1) < 1e-5, "the lower tail keeps its relative precision"


def test_classic_functions_leave_their_inputs_unchanged(rng):
    p, x, a0, da = (
        lstm_params(rng),
        rng.standard_normal((N_X, M, T_X)),
        rng.standard_normal((N_A, M)),
        rng.standard_normal((N_A, M, T_X)),
    )
    before = [v.copy() for v in (x, a0, da, *p.values())]
    classic.lstm_backward(da, classic.lstm_forward(x, a0, p)[3])
    q = rnn_params(rng)
    before_q = [v.copy() for v in q.values()]
    classic.rnn_backward(da, classic.rnn_forward(x, a0, q)[2])
    assert all(np.array_equal(b, a) for b, a in zip(before, (x, a0, da, *p.values())))
    assert all(np.array_equal(b, a) for b, a in zip(before_q, q.values()))
