"""The dense output layer over sequences: torch.nn.Linear's maths, and its backward."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, assert_close, to_numpy
from test_gradcheck import numeric_gradient

torch = pytest.importorskip("torch")


def test_parameters_have_torch_linear_keys_shapes_and_init_bound(xp):
    layer = xrnn.Dense(16, 5, xp=xp, seed=0)
    module = torch.nn.Linear(16, 5)
    assert {k: tuple(v.shape) for k, v in layer.params.items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()
    }
    assert all(array_namespace(v) is xp for v in layer.params.values())
    assert np.max(np.abs(to_numpy(layer.params["weight"]))) <= 1 / np.sqrt(16)


def test_forward_and_every_gradient_match_torch_linear(xp, dtype):
    layer = xrnn.Dense(3, 2, xp=xp, dtype=dtype, seed=1)
    rng = np.random.default_rng(0)
    h, dy = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 2))
    module = torch.nn.Linear(3, 2, dtype=torch.float64)
    module.load_state_dict(
        {k: torch.from_numpy(to_numpy(v).astype(np.float64)) for k, v in layer.params.items()}
    )
    h_t = torch.tensor(h, requires_grad=True)
    y_t = module(h_t)
    y_t.backward(torch.from_numpy(dy))

    y, cache = layer.forward(asarray(xp, h, dtype))
    dh, grads = layer.backward(cache, asarray(xp, dy, dtype))
    assert_close(y, y_t.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(dh, h_t.grad.numpy(), xp=xp, dtype=dtype)
    assert_close(grads["weight"], module.weight.grad.numpy(), xp=xp, dtype=dtype)
    assert_close(grads["bias"], module.bias.grad.numpy(), xp=xp, dtype=dtype)


def test_gradients_agree_with_finite_differences():
    layer = xrnn.Dense(3, 2, xp="numpy", dtype="float64", seed=2)
    rng = np.random.default_rng(1)
    h, dy = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 2))

    def loss():
        return float(np.sum(layer.forward(h)[0] * dy))

    dh, grads = layer.backward(layer.forward(h)[1], dy)
    assert np.allclose(dh, numeric_gradient(loss, h), atol=1e-8)
    for key, value in layer.params.items():
        assert np.allclose(grads[key], numeric_gradient(loss, value), atol=1e-8), key


def test_applies_to_any_number_of_leading_axes(xp):
    layer = xrnn.Dense(3, 2, xp=xp, dtype="float64", seed=0)
    h = asarray(xp, np.ones((3,)), "float64")
    y, cache = layer.forward(h)
    assert tuple(y.shape) == (2,)
    dh, _ = layer.backward(cache, xp.ones_like(y))
    assert tuple(dh.shape) == (3,)


def test_backward_refuses_a_cache_made_with_other_parameters():
    layer = xrnn.Dense(3, 2, xp="numpy", seed=0)
    _, cache = layer.forward(np.ones((1, 1, 3), dtype=np.float32))
    layer.params = {k: v * 2 for k, v in layer.params.items()}
    with pytest.raises(ValueError, match="run forward again"):
        layer.backward(cache, np.ones((1, 1, 2), dtype=np.float32))


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (
            lambda d: d.forward(np.ones((2, 4), dtype=np.float32)),
            ValueError,
            r"h must have shape \(\.\.\., 3\)",
        ),
        (lambda d: d.forward(np.ones((2, 3))), TypeError, "one dtype"),
        (lambda d: d.forward([[1.0, 2.0, 3.0]]), TypeError, "h must be an array"),
        (
            lambda d: d.backward(
                d.forward(np.ones((2, 3), dtype=np.float32))[1], np.ones((2, 3), np.float32)
            ),
            ValueError,
            r"dy must have shape \(2, 2\)",
        ),
        (lambda d: d.backward("cache", np.ones((2, 2), np.float32)), TypeError, "DenseCache"),
    ],
    ids=["wrong_features", "wrong_dtype", "not_an_array", "dy_shape", "not_a_cache"],
)
def test_bad_input_is_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(xrnn.Dense(3, 2, xp="numpy", seed=0))


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_sizes_must_be_positive_ints(size):
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        xrnn.Dense(size, 2)
