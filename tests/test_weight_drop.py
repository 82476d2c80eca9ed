"""DropConnect on ``weight_hh`` (``weight_drop``): torch's LSTM and GRU with masked weights are the oracle."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")

T, N, IN, H = 5, 3, 2, 4
LENGTHS = [5, 2, 4]


@pytest.mark.parametrize("cls", [xrnn.LSTM, xrnn.GRU], ids=["lstm", "gru"])
def test_weight_drop_is_the_layer_with_masked_recurrent_weights_forward_and_backward(cls, xp, dtype):
    layer = cls(IN, H, 2, bidirectional=True, weight_drop=0.4, xp=xp, dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, 2 * H))
    y, _, cache = layer.forward(asarray(xp, x, dtype), lengths=LENGTHS)
    dx, _, grads = layer.backward(cache, asarray(xp, dy, dtype))

    masks = {k: to_numpy(m) for k, m in cache.weight_masks.items()}
    assert sorted(masks) == sorted(k for k in layer.params if k.startswith("weight_hh"))
    for m in masks.values():  # keep / (1 - p): zeros and 1 / 0.6, one mask over the whole matrix
        np.testing.assert_allclose(m[m != 0], 1 / 0.6, rtol=1e-6)
        assert 0 < np.count_nonzero(m) < m.size
    module = getattr(torch.nn, cls.__name__)(IN, H, 2, bidirectional=True, dtype=torch.float64)
    params = {
        k: torch.tensor(to_numpy(v), dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()
    }
    dropped = {
        k: (v * torch.tensor(masks[k], dtype=torch.float64) if k in masks else v) for k, v in params.items()
    }
    x_t = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x_t, LENGTHS, enforce_sorted=False)
    out, _ = torch.func.functional_call(module, dropped, (packed,))
    y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    (y_ref * torch.tensor(dy)).sum().backward()
    assert_close(y, y_ref.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(dx, x_t.grad.numpy(), xp=xp, dtype=dtype)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


def test_weight_drop_draws_a_new_mask_each_forward_and_none_in_eval_mode():
    layer = xrnn.LSTM(IN, H, weight_drop=0.5, xp="numpy", dtype="float64", seed=2)
    plain = xrnn.LSTM.from_state_dict(layer.state_dict())
    x = np.random.default_rng(3).standard_normal((T, N, IN))
    first, second = layer.forward(x)[0], layer.forward(x)[0]
    assert np.abs(first - second).max() > 1e-6
    layer.eval()
    y, _, cache = layer.forward(x)
    assert cache.weight_masks == {}
    np.testing.assert_array_equal(y, plain.forward(x)[0])


def test_weight_drop_masks_follow_the_layers_generator():
    layer = xrnn.GRU(IN, H, weight_drop=0.5, xp="numpy", dtype="float64", seed=4)
    x = np.random.default_rng(5).standard_normal((T, N, IN))
    layer.generator = np.random.default_rng(7)
    first = layer.forward(x)[0]
    layer.generator = np.random.default_rng(7)
    np.testing.assert_array_equal(layer.forward(x)[0], first)


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.5"])
def test_weight_drop_must_be_a_probability_below_one(bad):
    with pytest.raises(ValueError, match=r"weight_drop must be a number in \[0, 1\)"):
        xrnn.LSTM(IN, H, weight_drop=bad, xp="numpy")


def test_a_model_with_weight_drop_trains_and_keeps_the_option_in_its_checkpoint(tmp_path):
    model = xrnn.SequenceModel("lstm", IN, H, 1, weight_drop=0.3, xp="numpy", dtype="float64", seed=6)
    x = np.random.default_rng(7).standard_normal((T, N, IN))
    xrnn.fit(
        model, xrnn.Adam(0.01), x, np.sin(x[:, :, :1]), loss="mse", epochs=1, batch_size=3, verbose=False
    )
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    assert xrnn.load_checkpoint(tmp_path / "m.npz").model.rnn.weight_drop == 0.3
