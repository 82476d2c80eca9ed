"""What the layers take beyond their sizes, as ``torch.nn``: constructor order, ``bias``,
``dropout`` (training and eval modes), the LSTM's ``proj_size``, and their bad values.

The forward and backward passes of every option against torch are in
tests/test_layers_vs_torch.py; here, what torch cannot be the oracle of (training-mode
dropout: finite differences with the masks fixed, and the masks' statistics) and the rest.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, layer_class, make_layer, numeric_gradient, to_numpy, torch_class

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------ constructors


@pytest.mark.parametrize(
    "name,args,attributes",
    [
        ("LSTM", (3, 5, 2, False, True, 0.25, True, 2), ("bias", "batch_first", "dropout", "bidirectional")),
        ("GRU", (3, 5, 2, False, True, 0.25, True), ("bias", "batch_first", "dropout", "bidirectional")),
        ("RNN", (3, 5, 2, "relu", False, True, 0.25, True), ("nonlinearity", "bias", "dropout")),
    ],
)
def test_positional_arguments_are_those_of_torch_in_torch_order(name, args, attributes):
    layer = getattr(xrnn, name)(*args, xp="numpy", seed=0)
    module = getattr(torch.nn, name)(*args)
    for attribute in (*attributes, "num_layers", "hidden_size", "input_size"):
        assert getattr(layer, attribute) == getattr(module, attribute), attribute
    assert layer.proj_size == getattr(module, "proj_size", 0)
    assert {k: tuple(v.shape) for k, v in layer.params.items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()
    }
    assert list(layer.params) == list(module.state_dict())


def test_xrnn_own_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        xrnn.LSTM(3, 4, 1, True, False, 0.0, False, 0, "float64")
    with pytest.raises(TypeError):
        xrnn.GRU(3, 4, 1, True, False, 0.0, False, "float64")


@pytest.mark.parametrize("proj_size", [0, 2])
def test_lstm_without_bias_or_with_projection_has_exactly_torch_keys_and_shapes(proj_size):
    layer = xrnn.LSTM(3, 5, 2, bias=False, bidirectional=True, proj_size=proj_size, xp="numpy", seed=0)
    module = torch.nn.LSTM(3, 5, 2, bias=False, bidirectional=True, proj_size=proj_size)
    assert [(k, tuple(v.shape)) for k, v in layer.params.items()] == [
        (k, tuple(v.shape)) for k, v in module.state_dict().items()
    ]
    values = np.concatenate([to_numpy(v).ravel() for v in layer.params.values()])
    assert np.all(np.abs(values) <= 1 / math.sqrt(5))


# ------------------------------------------------------------------ bad values


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, float("nan"), "0.3", True, None])
def test_dropout_outside_zero_to_one_is_a_value_error_naming_it(kind, dropout):
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        make_layer(kind, 3, 4, num_layers=2, dropout=dropout, xp="numpy")


@pytest.mark.parametrize("option", ["bias", "batch_first", "bidirectional"])
@pytest.mark.parametrize("value", ["False", "no", 0, None])
def test_a_flag_that_is_not_a_bool_is_a_type_error_naming_it(kind, option, value):
    with pytest.raises(TypeError, match=f"{option} must be True or False, got {value!r}"):
        make_layer(kind, 3, 4, xp="numpy", **{option: value})


@pytest.mark.parametrize("proj_size", [-1, 4, 5, 2.0, True])
def test_proj_size_negative_or_not_below_hidden_size_is_a_value_error(proj_size):
    with pytest.raises(ValueError, match="proj_size must be"):
        xrnn.LSTM(3, 4, proj_size=proj_size, xp="numpy")


@pytest.mark.parametrize("name", ["RNN", "GRU"])
def test_proj_size_on_rnn_or_gru_is_a_type_error(name):
    with pytest.raises(TypeError, match="proj_size"):
        getattr(xrnn, name)(3, 4, proj_size=2, xp="numpy")


def test_projection_weights_in_a_gru_state_dict_are_a_value_error():
    sd = torch.nn.GRU(3, 4).state_dict() | {"weight_hr_l0": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match="only an LSTM has"):
        xrnn.GRU.from_state_dict(sd, xp="numpy")


def test_a_state_dict_with_biases_in_some_layers_only_is_a_value_error():
    sd = dict(torch.nn.LSTM(3, 4, num_layers=2).state_dict())
    del sd["bias_hh_l1"]
    with pytest.raises(ValueError, match="missing key"):
        xrnn.LSTM.from_state_dict(sd, xp="numpy")


def test_state_of_the_wrong_size_with_a_projection_names_proj_size():
    layer = xrnn.LSTM(3, 4, proj_size=2, xp="numpy", dtype="float64")
    x, h, c = np.zeros((2, 1, 3)), np.zeros((1, 1, 4)), np.zeros((1, 1, 4))
    with pytest.raises(ValueError, match=r"state\[0\] \(h\) must have shape \(1, 1, 2\).*proj_size"):
        layer.forward(x, (h, c))


def test_dropout_with_one_layer_warns_as_torch(kind):
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        make_layer(kind, 3, 4, dropout=0.3, xp="numpy")


def test_train_takes_only_a_bool():
    with pytest.raises(TypeError, match="mode must be True or False"):
        xrnn.GRU(3, 4, xp="numpy").train("eval")


# ------------------------------------------------------------------ modes and dropout


def test_layers_start_in_training_mode_and_switch_as_torch(kind):
    layer = make_layer(kind, 3, 4, num_layers=2, dropout=0.5, xp="numpy")
    assert layer.training is True
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False).training is False


def test_eval_mode_output_is_deterministic_and_that_without_dropout(xp, kind):
    layer = make_layer(
        kind, 3, 4, num_layers=3, dropout=0.5, bidirectional=True, xp=xp, dtype="float64", seed=1
    )
    plain = layer_class(kind)[0].from_state_dict(layer.state_dict(), xp=xp, **layer_class(kind)[1])
    x = asarray(xp, np.random.default_rng(0).standard_normal((5, 2, 3)), "float64")
    layer.eval()
    y1, _, cache = layer.forward(x)
    y2, _, _ = layer.forward(x)
    assert cache.masks == ()
    np.testing.assert_array_equal(to_numpy(y1), to_numpy(y2))
    np.testing.assert_array_equal(to_numpy(y1), to_numpy(plain.forward(x)[0]))


def test_training_mode_masks_zero_a_fraction_p_and_scale_the_rest():
    p, t_steps, n, hidden = 0.3, 40, 50, 8
    layer = xrnn.LSTM(3, hidden, num_layers=3, dropout=p, xp="numpy", dtype="float64", seed=2)
    x = np.random.default_rng(0).standard_normal((t_steps, n, 3))
    _, _, cache = layer.forward(x)
    assert len(cache.masks) == 2
    masks = np.stack(cache.masks)  # (2, T, N, H)
    zeros = np.mean(masks == 0)
    sigma = math.sqrt(p * (1 - p) / masks.size)
    assert abs(zeros - p) < 5 * sigma, zeros
    np.testing.assert_allclose(masks[masks != 0], 1 / (1 - p), rtol=0, atol=1e-15)
    # the layer above reads the layer below's output times its mask
    np.testing.assert_array_equal(cache.scans[1].x, cache.scans[0].y * cache.masks[0])
    np.testing.assert_array_equal(cache.scans[2].x, cache.scans[1].y * cache.masks[1])


def test_masks_come_from_the_layers_generator_the_same_on_every_backend(xp):
    masks = []
    for namespace in ("numpy", xp):
        layer = xrnn.GRU(3, 4, num_layers=2, dropout=0.5, xp=namespace, dtype="float64", seed=7)
        x = asarray(layer.xp, np.ones((6, 5, 3)), "float64")
        first = layer.forward(x)[2].masks[0]
        second = layer.forward(x)[2].masks[0]
        masks.append(to_numpy(first))
        assert not np.array_equal(to_numpy(first), to_numpy(second))  # a fresh mask per forward
    np.testing.assert_array_equal(masks[0], masks[1])


@pytest.mark.parametrize("numpy_path", ["1", "0"], ids=["numba", "generic"])
@pytest.mark.parametrize(
    "kind,options",
    [
        ("lstm", {}),
        ("lstm", {"proj_size": 2, "bias": False}),
        ("gru", {"bidirectional": True}),
        ("rnn_tanh", {}),
    ],
    ids=["lstm", "lstm-proj-nobias", "gru-bi", "rnn"],
)
def test_training_mode_gradients_match_finite_differences_with_the_masks_fixed(
    kind, options, numpy_path, monkeypatch
):
    monkeypatch.setenv("XRNN_NUMBA", numpy_path)
    layer = make_layer(kind, 2, 3, num_layers=3, dropout=0.4, xp="numpy", dtype="float64", seed=3, **options)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 2))
    y0, _, _ = layer.forward(x)
    dy = rng.standard_normal(y0.shape)
    lengths = [4, 2]

    def run():
        layer.generator = np.random.default_rng(11)  # the same masks at every call
        return layer.forward(x, lengths=lengths)

    def loss():
        return float(np.sum(run()[0] * dy))

    _, _, cache = run()
    assert len(cache.masks) == 2 and np.any(cache.masks[0] == 0)
    dx, _, grads = layer.backward(cache, dy)
    assert_close(dx, numeric_gradient(loss, x), tol=1e-7)
    for key in ("weight_ih_l0", "weight_hh_l1", "weight_hr_l0", "bias_hh_l0"):
        if key in layer.params:
            param = layer.params[key] = np.array(layer.params[key])
            expected = numeric_gradient(loss, param)
            assert np.abs(expected).max() > 1e-6, key
            assert_close(grads[key], expected, tol=1e-7)


@pytest.mark.parametrize("numpy_path", ["1", "0"], ids=["numba", "generic"])
@pytest.mark.parametrize("checkpoint", [2, "sqrt"])
def test_checkpointed_gradients_with_projection_and_dropout_equal_those_of_the_full_cache(
    checkpoint, numpy_path, monkeypatch
):
    monkeypatch.setenv("XRNN_NUMBA", numpy_path)
    layer = xrnn.LSTM(
        3, 5, 2, dropout=0.3, bidirectional=True, proj_size=3, xp="numpy", dtype="float64", seed=4
    )
    rng = np.random.default_rng(6)
    x, dy = rng.standard_normal((9, 4, 3)), rng.standard_normal((9, 4, 6))
    results = []
    for ck in (None, checkpoint):
        layer.generator = np.random.default_rng(1)
        y, state, cache = layer.forward(x, lengths=[9, 3, 1, 6], checkpoint=ck)
        results.append((y, *layer.backward(cache, dy, state)))
    (y, dx, (dh, dc), grads), (y_ck, dx_ck, (dh_ck, dc_ck), grads_ck) = results
    for got, want in ((y_ck, y), (dx_ck, dx), (dh_ck, dh), (dc_ck, dc)):
        np.testing.assert_array_equal(got, want)
    for key, value in grads.items():
        assert_close(grads_ck[key], value, tol=1e-13)


# ------------------------------------------------------------------ torch round trips


def test_torch_lstm_with_every_option_loads_gives_its_eval_outputs_and_loads_back(xp):
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 5, num_layers=2, bias=False, dropout=0.3, proj_size=2, bidirectional=True)
    layer = xrnn.LSTM.from_state_dict(module.state_dict(), xp=xp, dropout=0.3)
    assert (layer.proj_size, layer.bias, layer.dropout, layer.num_layers) == (2, False, 0.3, 2)
    module.eval()
    layer.eval()
    rng = np.random.default_rng(0)
    x, lengths = rng.standard_normal((6, 3, 3)).astype("float32"), [6, 2, 4]
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.tensor(lengths), enforce_sorted=False
    )
    out, (h, c) = module(packed)
    y_torch, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=6)
    y, (h_x, c_x), _ = layer.forward(asarray(xp, x, "float32"), lengths=lengths)
    assert tuple(h_x.shape) == (4, 3, 2) and tuple(c_x.shape) == (4, 3, 5)
    for got, want in ((y, y_torch), (h_x, h), (c_x, c)):
        assert_close(got, want.detach().numpy(), xp=xp, dtype="float32")
    back = torch.nn.LSTM(3, 5, num_layers=2, bias=False, dropout=0.3, proj_size=2, bidirectional=True)
    back.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in layer.state_dict().items()})
    for key, value in module.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_dense_state_dict_moves_both_ways_with_torch_linear(xp):
    linear = torch.nn.Linear(4, 3)
    dense = xrnn.Dense.from_state_dict(linear.state_dict(), xp=xp)
    x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype("float32")
    y, _ = dense.forward(asarray(xp, x, "float32"))
    assert_close(y, linear(torch.from_numpy(x)).detach().numpy(), xp=xp, dtype="float32")
    back = torch.nn.Linear(4, 3)
    back.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in dense.state_dict().items()})
    for key, value in linear.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert list(dense.state_dict()) == list(linear.state_dict())


@pytest.mark.parametrize(
    "sd,message",
    [
        ({"weight": np.zeros((3, 4))}, "exactly 'weight' and 'bias'"),
        (
            {"weight": np.zeros((3, 4)), "bias": np.zeros(3), "extra": np.zeros(1)},
            "exactly 'weight' and 'bias'",
        ),
        ({"weight": np.zeros(3), "bias": np.zeros(3)}, "must be 2-d"),
        ({"weight": np.zeros((3, 4)), "bias": np.zeros(4)}, r"bias'\] must have shape \(3,\)"),
    ],
)
def test_dense_from_a_bad_state_dict_is_a_value_error(sd, message):
    with pytest.raises(ValueError, match=message):
        xrnn.Dense.from_state_dict(sd, xp="numpy")


def test_exported_weights_with_options_give_xrnn_outputs_in_torch(xp):
    (layer_cls, _), (torch_cls, _) = layer_class("lstm"), torch_class("lstm")
    layer = layer_cls(3, 4, 2, False, False, 0.2, True, 3, xp=xp, dtype="float64", seed=3).eval()
    module = torch_cls(3, 4, 2, False, False, 0.2, True, 3, dtype=torch.float64).eval()
    module.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    y, _, _ = layer.forward(xp.asarray(x))
    assert_close(y, module(torch.from_numpy(x))[0].detach().numpy(), xp=xp, dtype="float64")
