"""Zoneout on LSTM and GRU: a torch loop with the same masks, finite differences, and the contract."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, numeric_gradient, to_numpy
from xrnn.nn.options import config_of

T, N, IN, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]

#: The layers under test, each with zoneout on every state part.
LAYERS = {
    "lstm": lambda **kw: xrnn.LSTM(IN, H, 2, bidirectional=True, zoneout=(0.3, 0.6), **kw),
    "gru": lambda **kw: xrnn.GRU(IN, H, 2, bidirectional=True, zoneout=0.4, **kw),
}
#: The LayerNorm layers take zoneout too (the generic loop with the masks).
LAYERNORM_LAYERS = {
    "layernorm_lstm": lambda **kw: xrnn.LayerNormLSTM(IN, H, 2, bidirectional=True, zoneout=(0.3, 0.6), **kw),
    "layernorm_gru": lambda **kw: xrnn.LayerNormGRU(IN, H, 2, bidirectional=True, zoneout=0.4, **kw),
}


def _cell(torch, kind, p, s, x_t, state):
    """One step of torch's LSTM or GRU from the equations, with xrnn's (torch's) parameters."""
    w_ih, w_hh = p[f"weight_ih_{s}"], p[f"weight_hh_{s}"]
    gx = w_ih @ x_t + p[f"bias_ih_{s}"]
    gh = w_hh @ state[0] + p[f"bias_hh_{s}"]
    if kind == "lstm":
        i, f, g, o = (gx + gh).reshape(4, H)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    r, z = torch.sigmoid(gx[: 2 * H] + gh[: 2 * H]).reshape(2, H)
    n = torch.tanh(gx[2 * H :] + r * gh[2 * H :])
    return ((1 - z) * n + z * state[0],)


def _reference(torch, kind, p, x, state0, masks, lengths):
    """``y`` and the final state with zoneout: ``s = m * s_prev + (1 - m) * s_new`` at every step.

    ``masks[idx][part]`` is ``(T, N, H)`` or ``(T, 1, 1)`` in the loop's time order (the reverse
    direction's step ``j`` of sequence ``n`` is its time ``lengths[n] - 1 - j``).
    """
    inp, finals = x, []
    for k in range(2):
        outs = []
        for d, suffix in enumerate(("", "_reverse")):
            idx, s = 2 * k + d, f"l{k}{suffix}"
            rows, last = [], []
            for n in range(x.shape[1]):
                state = tuple(part[idx, n] for part in state0)
                out = [torch.zeros(H, dtype=torch.float64)] * x.shape[0]
                order = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for j, t in enumerate(order):
                    new = _cell(torch, kind, p, s, inp[t, n], state)
                    m = [torch.tensor(np.array(to_numpy(a)[j, min(n, a.shape[1] - 1)])) for a in masks[idx]]
                    state = tuple(mj * old + (1 - mj) * nw for mj, old, nw in zip(m, state, new, strict=True))
                    out[t] = state[0]
                rows.append(torch.stack(out))
                last.append(state)
            outs.append(torch.stack(rows, dim=1))
            finals.append(last)
        inp = torch.cat(outs, dim=2)
    stacked = tuple(torch.stack([torch.stack([s[q] for s in f]) for f in finals]) for q in range(len(state0)))
    return inp, stacked


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_zoneout_is_a_torch_loop_with_the_same_masks(kind, training, xp):
    torch = pytest.importorskip("torch")
    dtype = "float64"
    layer = LAYERS[kind](xp=xp, dtype=dtype, seed=0)
    parts = 2 if kind == "lstm" else 1
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, 2 * H))
    state0, dstate = rng.standard_normal((parts, 4, N, H)), rng.standard_normal((parts, 4, N, H))

    def on(a):
        return asarray(xp, a, dtype)

    pack = tuple if kind == "lstm" else (lambda a: a[0])
    y, state, cache = layer.forward(on(x), pack([on(s) for s in state0]), lengths=LENGTHS, training=training)
    dx, dstate0, grads = layer.backward(cache, on(dy), pack([on(s) for s in dstate]))
    masks = [sc.zoneout for sc in cache.scans]
    if not training:  # the expectation: p itself at every step
        assert {float(to_numpy(m).max()) for m in masks[0]} == ({0.3, 0.6} if kind == "lstm" else {0.4})

    params = {
        k: torch.tensor(to_numpy(v), dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()
    }
    x_t, s0_t = (torch.tensor(a, requires_grad=True) for a in (x, state0))
    y_ref, state_ref = _reference(torch, kind, params, x_t, tuple(s0_t), masks, LENGTHS)
    y_ref = y_ref * torch.tensor(np.arange(T)[:, None] < np.array(LENGTHS)[None, :])[:, :, None]
    loss = (y_ref * torch.tensor(dy)).sum() + sum(
        (a * torch.tensor(b)).sum() for a, b in zip(state_ref, dstate)
    )
    loss.backward()
    assert_close(y, y_ref.detach().numpy(), xp=xp, dtype=dtype)
    states = state if isinstance(state, tuple) else (state,)
    for got, expected in zip(states, state_ref, strict=True):
        assert_close(got, expected.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(dx, x_t.grad.numpy(), xp=xp, dtype=dtype)
    dstates = dstate0 if isinstance(dstate0, tuple) else (dstate0,)
    for q, got in enumerate(dstates):
        assert_close(got, s0_t.grad.numpy()[q], xp=xp, dtype=dtype)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


@pytest.mark.parametrize("kind", list(LAYERS) + list(LAYERNORM_LAYERS))
def test_zoneout_gradients_agree_with_finite_differences(kind):
    layer = (LAYERS | LAYERNORM_LAYERS)[kind](xp="numpy", dtype="float64", seed=5)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, 2 * H))

    def run():
        layer.generator = np.random.default_rng(7)  # the same masks at every call
        return layer.forward(x, lengths=LENGTHS)

    def loss():
        return float(np.sum(run()[0] * dy))

    dx, _, grads = layer.backward(run()[2], dy)
    assert_close(dx, numeric_gradient(loss, x), tol=1e-6)
    for key in ("weight_hh_l0", "weight_ih_l1_reverse", "bias_hh_l0_reverse"):
        assert_close(grads[key], numeric_gradient(loss, layer.params[key]), tol=1e-6)


