"""Optimisers and clipping: steps against torch.optim and hand-computed values, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
PARAMS = {"w": RNG.standard_normal((3, 2)), "b": RNG.standard_normal((3,))}
GRADS = [{k: RNG.standard_normal(v.shape) for k, v in PARAMS.items()} for _ in range(4)]


def on(xp, dtype, arrays):
    return {k: asarray(xp, v, dtype) for k, v in arrays.items()}


def run_torch(make, grads=GRADS):
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in PARAMS.items()}
    opt = make(list(tensors.values()))
    for g in grads:
        for k, t in tensors.items():
            t.grad = torch.from_numpy(g[k])
        opt.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}


def run_xrnn(opt, xp, dtype, grads=GRADS):
    params = on(xp, dtype, PARAMS)
    for g in grads:
        params = opt.step(params, on(xp, dtype, g))
    return params


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch_over_several_steps(xp, dtype, momentum):
    expected = run_torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=momentum))
    got = run_xrnn(xrnn.SGD(0.1, momentum=momentum), xp, dtype)
    for k in PARAMS:
        assert_close(got[k], expected[k], xp=xp, dtype=dtype)


def test_adam_matches_torch_over_several_steps(xp, dtype):
    expected = run_torch(lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6))
    got = run_xrnn(xrnn.Adam(0.01, betas=(0.8, 0.99), eps=1e-6), xp, dtype)
    for k in PARAMS:
        assert_close(got[k], expected[k], xp=xp, dtype=dtype)


def test_sgd_momentum_by_hand():
    opt = xrnn.SGD(0.5, momentum=0.9)
    p = opt.step({"w": np.array([1.0])}, {"w": np.array([2.0])})  # v = 2, p = 1 - 0.5 * 2
    assert p["w"][0] == pytest.approx(0.0)
    p = opt.step(p, {"w": np.array([1.0])})  # v = 0.9 * 2 + 1 = 2.8, p = 0 - 0.5 * 2.8
    assert p["w"][0] == pytest.approx(-1.4)


def test_adam_by_hand_with_eps_outside_the_square_root():
    opt = xrnn.Adam(0.1, betas=(0.5, 0.75), eps=0.5)
    # step 1: m = 0.5*4 = 2, v = 0.25*16 = 4, m_hat = 4, v_hat = 16: p = 1 - 0.1 * 4 / (4 + 0.5)
    p = opt.step({"w": np.array([1.0])}, {"w": np.array([4.0])})
    first = 1 - 0.1 * 4 / (4 + 0.5)
    assert p["w"][0] == pytest.approx(first)
    # step 2, g = -2: m = 0.5*2 - 1 = 0, so the parameter stays where it is
    p = opt.step(p, {"w": np.array([-2.0])})
    assert p["w"][0] == pytest.approx(first)
    # step 3, g = 1: m = 0.5, v = 0.75*(0.75*4 + 0.25*4) + 0.25 = 3.25
    p = opt.step(p, {"w": np.array([1.0])})
    m_hat, v_hat = 0.5 / (1 - 0.5**3), 3.25 / (1 - 0.75**3)
    assert p["w"][0] == pytest.approx(first - 0.1 * m_hat / (math.sqrt(v_hat) + 0.5))
    assert opt.state["step"] == 3


@pytest.mark.parametrize(
    "make", [lambda: xrnn.SGD(0.1, momentum=0.9), lambda: xrnn.Adam(0.1)], ids=["sgd", "adam"]
)
def test_steps_return_new_arrays_and_leave_their_inputs_unchanged(make):
    params = {k: v.copy() for k, v in PARAMS.items()}
    grads = {k: v.copy() for k, v in GRADS[0].items()}
    opt = make()
    new = opt.step(params, grads)
    opt.step(new, grads)
    assert all(np.array_equal(params[k], PARAMS[k]) and np.array_equal(grads[k], GRADS[0][k]) for k in PARAMS)
    assert all(new[k] is not params[k] for k in PARAMS)


@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clipped", "unchanged"])
def test_clip_grad_norm_matches_torch(xp, dtype, max_norm):
    tensors = [torch.tensor(v, requires_grad=True) for v in PARAMS.values()]
    for t, g in zip(tensors, GRADS[0].values()):
        t.grad = torch.from_numpy(g.copy())
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    clipped, norm = xrnn.clip_grad_norm(on(xp, dtype, GRADS[0]), max_norm)
    assert array_namespace(norm) is xp
    assert float(norm) == pytest.approx(float(expected_norm), rel=1e-6)
    for key, t in zip(PARAMS, tensors):
        assert_close(clipped[key], t.grad.numpy(), xp=xp, dtype=dtype)


def test_clipped_gradients_have_the_largest_allowed_norm():
    clipped, norm = xrnn.clip_grad_norm(GRADS[0], 1.0)
    total = math.sqrt(sum(float(np.sum(g * g)) for g in clipped.values()))
    assert float(norm) > 1 and total == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_state_arrays_restore_the_optimiser_exactly(xp, name):
    make = {"sgd": lambda: xrnn.SGD(0.1, momentum=0.9), "adam": lambda: xrnn.Adam(0.1)}[name]
    first = make()
    params = run_xrnn(first, xp, "float64", GRADS[:2])
    second = make()
    second.load_state(first.state["step"], first.state_arrays())
    a = first.step(params, on(xp, "float64", GRADS[2]))
    b = second.step(params, on(xp, "float64", GRADS[2]))
    for k in PARAMS:
        assert np.array_equal(to_numpy(a[k]), to_numpy(b[k]))


CASES = {
    "lr": (lambda: xrnn.SGD(0.0), ValueError, "lr must be a positive finite number, got 0.0"),
    "momentum": (
        lambda: xrnn.SGD(0.1, momentum=1.0),
        ValueError,
        r"momentum must be a number in \[0, 1\), got 1.0",
    ),
    "betas": (lambda: xrnn.Adam(betas=(0.9,)), TypeError, r"betas must be a pair \(b1, b2\)"),
    "beta2": (lambda: xrnn.Adam(betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be a number in \[0, 1\)"),
    "eps": (lambda: xrnn.Adam(eps=-1.0), ValueError, "eps must be a positive finite number"),
    "keys": (
        lambda: xrnn.Adam().step(PARAMS, {"w": GRADS[0]["w"]}),
        ValueError,
        r"grads must have the keys of params \['b', 'w'\], got \['w'\]",
    ),
    "shapes": (
        lambda: xrnn.SGD(0.1).step(PARAMS, {"w": GRADS[0]["w"].T, "b": GRADS[0]["b"]}),
        ValueError,
        r"grads\['w'\] must have shape \(3, 2\) like params\['w'\], got shape \(2, 3\)",
    ),
    "namespaces": (
        lambda: xrnn.SGD(0.1).step(PARAMS, {k: torch.from_numpy(v) for k, v in GRADS[0].items()}),
        TypeError,
        r"params\['w'\] is numpy but grads\['w'\] is torch",
    ),
    "empty": (lambda: xrnn.clip_grad_norm({}, 1.0), ValueError, "grads must hold at least one array"),
    "max_norm": (
        lambda: xrnn.clip_grad_norm(GRADS[0], 0),
        ValueError,
        "max_norm must be a positive number, got 0",
    ),
    "not_a_dict": (
        lambda: xrnn.clip_grad_norm([1.0], 1.0),
        TypeError,
        "grads must be a dict of arrays, got list",
    ),
    "bad_state": (
        lambda: xrnn.Adam().load_state(1, {"velocity.w": PARAMS["w"]}),
        ValueError,
        "optimizer state has an unexpected entry 'velocity.w'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_error(case):
    call, error, pattern = CASES[case]
    with pytest.raises(error, match=pattern):
        call()
