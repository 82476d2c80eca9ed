"""``xrnn.IndRNN`` against its equation under torch autograd and finite differences, and its contract.

The layer features it shares with the other cells (recomputation, inference without a
cache, ``apply`` under torch and JAX, state dicts, ``SequenceModel`` by name, checkpoints)
are in tests/test_cells_beyond_torch.py; every ``Ops`` against the generic loop in
tests/test_ops.py and tests/test_cuda_sim.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, numeric_gradient, to_numpy

T, N, IN, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]


def _reference(torch, params, x, h0, lengths, num_layers, directions, act):
    """``y`` and the final ``h`` of IndRNN from its equation, one sequence and one step at a time."""
    inp, finals = x, []
    for k in range(num_layers):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:directions]):
            w_ih, u = params[f"weight_ih_l{k}{suffix}"], params[f"weight_hh_l{k}{suffix}"]
            b = params[f"bias_ih_l{k}{suffix}"] + params[f"bias_hh_l{k}{suffix}"]
            rows, last = [], []
            for n in range(x.shape[1]):
                h = h0[k * directions + d, n]
                out = [torch.zeros(H, dtype=torch.float64)] * x.shape[0]
                order = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for t in order:
                    h = act(w_ih @ inp[t, n] + b + u * h)  # h = act(W x + u * h_prev + b)
                    out[t] = h
                rows.append(torch.stack(out))
                last.append(h)
            outs.append(torch.stack(rows, dim=1))
            finals.append(torch.stack(last))
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(finals)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_indrnn_is_its_equation_forward_and_backward(nonlinearity, xp):
    torch = pytest.importorskip("torch")
    dtype = "float64"  # float32 meets float64 in tests/test_ops.py (every Ops against the generic one)
    layer = xrnn.IndRNN(IN, H, 2, nonlinearity=nonlinearity, bidirectional=True, xp=xp, dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((T, N, IN)), rng.standard_normal((4, N, H))
    dy, dh = rng.standard_normal((T, N, 2 * H)), rng.standard_normal((4, N, H))
    y, h, cache = layer.forward(asarray(xp, x, dtype), asarray(xp, h0, dtype), lengths=LENGTHS)
    dx, dh0, grads = layer.backward(cache, asarray(xp, dy, dtype), asarray(xp, dh, dtype))

    params = {
        k: torch.tensor(to_numpy(v), dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()
    }
    x_t, h0_t = (torch.tensor(a, requires_grad=True) for a in (x, h0))
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    y_ref, h_ref = _reference(torch, params, x_t, h0_t, LENGTHS, 2, 2, act)
    y_ref = y_ref * torch.tensor(np.arange(T)[:, None] < np.array(LENGTHS)[None, :])[:, :, None]
    ((y_ref * torch.tensor(dy)).sum() + (h_ref * torch.tensor(dh)).sum()).backward()
    assert_close(y, y_ref.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(h, h_ref.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(dx, x_t.grad.numpy(), xp=xp, dtype=dtype)
    assert_close(dh0, h0_t.grad.numpy(), xp=xp, dtype=dtype)
    assert set(grads) == set(params)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=["full", "ragged"])
def test_indrnn_gradients_agree_with_finite_differences(lengths):
    layer = xrnn.IndRNN(2, 3, 2, bidirectional=True, xp="numpy", dtype="float64", seed=5)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 6))
    h0, dh = rng.standard_normal((2, 4, 2, 3))

    def loss():
        y, h, _ = layer.forward(x, h0, lengths=lengths)
        return float(np.sum(y * dy) + np.sum(h * dh))

    _, _, cache = layer.forward(x, h0, lengths=lengths)
    dx, dh0, grads = layer.backward(cache, dy, dh)
    assert_close(dx, numeric_gradient(loss, x), tol=1e-6)
    assert_close(dh0, numeric_gradient(loss, h0), tol=1e-6)
    for key, value in layer.params.items():
        assert_close(grads[key], numeric_gradient(loss, value), tol=1e-6)


def test_the_recurrent_weight_is_a_vector_per_unit_under_torchs_names():
    layer = xrnn.IndRNN(IN, H, 2, bidirectional=True, xp="numpy", seed=2)
    shapes = layer.param_shapes()
    assert shapes["weight_hh_l0"] == (H,) and shapes["weight_hh_l1_reverse"] == (H,)
    assert shapes["weight_ih_l1"] == (H, 2 * H) and shapes["bias_hh_l0"] == (H,)
    again = xrnn.IndRNN.from_state_dict(layer.state_dict(), nonlinearity="relu")
    assert again.nonlinearity == "relu" and again.param_shapes() == shapes


def test_a_zero_recurrent_weight_makes_every_step_a_dense_layer():
    layer = xrnn.IndRNN(IN, H, nonlinearity="relu", xp="numpy", dtype="float64", seed=3)
    layer.params = {k: (0 * v if k.startswith("weight_hh") else v) for k, v in layer.params.items()}
    x = np.random.default_rng(4).standard_normal((T, N, IN))
    p = layer.params
    dense = np.maximum(x @ p["weight_ih_l0"].T + p["bias_ih_l0"] + p["bias_hh_l0"], 0)
    assert_close(layer.forward(x, np.ones((1, N, H)))[0], dense, dtype="float64")


def test_a_matrix_recurrent_weight_is_refused_by_name():
    rnn = xrnn.RNN(IN, H, xp="numpy", seed=0)
    with pytest.raises(ValueError, match=r"weight_hh_l0'\] must be 1-d .* got shapes \(6, 6\)"):
        xrnn.IndRNN.from_state_dict(rnn.state_dict())
    layer = xrnn.IndRNN(IN, H, xp="numpy", seed=0)
    with pytest.raises(ValueError, match=r"params\['weight_hh_l0'\] must have shape \(6,\)"):
        layer.set_params({**layer.params, "weight_hh_l0": rnn.params["weight_hh_l0"]})


def test_an_unknown_nonlinearity_is_refused_by_name():
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        xrnn.IndRNN(IN, H, nonlinearity="sigmoid", xp="numpy")


def test_onnx_export_refuses_indrnn_clearly():
    pytest.importorskip("onnx")
    model = xrnn.SequenceModel("indrnn", IN, H, 2, xp="numpy", seed=0)
    for what in (model, model.rnn):
        with pytest.raises(ValueError, match="ONNX and Keras have no IndRNN"):
            xrnn.export_onnx(what, None)
