"""``xrnn.LayerNormLSTM`` and ``xrnn.LayerNormGRU`` against haste's equations under torch autograd.

The oracle is a direct torch implementation of haste's LayerNorm cells (``LayerNormLSTMScript``
and ``LayerNormGRUScript`` of ``haste_pytorch``, in torch's gate order, with
``torch.nn.functional.layer_norm``), run one sequence at a time within its length; finite
differences check the gradients on their own. Every Ops runs these cells as the generic
loop does (tests/test_ops.py, tests/test_cuda_sim.py); every layer feature is in
tests/test_cells_beyond_torch.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_compat import numpy as npx

import xrnn
from helpers import asarray, assert_close, numeric_gradient, to_numpy
from xrnn.cells import LAYERNORM_GRU, LAYERNORM_LSTM

torch = pytest.importorskip("torch")

T, N, IN, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]
CLASSES = {"layernorm_lstm": xrnn.LayerNormLSTM, "layernorm_gru": xrnn.LayerNormGRU}


def _ln(a, gain, bias):
    return torch.nn.functional.layer_norm(a, (a.shape[-1],), weight=gain, bias=bias, eps=1e-5)


def _lstm_step(p, s, x, h, c):
    z = _ln(p[f"weight_ih_{s}"] @ x, p[f"ln_ih_weight_{s}"], p.get(f"bias_ih_{s}"))
    z = z + _ln(p[f"weight_hh_{s}"] @ h, p[f"ln_hh_weight_{s}"], p.get(f"bias_hh_{s}"))
    i, f, g, o = torch.sigmoid(z[:H]), torch.sigmoid(z[H : 2 * H]), torch.tanh(z[2 * H : 3 * H]), z[3 * H :]
    c = f * c + i * g
    return torch.sigmoid(o) * torch.tanh(_ln(c, p[f"ln_c_weight_{s}"], p[f"ln_c_bias_{s}"])), c


def _gru_step(p, s, x, h, c):
    a = _ln(p[f"weight_ih_{s}"] @ x, p[f"ln_ih_weight_{s}"], p.get(f"bias_ih_{s}"))
    u = _ln(p[f"weight_hh_{s}"] @ h, p[f"ln_hh_weight_{s}"], p.get(f"bias_hh_{s}"))
    r, z = torch.sigmoid(a[:H] + u[:H]), torch.sigmoid(a[H : 2 * H] + u[H : 2 * H])
    n = torch.tanh(a[2 * H :] + r * u[2 * H :])
    return (1 - z) * n + z * h, c


def _reference(cell, p, x, h0, c0, lengths, num_layers, directions):
    """``y``, final ``h`` and ``c`` of haste's equations, one sequence at a time within its length."""
    step = _lstm_step if cell == "layernorm_lstm" else _gru_step
    inp, finals_h, finals_c = x, [], []
    for k in range(num_layers):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:directions]):
            rows, last_h, last_c = [], [], []
            for n in range(x.shape[1]):
                idx = k * directions + d
                h, c = h0[idx, n], c0[idx, n]
                out = [torch.zeros(H, dtype=torch.float64)] * x.shape[0]
                for t in range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1):
                    h, c = step(p, f"l{k}{suffix}", inp[t, n], h, c)
                    out[t] = h
                rows.append(torch.stack(out))
                last_h.append(h)
                last_c.append(c)
            outs.append(torch.stack(rows, dim=1))
            finals_h.append(torch.stack(last_h))
            finals_c.append(torch.stack(last_c))
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(finals_h), torch.stack(finals_c)


def _perturbed(layer, seed):
    """The layer's parameters, the norms' gains and biases moved off their initial 1 and 0."""
    rng = np.random.default_rng(seed)
    return {k: to_numpy(v) + 0.3 * rng.standard_normal(tuple(v.shape)) for k, v in layer.params.items()}


