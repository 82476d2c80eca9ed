"""SequenceModel's layer options, head="last", predict, and torch modules of the same structure."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
import xrnn.classic
from helpers import asarray, assert_close, to_numpy
from test_gradcheck import numeric_gradient

LENGTHS = [5, 2, 4]


def inputs(xp, t=5, n=3, features=2, seed=0, dtype="float64"):
    return asarray(xp, np.random.default_rng(seed).standard_normal((t, n, features)), dtype)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_head_last_reads_the_last_valid_step_forward_and_step_0_backward(xp, cell, bidirectional):
    model = xrnn.SequenceModel(cell, 2, 3, 4, num_layers=2, bidirectional=bidirectional, head="last",
                               xp=xp, dtype="float64", seed=0)  # fmt: skip
    x = inputs(xp)
    z, _, _ = model.forward(x, lengths=LENGTHS)
    y = to_numpy(model.rnn.forward(x, lengths=LENGTHS)[0])  # (T, N, D*H), by hand from here
    rows = []
    for n, length in enumerate(LENGTHS):
        last = y[length - 1, n, :3]
        rows.append(np.concatenate([last, y[0, n, 3:]]) if bidirectional else last)
    w, b = (to_numpy(model.head.params[k]) for k in ("weight", "bias"))
    assert_close(z, np.stack(rows) @ w.T + b, xp=xp, dtype="float64")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_head_last_gradients_agree_with_finite_differences(cell):
    model = xrnn.SequenceModel(cell, 2, 3, 2, num_layers=2, bidirectional=True, head="last", xp="numpy",
                               dtype="float64", seed=0)  # fmt: skip
    x = inputs(np)
    dz = np.random.default_rng(1).standard_normal((3, 2))
    params = model.params

    def loss():
        model.set_params(params)
        return float(np.sum(model.forward(x, lengths=LENGTHS)[0] * dz))

    _, _, cache = model.forward(x, lengths=LENGTHS)
    dx, grads = model.backward(cache, dz)
    assert np.allclose(dx, numeric_gradient(loss, x), atol=1e-7)
    for key, value in params.items():
        assert np.allclose(grads[key], numeric_gradient(loss, value), atol=1e-7), key


def test_batch_first_is_the_same_model_on_transposed_data(xp):
    kw = {"num_layers": 2, "bidirectional": True, "xp": xp, "dtype": "float64", "seed": 3}
    time_major = xrnn.SequenceModel("lstm", 2, 3, 4, **kw)
    batch_first = xrnn.SequenceModel("lstm", 2, 3, 4, batch_first=True, **kw)
    x = inputs(xp)
    z, _, cache = time_major.forward(x, lengths=LENGTHS)
    zb, _, cache_b = batch_first.forward(xp.permute_dims(x, (1, 0, 2)), lengths=LENGTHS)
    assert_close(zb, to_numpy(z).transpose(1, 0, 2), xp=xp, dtype="float64")
    dz = xp.ones_like(z)
    _, grads = time_major.backward(cache, dz)
    _, grads_b = batch_first.backward(cache_b, xp.permute_dims(dz, (1, 0, 2)))
    for key, g in grads.items():
        assert_close(grads_b[key], to_numpy(g), xp=xp, dtype="float64")


@pytest.mark.parametrize("head", ["every", "last"])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_predict_equals_forward(xp, head, batch_size):
    model = xrnn.SequenceModel("gru", 2, 3, 4, bidirectional=True, head=head, xp=xp, dtype="float64", seed=0)
    x = inputs(xp)
    z, _, _ = model.forward(x, lengths=LENGTHS)
    predicted = model.predict(x, lengths=LENGTHS, batch_size=batch_size)
    assert_close(predicted, to_numpy(z), xp=xp, dtype="float64", tol=1e-13)
    proba = model.predict_proba(x, lengths=LENGTHS, batch_size=batch_size)
    assert_close(proba, to_numpy(xrnn.softmax(z)), xp=xp, dtype="float64")
    assert np.allclose(to_numpy(proba).sum(axis=-1), 1.0)


def test_predict_keeps_no_cache(monkeypatch):
    model = xrnn.SequenceModel("lstm", 2, 3, 4, xp="numpy", seed=0)
    asked = []
    forward = model.rnn.forward

    def spy(*args, **kwargs):
        asked.append(kwargs.get("need_cache", True))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.rnn, "forward", spy)
    model.predict(inputs(np, dtype="float32"), batch_size=2)
    assert asked == [False, False]


def test_softmax_is_the_classic_softmax_over_the_last_axis(xp):
    z = asarray(xp, np.random.default_rng(0).standard_normal((3, 4, 5)) * 50, "float64")
    expected = to_numpy(xrnn.classic.softmax(xp.permute_dims(z, (2, 0, 1))))  # classes first
    assert_close(xrnn.softmax(z), expected.transpose(1, 2, 0), xp=xp, dtype="float64")
    assert_close(xrnn.softmax(z, axis=0), to_numpy(xrnn.classic.softmax(z)), xp=xp, dtype="float64")


@pytest.mark.parametrize(
    ("cell", "options"),
    [
        ("rnn", {}),
        ("lstm", {}),
        ("gru", {}),
        ("lstm", {"proj_size": 2, "bias": False}),
        ("gru", {"bias": False}),
    ],
)
def test_a_torch_module_with_rnn_and_head_loads_and_agrees(cell, options):
    torch = pytest.importorskip("torch")
    width = 2 * options.get("proj_size", 3)

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            kinds = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
            self.rnn = kinds[cell](2, 3, num_layers=2, bidirectional=True, batch_first=True, **options)
            self.head = torch.nn.Linear(width, 4)

        def forward(self, x, lengths):
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, lengths, batch_first=True, enforce_sorted=False
            )
            _, state = self.rnn(packed)
            h = state[0] if cell == "lstm" else state
            return self.head(torch.cat([h[-2], h[-1]], dim=1))

    torch.manual_seed(0)
    module = Classifier().double()
    model = xrnn.SequenceModel.from_state_dict(
        module.state_dict(), cell, head="last", batch_first=True, xp="numpy", dtype="float64"
    )
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    expected = module(torch.from_numpy(x), torch.tensor(LENGTHS)).detach().numpy()
    assert np.allclose(model.predict(x, lengths=LENGTHS), expected, rtol=0, atol=1e-12)
    assert set(model.state_dict()) == set(module.state_dict())


def test_from_state_dict_refuses_other_keys_and_shapes():
    sd = xrnn.SequenceModel("gru", 2, 3, 4, xp="numpy").state_dict()
    with pytest.raises(ValueError, match=r"unexpected \['decoder.weight'\], missing \['head.weight'\]"):
        xrnn.SequenceModel.from_state_dict(
            {k: v for k, v in sd.items() if k != "head.weight"} | {"decoder.weight": sd["head.weight"]}, "gru"
        )
    with pytest.raises(ValueError, match=r"state_dict\['head.bias'\] must have shape \(4,\)"):
        xrnn.SequenceModel.from_state_dict(sd | {"head.bias": np.zeros(5, np.float32)}, "gru")
    expected = "cell must be one of rnn, lstm, gru, mingru, minlstm or a cell of xrnn.cells.define, got 'GRU'"
    with pytest.raises(ValueError, match=expected):
        xrnn.SequenceModel.from_state_dict(sd, "GRU")


def test_layer_options_reach_the_layer_and_the_configuration_rebuilds_the_model():
    model = xrnn.SequenceModel("rnn", 2, 3, 4, num_layers=2, bidirectional=True, batch_first=True,
                               head="last", nonlinearity="relu", xp="numpy", seed=0)  # fmt: skip
    assert (model.rnn.nonlinearity, model.rnn.num_layers, model.rnn.bidirectional) == ("relu", 2, True)
    assert model.rnn.batch_first and model.head.in_features == 6
    config = model.config
    assert config["nonlinearity"] == "relu" and config["head"] == "last"
    rebuilt = xrnn.SequenceModel(**config, xp="numpy", seed=0)
    assert rebuilt.config == config
    for key, value in model.params.items():
        assert np.array_equal(rebuilt.params[key], value)


def test_train_and_eval_set_the_mode_of_the_layer():
    model = xrnn.SequenceModel("lstm", 2, 3, 4, num_layers=2, dropout=0.5, xp="numpy")
    assert model.training and model.rnn.training
    assert model.eval() is model and not model.training and not model.rnn.training
    assert model.train() is model and model.training and model.rnn.training


def test_predict_runs_without_dropout_and_restores_the_mode():
    model = xrnn.SequenceModel("gru", 2, 8, 4, num_layers=2, dropout=0.5, xp="numpy", dtype="float64", seed=0)
    x = inputs(np)
    predicted = model.predict(x)
    assert model.training
    dropped, _, _ = model.forward(x)  # training mode: a dropout mask between the layers
    assert not np.allclose(dropped, predicted)
    assert np.array_equal(model.eval().forward(x)[0], predicted)


@pytest.mark.parametrize("head", ["every", "last"])
def test_options_of_the_layer_reach_it_and_the_head_reads_the_projection(head):
    model = xrnn.SequenceModel("lstm", 2, 5, 4, num_layers=2, bidirectional=True, bias=False, dropout=0.25,
                               proj_size=3, head=head, xp="numpy", dtype="float64", seed=0)  # fmt: skip
    assert (model.rnn.bias, model.rnn.dropout, model.rnn.proj_size) == (False, 0.25, 3)
    assert model.head.in_features == 6 and not any("bias_" in k for k in model.params if k.startswith("rnn."))
    assert {k: model.config[k] for k in ("bias", "dropout", "proj_size")} == {"bias": False, "dropout": 0.25,
                                                                          "proj_size": 3}  # fmt: skip
    model.eval()  # no dropout: the gradients are those of a fixed function
    x, params = inputs(np), model.params
    dz = np.random.default_rng(1).standard_normal(model.forward(x, lengths=LENGTHS)[0].shape)

    def loss():
        model.set_params(params)
        return float(np.sum(model.forward(x, lengths=LENGTHS)[0] * dz))

    _, _, cache = model.forward(x, lengths=LENGTHS)
    dx, grads = model.backward(cache, dz)
    assert np.allclose(dx, numeric_gradient(loss, x), atol=1e-7)
    for key, value in params.items():
        assert np.allclose(grads[key], numeric_gradient(loss, value), atol=1e-7), key


def test_state_dict_keys_are_the_params_keys(xp):
    model = xrnn.SequenceModel("lstm", 2, 3, 4, bidirectional=True, xp=xp)
    assert model.state_dict().keys() == model.params.keys()
    assert all(array_namespace(v) is xp for v in model.state_dict().values())


BAD = {
    "option_of_another_layer": (lambda: xrnn.SequenceModel("lstm", 2, 3, 4, nonlinearity="relu"), TypeError,
                                r"the lstm layer takes no option 'nonlinearity'; its further options are"),
    "head": (lambda: xrnn.SequenceModel("gru", 2, 3, 4, head="first"), ValueError,
             "head must be 'every' or 'last', got 'first'"),
    "bidirectional": (lambda: xrnn.SequenceModel("gru", 2, 3, 4, bidirectional="yes"), TypeError,
                      "bidirectional must be True or False, got 'yes'"),
    "output_size": (lambda: xrnn.SequenceModel("gru", 2, 3, 0), ValueError,
                    "output_size must be a positive int, got 0"),
    "predict_batch_size": (lambda: xrnn.SequenceModel("gru", 2, 3, 4, xp="numpy").predict(
        np.zeros((3, 2, 2), np.float32), batch_size=0), ValueError,
        "batch_size must be a positive int, got 0"),
    "predict_dims": (lambda: xrnn.SequenceModel("gru", 2, 3, 4, xp="numpy").predict(
        np.zeros((3, 2), np.float32)), ValueError,
        r"x must have 3 dimensions \(T, N, input_size\), got shape \(3, 2\)"),
    "predict_lengths": (lambda: xrnn.SequenceModel("gru", 2, 3, 4, xp="numpy").predict(
        np.zeros((3, 2, 2), np.float32), lengths=[1, 2, 3], batch_size=1), ValueError,
        r"lengths must have one entry per sequence \(N=2\), got 3"),
    "mode": (lambda: xrnn.SequenceModel("gru", 2, 3, 4).train("no"), TypeError,
             "mode must be True or False, got 'no'"),
    "dz_of_head_last": (lambda: _backward_last(np.zeros((5, 3, 4))), ValueError,
                        r"dz must have shape \(3, 4\) like forward's z"),
}  # fmt: skip


def test_task_training_sampling_and_gradient_flow_refuse_models_they_cannot_read():
    last = xrnn.SequenceModel("rnn", 2, 3, 1, head="last", xp="numpy")
    batch_first = xrnn.SequenceModel("rnn", 3, 3, 3, batch_first=True, xp="numpy")
    task = xrnn.AddingTask(seq_len=4, batch_size=2, xp="numpy")
    pattern = "must have head='every' and batch_first=False, got head="
    with pytest.raises(ValueError, match="xrnn.train reads the outputs at every step"):
        xrnn.train(last, task, xrnn.SGD(0.1), steps=1)
    with pytest.raises(ValueError, match=pattern):
        xrnn.sample(batch_first, [0], 3)
    with pytest.raises(ValueError, match=pattern):
        xrnn.gradient_by_step(last, np.zeros((4, 2, 2), np.float32))


def _backward_last(dz):
    model = xrnn.SequenceModel("gru", 2, 3, 4, head="last", xp="numpy", dtype="float64")
    _, _, cache = model.forward(inputs(np))
    return model.backward(cache, dz)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_to_the_model_is_a_clear_error(case):
    call, error, pattern = BAD[case]
    with pytest.raises(error, match=pattern):
        call()
