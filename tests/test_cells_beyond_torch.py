"""Every layer feature on the cells beyond ``torch.nn``: the same guarantees as the three cells.

Each cell of :data:`CELLS` (a layer constructor and the ``SequenceModel`` options that
make it) gets: recomputation (``checkpoint=``) equal to the kept cache, inference
without a cache equal to forward, ``apply`` under torch autograd and ``jax.grad``/``jax.jit``
equal to ``backward``, state dicts both ways, a ``SequenceModel`` trained by ``fit`` and
saved to and restored from a checkpoint.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

T, N, IN, H = 6, 3, 2, 4
LENGTHS = [6, 2, 4]

#: Each cell beyond torch.nn: (layer class, its options, the SequenceModel ``cell`` name).
CELLS = {
    "gru_reset_before": (xrnn.GRU, {"reset_after": False}, "gru"),
    "lstm_peephole": (xrnn.LSTM, {"peepholes": True}, "lstm"),
    "indrnn_tanh": (xrnn.IndRNN, {}, "indrnn"),
    "indrnn_relu": (xrnn.IndRNN, {"nonlinearity": "relu"}, "indrnn"),
    "layernorm_lstm": (xrnn.LayerNormLSTM, {}, "layernorm_lstm"),
    "layernorm_gru": (xrnn.LayerNormGRU, {}, "layernorm_gru"),
}


def _layer(cell, xp, dtype="float64", **kwargs):
    cls, options, _ = CELLS[cell]
    return cls(IN, H, xp=xp, dtype=dtype, seed=0, **options, **kwargs)


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _data(xp, dtype="float64"):
    rng = np.random.default_rng(1)
    return asarray(xp, rng.standard_normal((T, N, IN)), dtype), rng.standard_normal((T, N, 2 * H))


@pytest.mark.parametrize("cell", list(CELLS))
def test_recomputation_gives_the_gradients_of_the_kept_cache(cell):
    # the segments are the engine's, around any Ops (JAX's too: tests/test_checkpointing.py)
    layer = _layer(cell, "numpy", num_layers=2, bidirectional=True)
    xp = layer.xp
    x, dy = _data(xp)
    dy = asarray(xp, dy, "float64")
    results = []
    for checkpoint in (None, 2, "sqrt"):
        y, state, cache = layer.forward(x, lengths=LENGTHS, checkpoint=checkpoint)
        results.append((y, *layer.backward(cache, dy, state)))
    for y, dx, dstate, grads in results[1:]:
        assert_close(y, results[0][0], xp=xp)
        assert_close(dx, results[0][1], xp=xp)
        for got, expected in zip(_parts(dstate), _parts(results[0][2]), strict=True):
            assert_close(got, expected, xp=xp)
        for key, value in grads.items():
            assert_close(value, results[0][3][key], xp=xp)


@pytest.mark.parametrize("cell", list(CELLS))
def test_inference_without_a_cache_is_the_forward_pass(cell, xp):
    layer = _layer(cell, xp, bidirectional=True)
    x, _ = _data(xp)
    y, state, cache = layer.forward(x, lengths=LENGTHS, need_cache=False)
    y_ref, state_ref, _ = layer.forward(x, lengths=LENGTHS)
    assert cache is None
    assert_close(y, y_ref, xp=xp)
    for got, expected in zip(_parts(state), _parts(state_ref), strict=True):
        assert_close(got, expected, xp=xp)


@pytest.mark.parametrize("cell", list(CELLS))
def test_torch_autograd_through_apply_is_the_layers_backward(cell):
    torch = pytest.importorskip("torch")
    layer = _layer(cell, "numpy", bidirectional=True)
    x, dy = _data(np)
    y, state, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, grads = layer.backward(cache, dy[:, :, : 2 * H])
    params = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    x_t = torch.tensor(x, requires_grad=True)
    y_t, _ = layer.apply(params, x_t, lengths=LENGTHS)
    (y_t * torch.tensor(dy)).sum().backward()
    assert_close(y_t.detach().numpy(), y)
    assert_close(x_t.grad.numpy(), dx)
    for key, value in grads.items():
        assert_close(params[key].grad.numpy(), value)


@pytest.mark.parametrize("cell", list(CELLS))
def test_jax_grad_and_jit_of_apply_are_the_layers_backward_and_forward(cell):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    layer = _layer(cell, "jax", bidirectional=True)
    x, dy = _data(jnp)
    y, _, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, grads = layer.backward(cache, jnp.asarray(dy))

    def loss(p, x):
        return jnp.sum(layer.apply(p, x, lengths=LENGTHS)[0] * dy)

    g_params, g_x = jax.grad(loss, argnums=(0, 1))(layer.params, x)
    assert_close(g_x, dx)
    for key, value in grads.items():
        assert_close(g_params[key], value)
    assert_close(jax.jit(lambda p, x: layer.apply(p, x, lengths=LENGTHS)[0])(layer.params, x), y)


@pytest.mark.parametrize("cell", list(CELLS))
def test_state_dict_round_trip_gives_the_same_layer(cell):
    cls, options, _ = CELLS[cell]
    layer = _layer(cell, "numpy", num_layers=2, bidirectional=True)
    # what the keys do not say (reset_after) is given; what they say (peepholes) is read
    given = {k: v for k, v in options.items() if k in inspect.signature(cls.from_state_dict).parameters}
    again = cls.from_state_dict(layer.state_dict(), **given)
    assert again._cell is layer._cell
    x, _ = _data(np)
    assert_close(again.forward(x)[0], layer.forward(x)[0])


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_sequence_model_trains_by_name_and_survives_a_checkpoint(cell, tmp_path):
    _, options, name = CELLS[cell]
    model = xrnn.SequenceModel(name, IN, H, 2, xp="numpy", dtype="float64", seed=2, **options)
    x, _ = _data(np)
    targets = np.sin(np.cumsum(x, axis=0))
    before = model.forward(x)[0]
    history = xrnn.fit(model, xrnn.Adam(0.01), x, targets, loss="mse", epochs=2, batch_size=3, verbose=False)
    assert len(history.loss) == 2 and np.abs(model.forward(x)[0] - before).max() > 0
    xrnn.save_checkpoint(tmp_path / "model.npz", model)
    restored = xrnn.load_checkpoint(tmp_path / "model.npz").model
    assert restored.rnn._cell is model.rnn._cell
    assert_close(to_numpy(restored.forward(x)[0]), model.forward(x)[0])