@pytest.mark.parametrize("cell", list(CLASSES))
def test_layernorm_cells_are_hastes_equations_forward_and_backward(cell, xp):
    dtype = "float64"  # float32 meets float64 in tests/test_ops.py (every Ops against the generic one)
    layer = CLASSES[cell](IN, H, 2, bidirectional=True, xp=xp, dtype=dtype, seed=0)
    values = _perturbed(layer, 7)
    layer.params = {k: asarray(xp, v, dtype) for k, v in values.items()}
    two = cell == "layernorm_lstm"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, IN))
    h0, c0 = rng.standard_normal((2, 4, N, H))
    dy, dh, dc = rng.standard_normal((T, N, 2 * H)), *rng.standard_normal((2, 4, N, H))

    def on(a):
        return asarray(xp, a, dtype)

    y, state, cache = layer.forward(on(x), (on(h0), on(c0)) if two else on(h0), lengths=LENGTHS)
    dx, dstate0, grads = layer.backward(cache, on(dy), (on(dh), on(dc)) if two else on(dh))

    params = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    x_t, h0_t, c0_t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    y_ref, h_ref, c_ref = _reference(cell, params, x_t, h0_t, c0_t, LENGTHS, 2, 2)
    loss = (y_ref * torch.tensor(dy)).sum() + (h_ref * torch.tensor(dh)).sum()
    loss = loss + (c_ref * torch.tensor(dc)).sum() if two else loss
    loss.backward()
    got = (y, *(state if two else (state,)), dx, *(dstate0 if two else (dstate0,)))
    expected = (y_ref, h_ref, *((c_ref,) if two else ()), x_t.grad, h0_t.grad, *((c0_t.grad,) if two else ()))
    for a, b in zip(got, expected, strict=True):
        assert_close(a, b.detach().numpy(), xp=xp, dtype=dtype)
    assert set(grads) == set(params)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("cell", list(CLASSES))
def test_layernorm_gradients_are_finite_differences(cell, bias):
    layer = CLASSES[cell](3, 2, bias=bias, xp="numpy", dtype="float64", seed=3)
    layer.params = _perturbed(layer, 8)
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2))
    lengths = [4, 3]

    def loss():
        return float(np.sum(layer.forward(x, lengths=lengths, need_cache=False)[0] * dy))

    _, _, cache = layer.forward(x, lengths=lengths)
    dx, _, grads = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for key, value in layer.params.items():
        np.testing.assert_allclose(
            grads[key], numeric_gradient(loss, value), rtol=1e-6, atol=1e-8, err_msg=key
        )


