"""``layer.apply`` in JAX programs: ``jax.grad`` runs xrnn's backward, ``jax.jit`` and ``jax.vmap`` trace it.

The oracle of every gradient is ``layer.backward`` of the same layer on NumPy (float64, to
1e-10). These tests are the JAX leg's: they run when JAX is installed and ``XRNN_BACKEND``
does not narrow the backends to another one.
"""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from conftest import BACKENDS
from helpers import assert_close, make_layer

if "jax" not in BACKENDS:
    pytest.skip("JAX is not installed or not among the backends under test", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

T, N, IN, H = 5, 3, 2, 4
LENGTHS = [5, 2, 1]

#: (num_layers, bidirectional, lengths): every value of each axis, each pair of values once.
CONFIGS = [(1, False, None), (1, True, LENGTHS), (2, False, LENGTHS), (2, True, None)]


def _case(kind: str, num_layers: int, bidirectional: bool, *, batch_first: bool = False):
    """A float64 NumPy layer, its parameters as JAX arrays, and NumPy inputs."""
    layer = make_layer(
        kind,
        input_size=IN,
        hidden_size=H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype="float64",
        xp="numpy",
        seed=1,
    )
    rng = np.random.default_rng(2)
    d = 2 if bidirectional else 1
    x = rng.standard_normal((N, T, IN) if batch_first else (T, N, IN))
    dy = rng.standard_normal((N, T, d * H) if batch_first else (T, N, d * H))
    states = tuple(
        rng.standard_normal((num_layers * d, N, H)) for _ in range(2 if isinstance(layer, xrnn.LSTM) else 1)
    )
    return layer, {k: jnp.asarray(v) for k, v in layer.params.items()}, x, dy, states


def _state(states):
    return states if len(states) == 2 else states[0]


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _loss(layer, dy, dstate, lengths):
    """``sum(y * dy) + sum(state * dstate)``: its gradient is ``layer.backward(cache, dy, dstate)``."""

    def loss(params, x, state):
        y, out = layer.apply(params, x, state, lengths)
        return jnp.sum(y * dy) + sum(jnp.sum(a * b) for a, b in zip(_parts(out), dstate))

    return loss


@pytest.mark.parametrize(("num_layers", "bidirectional", "lengths"), CONFIGS)
def test_jax_grad_of_apply_is_the_layers_backward(kind, num_layers, bidirectional, lengths):
    layer, params, x, dy, states = _case(kind, num_layers, bidirectional)
    dstate = tuple(0.5 * s for s in states)  # any upstream gradient of the final state
    _, _, cache = layer.forward(x, _state(states), lengths)
    dx, dstate0, grads = layer.backward(cache, dy, _state(dstate))
    loss = _loss(layer, jnp.asarray(dy), tuple(map(jnp.asarray, dstate)), lengths)
    g_params, g_x, g_state = jax.grad(loss, argnums=(0, 1, 2))(
        params, jnp.asarray(x), _state(tuple(map(jnp.asarray, states)))
    )
    assert_close(g_x, dx, xp=jnp, dtype="float64")
    for got, expected in zip(_parts(g_state), _parts(dstate0), strict=True):
        assert_close(got, expected, xp=jnp, dtype="float64")
    assert set(g_params) == set(grads)
    for key, expected in grads.items():
        assert_close(g_params[key], expected, xp=jnp, dtype="float64")


def test_jax_grad_runs_xrnns_backward_not_a_trace_of_the_loop(monkeypatch):
    from xrnn.backends.jax import JaxOps

    layer, params, x, _, _ = _case("gru", 1, False)
    calls = []
    backward = JaxOps.backward
    monkeypatch.setattr(JaxOps, "backward", lambda self, *a: calls.append(1) or backward(self, *a))
    jax.grad(lambda p: jnp.sum(layer.apply(p, jnp.asarray(x))[0]))(params)
    assert len(calls) == 1


def test_jax_grad_follows_batch_first():
    layer, params, x, dy, _ = _case("lstm", 1, True, batch_first=True)
    _, _, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, grads = layer.backward(cache, dy)
    loss = _loss(layer, jnp.asarray(dy), (), LENGTHS)
    g_params, g_x = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x), None)
    assert_close(g_x, dx, dtype="float64")
    assert_close(g_params["weight_hh_l0_reverse"], grads["weight_hh_l0_reverse"], dtype="float64")


