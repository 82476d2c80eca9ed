"""Hard edges of the layers: a changed output, hostile padding, and values from torch.

Catalogue style, as tests/test_bad_input_catalogue.py: each table row is one case, and
each test states the rule every row must keep, on every backend and both NumPy paths.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import xrnn
from helpers import asarray, make_layer, to_numpy

T, N, IN, H = 5, 3, 2, 4
LENGTHS = [5, 2, 4]


@pytest.fixture(params=["numba", "generic"])
def numpy_path(request, monkeypatch):
    """Both NumPy paths (the Numba Ops and the generic loop); other backends run theirs.

    ``generic`` on JAX is JAX's own Ops (no bridge), a ``lax.scan`` compiled per cell: its
    masks past each length are the same for every cell, so it runs the LSTM here;
    tests/test_ops.py holds it equal to the generic loop on every cell, with lengths.
    """
    given = request.node.callspec.params
    if request.param == "generic" and given.get("xp") == "jax" and given.get("kind", "lstm") != "lstm":
        pytest.skip("JAX's own Ops runs these edges for the LSTM (see the fixture)")
    monkeypatch.setenv("XRNN_NUMBA", "1" if request.param == "numba" else "0")
    return request.param


def _data(xp, dtype, width=H):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, width))
    return asarray(xp, x, dtype), asarray(xp, dy, dtype)


def _leaves(y, state, dx, dstate, grads):
    states = state if isinstance(state, tuple) else (state,)
    dstates = dstate if isinstance(dstate, tuple) else (dstate,)
    out = {"y": y, "dx": dx, **{f"state{j}": s for j, s in enumerate(states)}}
    out |= {f"dstate{j}": d for j, d in enumerate(dstates)} | grads
    return {k: to_numpy(v) for k, v in out.items()}


# ------------------------------------------------------------ a changed y before backward

CHANGES = {
    "add_in_place": lambda y: operator.iadd(y, 1),
    "assign_a_slice": lambda y: y.__setitem__((slice(None), 0, slice(None)), 0),
    "scale_in_place": lambda y: operator.imul(y, 2),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_in_place_of_y_never_gives_wrong_gradients(xp, dtype, kind, change, numpy_path):
    layer = make_layer(kind, IN, H, xp=xp, dtype=dtype, seed=1)
    x, dy = _data(xp, dtype)
    y, _, cache = layer.forward(x)
    expected = {k: to_numpy(v) for k, v in layer.backward(cache, dy)[2].items()}
    y, _, cache = layer.forward(x)
    before = to_numpy(y).copy()
    try:
        CHANGES[change](y)
    except (ValueError, TypeError, RuntimeError):  # refused at once: y is read-only or immutable
        np.testing.assert_array_equal(to_numpy(y), before)
    try:
        _, _, grads = layer.backward(cache, dy)
    except ValueError as exc:  # or refused by backward, with a message that says why
        assert "changed in place" in str(exc)
        return
    for key, value in expected.items():
        np.testing.assert_array_equal(to_numpy(grads[key]), value, err_msg=key)


# --------------------------------------------------------------- what padding may hold

PADDING = {
    "nan": float("nan"),
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "huge": 1e30,
}


@pytest.mark.parametrize("fill", list(PADDING))
def test_padding_past_each_length_reaches_no_output_and_no_gradient(xp, dtype, kind, fill, numpy_path):
    layer = make_layer(kind, IN, H, num_layers=2, bidirectional=True, xp=xp, dtype=dtype, seed=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, IN))
    dy = rng.standard_normal((T, N, 2 * H))
    padded = x.copy()
    for b, length in enumerate(LENGTHS):
        x[length:, b] = 0.0
        padded[length:, b] = PADDING[fill]
    results = []
    for inputs in (x, padded):
        y, state, cache = layer.forward(asarray(xp, inputs, dtype), lengths=LENGTHS, check_finite=True)
        results.append(_leaves(y, state, *layer.backward(cache, asarray(xp, dy, dtype), dstate=state)))
    for key, value in results[0].items():
        assert np.all(np.isfinite(results[1][key])), key
        np.testing.assert_array_equal(results[1][key], value, err_msg=key)


def test_check_finite_still_refuses_a_nan_in_a_valid_step(xp):
    layer = xrnn.GRU(IN, H, xp=xp, seed=0)
    x = np.zeros((T, N, IN), np.float32)
    x[1, 1, 0] = np.nan  # step 1 of a sequence of length 2
    with pytest.raises(ValueError, match=r"x must be finite \(check_finite=True\), got 1 NaN"):
        layer.forward(asarray(xp, x, "float32"), lengths=LENGTHS, check_finite=True)


# ------------------------------------------------------------------- values from torch


def test_a_state_dict_of_parameters_that_require_grad_converts_without_grad():
    torch = pytest.importorskip("torch")
    module = torch.nn.LSTM(IN, H, dtype=torch.float64)
    layer = xrnn.LSTM.from_state_dict(dict(module.named_parameters()), xp="torch")
    for key, value in layer.params.items():
        assert not value.requires_grad and value.grad_fn is None, key
        assert torch.equal(value, module.state_dict()[key]), key


@pytest.mark.parametrize("target", ["float32", "float64"])
def test_bfloat16_tensors_convert_to_a_requested_dtype(xp, target):
    torch = pytest.importorskip("torch")
    module = torch.nn.GRU(IN, H).to(torch.bfloat16)
    layer = xrnn.GRU.from_state_dict(module.state_dict(), xp=xp, dtype=target)
    for key, value in module.state_dict().items():
        assert str(layer.params[key].dtype).endswith(target), key
        np.testing.assert_array_equal(to_numpy(layer.params[key]), value.double().numpy(), err_msg=key)


@pytest.mark.parametrize("key", ["weight_hh_l0", "bias_ih_l0", "weight_ih_l0"])
def test_a_parameter_of_another_dtype_is_a_type_error_naming_its_key(xp, kind, key, numpy_path):
    layer = make_layer(kind, IN, H, xp=xp, dtype="float32", seed=0)
    layer.params[key] = xp.astype(layer.params[key], xp.float64)
    x, _ = _data(xp, "float32")
    with pytest.raises(TypeError, match=rf"params\['{key}'\] is [\w.]*float64|parameters is [\w.]*float64"):
        layer.forward(x)


TEMPERATURES = {"tiny": 1e-300, "smallest_normal": 2.2250738585072014e-308, "subnormal": 5e-324}


@pytest.mark.parametrize("temperature", list(TEMPERATURES))
def test_sampling_at_a_vanishing_temperature_is_greedy_decoding(temperature):
    model = xrnn.SequenceModel("lstm", 5, 8, 5, xp="numpy", dtype="float64", seed=3)
    greedy = xrnn.sample(model, [0, 1], 20, temperature=0, seed=1)
    assert xrnn.sample(model, [0, 1], 20, temperature=TEMPERATURES[temperature], seed=1) == greedy
    assert set(greedy) != {0}  # not "always symbol 0"


def test_check_finite_in_backward_also_ignores_dy_past_each_length(xp, numpy_path):
    layer = xrnn.LSTM(IN, H, xp=xp, seed=0)
    x, dy = _data(xp, "float32")
    padded = to_numpy(dy).copy()
    padded[2:, 1] = np.nan  # the second sequence has 2 valid steps
    _, _, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, _ = layer.backward(cache, asarray(xp, padded, "float32"), check_finite=True)
    assert np.all(np.isfinite(to_numpy(dx)))
    padded[1, 1] = np.nan  # ... but a NaN in a valid step is reported
    with pytest.raises(ValueError, match="dy must be finite"):
        layer.backward(cache, asarray(xp, padded, "float32"), check_finite=True)


def test_y_is_writable_where_no_cache_shares_it(kind, numpy_path):
    x, _ = _data(np, "float32")
    for layer, options in [
        (make_layer(kind, IN, H, seed=0, xp="numpy"), {"need_cache": False}),
        (make_layer(kind, IN, H, bidirectional=True, seed=0, xp="numpy"), {}),
    ]:
        y, _, _ = layer.forward(x, **options)
        y += 1  # a fresh array: nothing to protect


def test_torch_inference_mode_and_a_changed_bidirectional_y_are_fine():
    torch = pytest.importorskip("torch")
    layer = xrnn.LSTM(IN, H, bidirectional=True, xp="torch", seed=0)
    x = torch.ones(T, N, IN)
    with torch.inference_mode():
        y, _, _ = xrnn.LSTM(IN, H, xp="torch", seed=0).forward(x)
    assert y.shape == (T, N, H)
    y, _, cache = layer.forward(x)
    expected = layer.backward(cache, torch.ones_like(y))[2]
    y.mul_(0)  # the concatenation of both directions: no cache shares it
    for key, value in layer.backward(cache, torch.ones_like(y))[2].items():
        assert torch.equal(value, expected[key]), key


def test_sampling_gives_a_logit_of_minus_infinity_no_weight():
    from array_api_compat import numpy as npx

    from xrnn.training.sampling import _weights

    logits = np.array([0.5, -np.inf, 0.2, 0.5], np.float32)
    for temperature in (1.0, 1e-30, 1e-300):
        w = _weights(logits, temperature, xp=npx)
        assert np.all(np.isfinite(w)) and w[1] == 0 and w[0] == w[3] == 1
