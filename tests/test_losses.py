"""Losses over sequences: values and gradients against torch, masking, stability, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, assert_close, to_numpy
from test_gradcheck import numeric_gradient

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((5, 3, 4)) * 3  # (T, N, C)
TARGETS = RNG.integers(0, 4, size=(5, 3))
MASK = np.arange(5)[:, None] < np.array([5, 2, 4])[None, :]  # (T, N): lengths 5, 2, 4


def assert_scalar_close(loss, expected, dtype):
    assert tuple(loss.shape) == () and str(loss.dtype).endswith(dtype)
    assert float(loss) == pytest.approx(float(expected), rel={"float32": 1e-5, "float64": 1e-12}[dtype])


def integers(xp, a):
    return xp.asarray(np.asarray(a, dtype=np.int64))


def torch_cross_entropy(mask):
    z = torch.tensor(LOGITS, requires_grad=True)
    per_step = F.cross_entropy(z.reshape(-1, 4), torch.from_numpy(TARGETS).reshape(-1), reduction="none")
    weights = (
        torch.ones(15, dtype=torch.float64) if mask is None else torch.from_numpy(mask.reshape(-1) * 1.0)
    )
    loss = (per_step * weights).sum() / weights.sum()
    loss.backward()
    return loss.detach().numpy(), z.grad.numpy()


@pytest.mark.parametrize("masked", [False, True], ids=["all_steps", "masked"])
def test_cross_entropy_and_its_gradient_match_torch(xp, dtype, masked):
    mask = MASK if masked else None
    expected_loss, expected_grad = torch_cross_entropy(mask)
    loss, grad = xrnn.softmax_cross_entropy(
        asarray(xp, LOGITS, dtype), integers(xp, TARGETS), None if mask is None else xp.asarray(mask)
    )
    assert_scalar_close(loss, expected_loss, dtype)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype)


def test_cross_entropy_gradient_agrees_with_finite_differences():
    z = LOGITS.copy()
    _, grad = xrnn.softmax_cross_entropy(z, TARGETS, MASK)
    numeric = numeric_gradient(lambda: float(xrnn.softmax_cross_entropy(z, TARGETS, MASK)[0]), z)
    assert np.allclose(grad, numeric, atol=1e-8)


def test_masked_steps_get_no_gradient_and_do_not_count(xp):
    changed = LOGITS.copy()
    changed[~MASK] = 1e3  # anything at padded steps
    mask = xp.asarray(MASK)
    loss_a, grad = xrnn.softmax_cross_entropy(asarray(xp, LOGITS, "float64"), integers(xp, TARGETS), mask)
    loss_b, _ = xrnn.softmax_cross_entropy(asarray(xp, changed, "float64"), integers(xp, TARGETS), mask)
    assert float(loss_a) == pytest.approx(float(loss_b))
    assert np.all(to_numpy(grad)[~MASK] == 0)


def test_float_mask_weights_like_a_bool_mask(xp):
    z, t = asarray(xp, LOGITS, "float64"), integers(xp, TARGETS)
    as_bool, _ = xrnn.softmax_cross_entropy(z, t, xp.asarray(MASK))
    as_float, _ = xrnn.softmax_cross_entropy(z, t, asarray(xp, MASK * 1.0, "float64"))
    assert float(as_bool) == pytest.approx(float(as_float))


def test_a_fully_masked_batch_has_zero_loss_and_gradient(xp):
    loss, grad = xrnn.softmax_cross_entropy(
        asarray(xp, LOGITS, "float64"), integers(xp, TARGETS), xp.asarray(np.zeros((5, 3), dtype=bool))
    )
    assert float(loss) == 0.0 and np.all(to_numpy(grad) == 0)


def test_cross_entropy_is_finite_for_huge_logits(xp, dtype):
    z = asarray(xp, np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 3e4]]), dtype)
    loss, grad = xrnn.softmax_cross_entropy(z, integers(xp, [1, 0]))
    assert np.isfinite(float(loss)) and np.all(np.isfinite(to_numpy(grad)))
    assert float(loss) == pytest.approx((2e4 + 6e4 + np.log(2)) / 2, rel=1e-6)


def test_mse_and_its_gradient_match_torch(xp, dtype):
    y, t = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    y_t = torch.tensor(y, requires_grad=True)
    expected = F.mse_loss(y_t, torch.from_numpy(t))
    expected.backward()
    loss, grad = xrnn.mse(asarray(xp, y, dtype), asarray(xp, t, dtype))
    assert array_namespace(loss) is xp
    assert_scalar_close(loss, expected.detach().numpy(), dtype)
    assert_close(grad, y_t.grad.numpy(), xp=xp, dtype=dtype)


def test_losses_do_not_change_their_inputs():
    z, t = LOGITS.copy(), TARGETS.copy()
    xrnn.softmax_cross_entropy(z, t, MASK)
    xrnn.mse(z, z + 1)
    assert np.array_equal(z, LOGITS) and np.array_equal(t, TARGETS)


CASES = {
    "float_targets": (
        lambda: xrnn.softmax_cross_entropy(LOGITS, TARGETS * 1.0),
        TypeError,
        "targets must hold integer class indices, got dtype float64",
    ),
    "targets_shape": (
        lambda: xrnn.softmax_cross_entropy(LOGITS, TARGETS[:4]),
        ValueError,
        r"targets must have shape \(5, 3\) .* got shape \(4, 3\)",
    ),
    "target_out_of_range": (
        lambda: xrnn.softmax_cross_entropy(LOGITS, TARGETS + 4),
        ValueError,
        r"targets must lie in 0\.\.3",
    ),
    "mask_shape": (
        lambda: xrnn.softmax_cross_entropy(LOGITS, TARGETS, MASK[:, :2]),
        ValueError,
        r"mask must have shape \(5, 3\) like targets, got shape \(5, 2\)",
    ),
    "mask_dtype": (
        lambda: xrnn.softmax_cross_entropy(LOGITS, TARGETS, MASK.astype(np.int64)),
        TypeError,
        "mask must be bool or real floating, got dtype int64",
    ),
    "integer_logits": (
        lambda: xrnn.softmax_cross_entropy(TARGETS, TARGETS[:, 0]),
        TypeError,
        "logits must have a real floating dtype",
    ),
    "mse_shapes": (
        lambda: xrnn.mse(LOGITS, LOGITS[0]),
        ValueError,
        r"target must have shape \(5, 3, 4\) like prediction, got shape \(3, 4\)",
    ),
    "mse_dtypes": (
        lambda: xrnn.mse(LOGITS, LOGITS.astype(np.float32)),
        TypeError,
        "prediction is float64 but target is float32",
    ),
    "mse_namespaces": (
        lambda: xrnn.mse(LOGITS, torch.from_numpy(LOGITS)),
        TypeError,
        "prediction is numpy but target is torch",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_error(case):
    call, error, pattern = CASES[case]
    with pytest.raises(error, match=pattern):
        call()


# ---------------------------------------------------------------- ignore_index, masked mse, softmax


def test_targets_of_minus_100_are_left_out_as_a_mask_leaves_them_out(xp, dtype):
    rng = np.random.default_rng(0)
    logits = asarray(xp, rng.standard_normal((4, 3, 5)), dtype)
    targets = rng.integers(0, 5, (4, 3))
    padded = np.where(np.arange(4)[:, None] < np.array([4, 1, 2])[None, :], targets, -100)
    loss, grad = xrnn.softmax_cross_entropy(logits, xp.asarray(padded))
    expected, expected_grad = xrnn.softmax_cross_entropy(
        logits, xp.asarray(np.maximum(padded, 0)), xp.asarray(padded != -100)
    )
    assert_scalar_close(loss, expected, dtype)
    assert_close(grad, to_numpy(expected_grad), xp=xp, dtype=dtype)


def test_ignore_index_is_any_int_or_none():
    logits, targets = np.zeros((2, 3)), np.array([1, 7])
    loss, grad = xrnn.softmax_cross_entropy(logits, targets, ignore_index=7)
    assert np.isclose(loss, np.log(3)) and not grad[1].any()
    with pytest.raises(ValueError, match=r"targets must lie in 0..2 \(C=3 classes\)$"):
        xrnn.softmax_cross_entropy(logits, np.array([1, -100]), ignore_index=None)
    with pytest.raises(ValueError, match=r"targets must lie in 0..2 \(C=3 classes\) or ignore_index=-100"):
        xrnn.softmax_cross_entropy(logits, np.array([1, 3]))
    with pytest.raises(TypeError, match="ignore_index must be an int or None, got 1.5"):
        xrnn.softmax_cross_entropy(logits, targets, ignore_index=1.5)


def test_mse_with_a_mask_is_the_mean_over_the_positions_kept(xp, dtype):
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    keep = np.arange(4)[:, None] < np.array([4, 1, 2])[None, :]
    loss, grad = xrnn.mse(asarray(xp, y, dtype), asarray(xp, t, dtype), xp.asarray(keep))
    assert_scalar_close(loss, np.mean((y - t)[keep] ** 2), dtype)
    expected = np.where(keep[..., None], 2 * (y - t) / (keep.sum() * 2), 0.0)
    assert_close(grad, expected, xp=xp, dtype=dtype)


def test_mse_ignores_whatever_a_masked_position_holds(xp, dtype):
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    keep = np.arange(4)[:, None] < np.array([4, 1, 2])[None, :]
    padded = np.where(keep[..., None], t, np.nan)  # NaN padding of regression targets
    loss, grad = xrnn.mse(asarray(xp, y, dtype), asarray(xp, padded, dtype), xp.asarray(keep))
    expected, expected_grad = xrnn.mse(asarray(xp, y, dtype), asarray(xp, t, dtype), xp.asarray(keep))
    assert_scalar_close(loss, expected, dtype)
    assert_close(grad, to_numpy(expected_grad), xp=xp, dtype=dtype)


def test_cross_entropy_accepts_any_padding_target_where_the_mask_leaves_it_out():
    logits, keep = np.zeros((3, 4)), np.array([True, True, False])
    loss, grad = xrnn.softmax_cross_entropy(logits, np.array([1, 2, -1]), keep)
    assert np.isclose(loss, np.log(4)) and not grad[2].any()
    with pytest.raises(ValueError, match=r"targets must lie in 0..3"):
        xrnn.softmax_cross_entropy(logits, np.array([1, -1, 2]), keep)


def test_mse_refuses_a_mask_of_other_leading_axes():
    with pytest.raises(
        ValueError, match=r"mask must have shape \(4, 3\) like the leading axes of prediction"
    ):
        xrnn.mse(np.zeros((4, 3, 2)), np.zeros((4, 3, 2)), np.ones((3, 4), bool))


def test_softmax_refuses_an_axis_out_of_range():
    with pytest.raises(ValueError, match=r"axis must be an int in -2..1 for shape \(2, 3\), got 2"):
        xrnn.softmax(np.zeros((2, 3)), axis=2)