@pytest.mark.parametrize("checkpoint", [2, "sqrt"])
def test_jax_grad_with_checkpoint_is_the_gradient_without(checkpoint):
    layer, params, x, dy, _ = _case("lstm", 2, True)
    x, dy = jnp.asarray(x), jnp.asarray(dy)

    def loss(params, checkpoint):
        return jnp.sum(layer.apply(params, x, lengths=LENGTHS, checkpoint=checkpoint)[0] * dy)

    with_checkpoint = jax.jit(jax.grad(loss), static_argnums=1)(params, checkpoint)
    without = jax.grad(loss)(params, None)
    for key, expected in without.items():
        assert_close(with_checkpoint[key], expected, dtype="float64")


@pytest.mark.parametrize("kind", ["rnn_relu", "lstm", "gru"])
def test_jit_of_apply_equals_eager(kind):
    layer, params, x, _, states = _case(kind, 2, True)
    x, state = jnp.asarray(x), _state(tuple(map(jnp.asarray, states)))
    eager = layer.apply(params, x, state, LENGTHS)
    jitted = jax.jit(layer.apply)(params, x, state, jnp.asarray(LENGTHS))
    for got, expected in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        assert_close(got, expected, xp=jnp, dtype="float64")


def test_a_layer_made_again_with_the_same_configuration_reuses_the_compiled_apply():
    from xrnn.nn.apply_jax import _compiled

    x = jnp.asarray(np.random.default_rng(0).standard_normal((T, N, IN)))
    sizes = []
    for seed in range(3):  # each layer has its own parameters and its own dropout generator
        layer = xrnn.GRU(IN, 7, xp="jax", dtype="float64", seed=seed)
        y, _ = layer.apply(layer.params, x)
        assert_close(y, layer.forward(x)[0], xp=jnp, dtype="float64")
        sizes.append(_compiled._cache_size())
    assert sizes[1] == sizes[2] == sizes[0]


def test_jit_clips_traced_lengths_to_the_sequence():
    layer, params, x, _, _ = _case("gru", 1, True)
    x = jnp.asarray(x)
    y, h = jax.jit(layer.apply)(params, x, None, jnp.asarray([9, 0, 2]))  # no values to check in jit
    y_ref, h_ref = layer.apply(params, x, None, [T, 1, 2])
    assert_close(y[:, [0, 2]], y_ref[:, [0, 2]], dtype="float64")
    assert_close(h[:, [0, 2]], h_ref[:, [0, 2]], dtype="float64")
    assert not np.any(np.asarray(y[:, 1])) and not np.any(np.asarray(h[:, 1]))  # 0 steps: zeros


def test_vmap_of_apply_maps_over_a_batch_of_inputs():
    layer, params, x, _, _ = _case("lstm", 1, True)
    xs = jnp.stack([jnp.asarray(x), -2.0 * jnp.asarray(x)])
    ys, (hs, _) = jax.vmap(lambda x: layer.apply(params, x))(xs)
    y1, (h1, _) = layer.apply(params, xs[1])
    assert_close(ys[1], y1, dtype="float64")
    assert_close(hs[1], h1, dtype="float64")
    grads = jax.vmap(jax.grad(lambda p, x: jnp.sum(layer.apply(p, x)[0] ** 2)), in_axes=(None, 0))(params, xs)
    one = jax.grad(lambda p: jnp.sum(layer.apply(p, xs[1])[0] ** 2))(params)
    for key, expected in one.items():
        assert_close(grads[key][1], expected, dtype="float64")


