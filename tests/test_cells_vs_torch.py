"""The single-step cells against ``torch.nn.RNNCell/LSTMCell/GRUCell`` and autograd, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")

INPUT, HIDDEN, N = 3, 4, 5

#: Each kind of cell: xrnn and torch class name, keywords.
CELL_KINDS = {
    "rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
    "lstm": ("LSTMCell", {}),
    "gru": ("GRUCell", {}),
}


def _torch_cell(kind, bias, seed=0):
    name, kwargs = CELL_KINDS[kind]
    torch.manual_seed(seed)
    return getattr(torch.nn, name)(INPUT, HIDDEN, bias=bias, dtype=torch.float64, **kwargs)


def _xrnn_cell(kind, sd, **options):
    name, kwargs = CELL_KINDS[kind]
    return getattr(xrnn, name).from_state_dict(sd, **kwargs, **options)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_cell_matches_torch_step_and_every_gradient(xp, dtype, kind, bias):
    module = _torch_cell(kind, bias)
    cell = _xrnn_cell(kind, module.state_dict(), xp=xp, dtype=dtype)
    rng = np.random.default_rng(1)
    lstm = kind == "lstm"
    x = rng.standard_normal((N, INPUT))
    state = [rng.standard_normal((N, HIDDEN)) for _ in range(2 if lstm else 1)]
    dstate = [rng.standard_normal((N, HIDDEN)) for _ in state]
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in state]
    out = module(xt, tuple(st)) if lstm else (module(xt, st[0]),)
    sum((o * torch.tensor(d)).sum() for o, d in zip(out, dstate)).backward()

    def pack(parts):
        return tuple(asarray(xp, p, dtype) for p in parts) if lstm else asarray(xp, parts[0], dtype)

    new, cache = cell.forward(asarray(xp, x, dtype), pack(state))
    dx, dprev, grads = cell.backward(cache, pack(dstate))
    tol = 1e-9 if dtype == "float64" else 1e-4
    for got, want in zip(new if lstm else (new,), out):
        assert_close(got, want.detach().numpy(), xp=xp, dtype=dtype, tol=tol)
    assert_close(dx, xt.grad.numpy(), xp=xp, dtype=dtype, tol=tol)
    for got, want in zip(dprev if lstm else (dprev,), st):
        assert_close(got, want.grad.numpy(), xp=xp, dtype=dtype, tol=tol)
    assert list(grads) == [k for k, _ in module.named_parameters()]
    for key, p in module.named_parameters():
        assert_close(grads[key], p.grad.numpy(), xp=xp, dtype=dtype, tol=tol)


def test_cell_state_dict_moves_both_ways_bit_for_bit(xp, kind):
    module = _torch_cell(kind, True).float()
    cell = _xrnn_cell(kind, module.state_dict(), xp=xp)
    assert str(cell.params["weight_ih"].dtype).endswith("float32")
    back = _torch_cell(kind, True, seed=7).float()
    back.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in cell.state_dict().items()})
    for key, value in module.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_a_new_cell_has_torch_keys_and_shapes_and_its_weights_give_its_outputs_in_torch(xp, kind, bias):
    name, kwargs = CELL_KINDS[kind]
    cell = getattr(xrnn, name)(INPUT, HIDDEN, bias, xp=xp, dtype="float64", seed=2, **kwargs)
    module = _torch_cell(kind, bias)
    assert [(k, tuple(v.shape)) for k, v in cell.params.items()] == [
        (k, tuple(v.shape)) for k, v in module.state_dict().items()
    ]
    module.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in cell.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((N, INPUT))
    state, _ = cell.forward(xp.asarray(x))  # no state: zeros, as torch
    want = module(torch.from_numpy(x))
    for got, expected in zip(state if kind == "lstm" else (state,), want if kind == "lstm" else (want,)):
        assert_close(got, expected.detach().numpy(), xp=xp, dtype="float64")


def test_lstm_cell_backward_takes_none_for_a_zero_part_of_dstate():
    cell = xrnn.LSTMCell(INPUT, HIDDEN, xp="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((N, INPUT))
    (h, c), cache = cell.forward(x)
    dh = np.ones_like(h)
    with_none = cell.backward(cache, (dh, None))
    with_zeros = cell.backward(cache, (dh, np.zeros_like(c)))
    np.testing.assert_array_equal(with_none[0], with_zeros[0])
    for key, value in with_zeros[2].items():
        np.testing.assert_array_equal(with_none[2][key], value)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda c: c.forward(np.zeros(3)), ValueError, r"x must have 2 dimensions \(N, input_size\)"),
        (lambda c: c.forward(np.zeros((2, 5))), ValueError, r"x must have shape \(\*, 3\)"),
        (
            lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 4))),
            TypeError,
            r"state of an LSTMCell must be a tuple",
        ),
        (
            lambda c: c.forward(np.zeros((2, 3)), (np.zeros((3, 4)), None)),
            ValueError,
            r"state\[0\] must have shape \(2, 4\)",
        ),
        (lambda c: c.forward(np.zeros((2, 3), "float32")), TypeError, "dtype"),
        (lambda c: c.backward("cache", np.zeros((2, 4))), TypeError, "cache must be the CellCache"),
    ],
    ids=["x_1d", "x_wrong_size", "state_not_tuple", "state_wrong_shape", "x_wrong_dtype", "not_a_cache"],
)
def test_cell_rejects_bad_input_with_a_message_naming_the_argument(call, error, message):
    cell = xrnn.LSTMCell(3, 4, xp="numpy", dtype="float64", seed=0)
    with pytest.raises(error, match=message):
        call(cell)


def test_cell_refuses_a_cache_made_with_other_parameters():
    cell = xrnn.GRUCell(3, 4, xp="numpy", dtype="float64", seed=0)
    state, cache = cell.forward(np.zeros((2, 3)))
    cell.params["weight_hh"] = cell.params["weight_hh"] + 1.0
    with pytest.raises(ValueError, match="other parameters"):
        cell.backward(cache, state)


@pytest.mark.parametrize(
    "sd,message",
    [
        ({"weight_ih": np.zeros((16, 3))}, "must hold weight_ih, weight_hh"),
        ({"weight_ih": np.zeros((16, 3)), "weight_hh": np.zeros((16, 4)), "bias": np.zeros(16)}, "must hold"),
        (
            {"weight_ih": np.zeros((9, 3)), "weight_hh": np.zeros((16, 4))},
            r"weight_ih'\] must have shape \(16, 3\)",
        ),
        (
            {"weight_ih": np.zeros((16, 3)), "weight_hh": np.zeros((16, 4)), "bias_ih": np.zeros(16)},
            "missing 'bias_hh'",
        ),
    ],
)
def test_cell_from_a_bad_state_dict_is_a_value_error(sd, message):
    with pytest.raises(ValueError, match=message):
        xrnn.LSTMCell.from_state_dict(sd, xp="numpy")