def test_masks_follow_the_mode_and_the_generator():
    layer = LAYERS["gru"](xp="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(2).standard_normal((T, N, IN))
    first, second = layer.forward(x)[0], layer.forward(x)[0]
    assert np.abs(first - second).max() > 0  # fresh masks every training pass
    layer.generator = np.random.default_rng(3)
    again = layer.forward(x)[0]
    layer.generator = np.random.default_rng(3)
    assert_close(layer.forward(x)[0], again, dtype="float64")
    expected = layer.forward(x, training=False)[0]
    layer.eval()
    assert_close(layer.forward(x)[0], expected, dtype="float64")
    masks = layer.forward(x)[2].scans[0].zoneout
    assert masks[0].shape == (T, 1, 1)


def test_zoneout_zero_is_the_plain_layer():
    plain = xrnn.LSTM(IN, H, xp="numpy", dtype="float64", seed=4)
    zoned = xrnn.LSTM(IN, H, zoneout=0.0, xp="numpy", dtype="float64", seed=4)
    x = np.random.default_rng(3).standard_normal((T, N, IN))
    assert zoned.forward(x)[2].scans[0].zoneout is None
    assert_close(zoned.forward(x)[0], plain.forward(x)[0], dtype="float64")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: xrnn.LSTM(IN, H, zoneout=1.0), r"zoneout must be a number in \[0, 1\).* got 1.0"),
        (lambda: xrnn.GRU(IN, H, zoneout=-0.1), r"zoneout must be a number in \[0, 1\).* got -0.1"),
        (lambda: xrnn.GRU(IN, H, zoneout=(0.1, 0.2)), r"or 1 of them .* got \(0.1, 0.2\)"),
        (lambda: xrnn.LSTM(IN, H, zoneout=(0.1, 1)), r"or 2 of them \(p_h, p_c\).* got \(0.1, 1\)"),
        (lambda: xrnn.LSTM(IN, H, zoneout="0.1"), r"zoneout must be a number .* got '0.1'"),
        (
            lambda: xrnn.LSTM(IN, H, proj_size=2, zoneout=0.1),
            r"not supported with a projection \(proj_size=2\)",
        ),
    ],
)
def test_zoneout_outside_zero_to_one_is_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_apply_refuses_zoneout_in_training_mode_and_runs_its_expectation():
    layer = LAYERS["lstm"](xp="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(3).standard_normal((T, N, IN))
    with pytest.raises(ValueError, match="draws no zoneout masks"):
        layer.apply(layer.params, x)
    layer.eval()
    assert_close(layer.apply(layer.params, x)[0], layer.forward(x)[0], dtype="float64")


def test_a_sequence_model_takes_zoneout_by_name_and_keeps_it_in_a_checkpoint(tmp_path):
    model = xrnn.SequenceModel("lstm", IN, H, 2, zoneout=(0.1, 0.2), xp="numpy", dtype="float64", seed=2)
    assert model.rnn.zoneout == (0.1, 0.2) and "zoneout=(0.1, 0.2)" in repr(model.rnn)
    x = np.random.default_rng(1).standard_normal((T, N, IN))
    xrnn.fit(model, xrnn.Adam(0.01), x, np.sin(x[..., :2]), loss="mse", epochs=1, batch_size=3, verbose=False)
    xrnn.save_checkpoint(tmp_path / "model.npz", model)
    restored = xrnn.load_checkpoint(tmp_path / "model.npz").model
    assert restored.rnn.zoneout == (0.1, 0.2)
    assert_close(to_numpy(restored.predict(x)), model.predict(x), dtype="float64")
    gru = xrnn.GRU(IN, H, zoneout=0.3, xp="numpy", seed=0)
    assert xrnn.GRU(**config_of(gru)).zoneout == 0.3