def test_under_jit_check_finite_says_it_needs_values():
    layer = make_layer("rnn_tanh", IN, H, xp="jax", dtype="float64")
    x = jnp.ones((T, N, IN))
    with pytest.raises(TypeError, match=r"check_finite=True needs the values of x.*JAX tracer"):
        jax.jit(lambda x: layer.forward(x, check_finite=True)[0])(x)


def test_forward_runs_under_jit_where_tracers_meet_the_device_check():
    layer = make_layer("lstm", IN, H, xp="jax", dtype="float64", seed=3)
    x = jnp.asarray(np.random.default_rng(4).standard_normal((T, N, IN)))
    y_jit = jax.jit(lambda x: layer.forward(x)[0])(x)  # x a tracer, the parameters on a device
    assert_close(y_jit, layer.forward(x)[0], xp=jnp, dtype="float64")


def test_a_jitted_training_step_compiles_once_and_lowers_the_loss():
    rng = np.random.default_rng(5)
    model = xrnn.SequenceModel("lstm", 2, 16, 1, xp="jax", dtype="float32", seed=0)
    x = jnp.asarray(rng.standard_normal((12, 8, 2)), dtype=jnp.float32)
    target = jnp.cumsum(x[..., :1], axis=0) / 4.0  # a running sum: needs the recurrence
    traces = []

    def loss(params, x, target):
        traces.append(1)
        z, _ = model.apply(params, x)
        return jnp.mean((z - target) ** 2)

    @jax.jit
    def step(params, moments, t, x, target):  # forward, loss, gradient and Adam, one program
        value, grads = jax.value_and_grad(loss)(params, x, target)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, moments[0], grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, moments[1], grads)
        params = jax.tree.map(
            lambda p, m, v: p - 0.01 * (m / (1 - 0.9**t)) / (jnp.sqrt(v / (1 - 0.999**t)) + 1e-8),
            params,
            m,
            v,
        )
        return params, (m, v), value

    params = model.params
    moments = (jax.tree.map(jnp.zeros_like, params),) * 2
    losses = []
    for t in range(1, 61):
        params, moments, value = step(params, moments, t, x, target)
        losses.append(float(value))
    assert len(traces) == 1
    assert losses[-1] < 0.3 * losses[0]


def test_sequence_model_apply_equals_its_forward():
    model = xrnn.SequenceModel("gru", IN, H, 3, num_layers=2, xp="jax", dtype="float64", seed=6)
    x = jnp.asarray(np.random.default_rng(7).standard_normal((T, N, IN)))
    z, h = model.apply(model.params, x)
    z_ref, h_ref, _ = model.forward(x)
    assert_close(z, z_ref, xp=jnp, dtype="float64")
    assert_close(h, h_ref, xp=jnp, dtype="float64")


def test_jax_grad_through_a_projected_lstm_without_bias_is_its_backward():
    layer = xrnn.LSTM(IN, H, bias=False, proj_size=2, num_layers=2, xp="numpy", dtype="float64", seed=9)
    rng = np.random.default_rng(10)
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, 2))
    _, _, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, grads = layer.backward(cache, dy)
    params = {k: jnp.asarray(v) for k, v in layer.params.items()}
    loss = _loss(layer, jnp.asarray(dy), (), LENGTHS)
    g_params, g_x = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x), None)
    assert_close(g_x, dx, dtype="float64")
    assert set(g_params) == set(grads) and "weight_hr_l1" in grads
    for key, expected in grads.items():
        assert_close(g_params[key], expected, dtype="float64")


def test_sequence_model_apply_with_the_head_on_the_last_state_is_its_forward():
    model = xrnn.SequenceModel("lstm", IN, H, 3, head="last", xp="jax", dtype="float64", seed=11)
    x = jnp.asarray(np.random.default_rng(12).standard_normal((T, N, IN)))
    z, _ = jax.jit(model.apply)(model.params, x)
    assert_close(z, model.forward(x)[0], xp=jnp, dtype="float64")