@pytest.mark.parametrize("cell", [LAYERNORM_LSTM, LAYERNORM_GRU], ids=lambda c: c.name)
def test_the_row_form_is_the_array_step(cell):
    # the compiled kernels run the RowStep; here as plain Python on float64, far into saturation
    def sigmoid(z):
        e = math.exp(-abs(z))
        return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)

    row = cell.row_step(sigmoid, math.tanh, math.sqrt, lambda f: f)
    rng = np.random.default_rng(4)
    n, hidden, gates = 4, 3, cell.n_gates
    scale = np.array([1.0, 30.0, 1e4, 1e-3])[:, None]
    gx, gh = (rng.standard_normal((n, gates * hidden)) * scale for _ in range(2))
    v = rng.standard_normal(sum(b for _, b in cell.vectors) * hidden)
    state = tuple(rng.standard_normal((n, hidden)) for _ in range(cell.n_states))
    dstate = tuple(rng.standard_normal((n, hidden)) for _ in range(cell.n_states))
    new, cache = cell.step(gx, gh, state, xp=npx, vectors=v)
    dgx, dgh, direct = cell.step_backward(dstate, cache, xp=npx, vectors=v)
    at = row.state_at(hidden)  # the cached fields, then c (two states)
    kept = np.zeros((n, at + (cell.n_states - 1) * hidden))
    h, dg, dgh_row, dprev = (
        np.zeros((n, hidden)),
        np.zeros_like(dgx),
        np.zeros_like(dgh),
        np.zeros((n, hidden)),
    )
    for b in range(n):
        row.forward(1.0, cell.eps, gx[b], gh[b], v, state[-1][b], kept[b], h[b])
        row.backward(
            1.0, cell.eps, dstate[0][b], dstate[-1][b], kept[b], state[-1][b], v, dg[b], dgh_row[b], dprev[b]
        )
    for b_got, b_expected in [(h, new[0]), (dg, dgx), (dgh_row, dgh), (dprev, direct[-1])]:
        np.testing.assert_allclose(b_got, b_expected, rtol=1e-9, atol=1e-12)
    if cell.n_states == 2:
        np.testing.assert_allclose(kept[:, at:], new[1], rtol=1e-12)
    for got, expected in zip(row.fields(kept, hidden), cache[:-1], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("cell", list(CLASSES))
def test_the_norms_start_as_the_identity_and_their_keys_are_documented(cell):
    layer = CLASSES[cell](IN, H, bidirectional=True, xp="numpy", seed=5)
    gates = 4 if cell == "layernorm_lstm" else 3
    expected = {"weight_ih": (gates * H, IN), "weight_hh": (gates * H, H), "bias_ih": (gates * H,)}
    expected |= {"bias_hh": (gates * H,), "ln_ih_weight": (gates * H,), "ln_hh_weight": (gates * H,)}
    if cell == "layernorm_lstm":
        expected |= {"ln_c_weight": (H,), "ln_c_bias": (H,)}
    shapes = layer.param_shapes()
    assert list(shapes) == [f"{k}_l0{s}" for s in ("", "_reverse") for k in expected]
    for key, value in layer.params.items():
        assert value.shape == expected[key.split("_l0")[0]]
        if key.startswith("ln_"):
            np.testing.assert_array_equal(value, 1.0 if "_weight" in key else 0.0)


@pytest.mark.parametrize("cell", list(CLASSES))
def test_without_bias_the_layer_is_the_one_with_zero_biases(cell):
    plain = CLASSES[cell](IN, H, bias=False, xp="numpy", dtype="float64", seed=6)
    assert not any(k.startswith("bias") for k in plain.params)
    zero = CLASSES[cell](IN, H, xp="numpy", dtype="float64", seed=6)
    zero.params = {
        k: (np.zeros_like(v) if k.startswith("bias") else plain.params.get(k, v))
        for k, v in zero.params.items()
    }
    x = np.random.default_rng(9).standard_normal((T, N, IN))
    assert_close(plain.forward(x)[0], zero.forward(x)[0], dtype="float64")
    again = CLASSES[cell].from_state_dict(plain.state_dict())
    assert not again.bias and set(again.params) == set(plain.params)


@pytest.mark.parametrize("cell", list(CLASSES))
def test_weight_drop_masks_the_recurrent_weights_of_a_layernorm_cell(cell):
    layer = CLASSES[cell](IN, H, weight_drop=0.5, xp="numpy", dtype="float64", seed=10)
    x = np.random.default_rng(11).standard_normal((T, N, IN))
    y, _, cache = layer.forward(x)
    (mask,) = cache.weight_masks.values()
    masked = CLASSES[cell](IN, H, xp="numpy", dtype="float64", seed=10)
    masked.params = {k: v * mask if k == "weight_hh_l0" else v for k, v in layer.params.items()}
    assert_close(y, masked.forward(x)[0], dtype="float64")
    assert_close(
        layer.forward(x, training=False)[0],
        CLASSES[cell](IN, H, xp="numpy", dtype="float64", seed=10).forward(x)[0],
        dtype="float64",
    )


@pytest.mark.parametrize("cell", list(CLASSES))
def test_export_refuses_a_layernorm_cell_by_name(cell, tmp_path):
    model = xrnn.SequenceModel(cell, IN, H, 2, xp="numpy", seed=12)
    with pytest.raises(TypeError, match=f"a {CLASSES[cell].__name__} normalises .* cannot be exported"):
        xrnn.export_onnx(model, tmp_path / "model.onnx")
    with pytest.raises(TypeError, match="cannot be exported"):
        xrnn.to_keras_weights(model.rnn)
