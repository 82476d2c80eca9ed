"""The bad-input catalogue: every misuse of a public function and its expected outcome.

Two tables. In the error tables each row is one rule: the call, the exception type,
and a pattern of its message (the argument's name, what was expected, what came).
In the table of inputs that must work, each row is an unusual but valid input
(a non-contiguous view, a transposed or read-only array, lengths of another kind)
with the result it must give, and the input must be left unchanged.

Empty inputs are errors, by design: T=0 or N=0 (m=0) raises ValueError.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import xrnn
from xrnn import classic

torch = pytest.importorskip("torch")

N_X, N_A, N_Y, M, T_X = 3, 5, 2, 4, 6
RNG = np.random.default_rng(0)


def rnn_params(**override):
    p = {
        "Wax": RNG.standard_normal((N_A, N_X)),
        "Waa": RNG.standard_normal((N_A, N_A)),
        "Wya": RNG.standard_normal((N_Y, N_A)),
        "ba": np.zeros((N_A, 1)),
        "by": np.zeros((N_Y, 1)),
    }
    p.update(override)
    return {k: v for k, v in p.items() if v is not None}


def lstm_params(**override):
    p = {f"W{g}": RNG.standard_normal((N_A, N_A + N_X)) for g in "fico"}
    p.update({f"b{g}": np.zeros((N_A, 1)) for g in "fico"})
    p.update({"Wy": RNG.standard_normal((N_Y, N_A)), "by": np.zeros((N_Y, 1))})
    p.update(override)
    return p


X = RNG.standard_normal((N_X, M, T_X))
A0 = RNG.standard_normal((N_A, M))
RNN_CACHES = classic.rnn_forward(X, A0, rnn_params())[2]
LSTM_CACHES = classic.lstm_forward(X, A0, lstm_params())[3]

CLASSIC_CASES = {
    "x_wrong_ndim": (
        lambda: classic.rnn_forward(X[:, :, 0], A0, rnn_params()),
        ValueError,
        r"x must have 3 dimensions \(n_x, m, T_x\), got shape \(3, 4\)",
    ),
    "xt_wrong_ndim": (
        lambda: classic.rnn_cell_forward(X, A0, rnn_params()),
        ValueError,
        r"xt must have 2 dimensions \(n_x, m\), got shape \(3, 4, 6\)",
    ),
    "a0_batch_differs_from_x": (
        lambda: classic.rnn_forward(X, A0[:, :3], rnn_params()),
        ValueError,
        r"a0 must have shape \(\*, 4\) \(n_a, m\), got shape \(5, 3\)",
    ),
    "c_prev_differs_from_a_prev": (
        lambda: classic.lstm_cell_forward(X[:, :, 0], A0, A0[:4], lstm_params()),
        ValueError,
        r"c_prev must have shape \(5, 4\) \(n_a, m\), got shape \(4, 4\)",
    ),
    "Wax_inconsistent_with_x": (
        lambda: classic.rnn_forward(X, A0, rnn_params(Wax=np.zeros((N_A, N_X + 1)))),
        ValueError,
        r"parameters\['Wax'\] must have shape \(5, 3\) \(n_a, n_x\), got shape \(5, 4\)",
    ),
    "Wf_not_on_concat": (
        lambda: classic.lstm_forward(X, A0, lstm_params(Wf=np.zeros((N_A, N_X)))),
        ValueError,
        r"parameters\['Wf'\] must have shape \(5, 8\) \(n_a, n_a \+ n_x\), got shape \(5, 3\)",
    ),
    "bias_not_a_column": (
        lambda: classic.rnn_forward(X, A0, rnn_params(ba=np.zeros(N_A))),
        ValueError,
        r"parameters\['ba'\] must have 2 dimensions \(n_a, 1\), got shape \(5,\)",
    ),
    "missing_parameter": (
        lambda: classic.rnn_forward(X, A0, rnn_params(Waa=None)),
        ValueError,
        r"parameters is missing key\(s\) \['Waa'\]",
    ),
    "parameters_not_a_dict": (
        lambda: classic.rnn_forward(X, A0, [1, 2]),
        TypeError,
        r"parameters must be a dict, got list",
    ),
    "integer_x": (
        lambda: classic.rnn_forward(X.astype(np.int64), A0, rnn_params()),
        TypeError,
        r"x must have a real floating dtype, got int64",
    ),
    "complex_a0": (
        lambda: classic.rnn_forward(X, A0.astype(np.complex128), rnn_params()),
        TypeError,
        r"a0 must have a real floating dtype, got complex128",
    ),
    "mixed_float_dtypes": (
        lambda: classic.rnn_forward(X, A0.astype(np.float32), rnn_params()),
        TypeError,
        r"all arrays must share one dtype: x is float64 but a0 is float32",
    ),
    "mixed_namespaces": (
        lambda: classic.rnn_forward(X, torch.from_numpy(A0), rnn_params()),
        TypeError,
        r"all arrays must come from one namespace: x is numpy but a0 is torch",
    ),
    "mixed_devices": (
        lambda: classic.rnn_forward(
            torch.from_numpy(X),
            torch.from_numpy(A0).to("meta"),
            {k: torch.from_numpy(v) for k, v in rnn_params().items()},
        ),
        ValueError,
        r"all arrays must sit on one device: x is on cpu but a0 is on meta",
    ),
    "list_instead_of_array": (
        lambda: classic.rnn_forward(X.tolist(), A0, rnn_params()),
        TypeError,
        r"x must be an array \(numpy, cupy, torch, jax or array_api_strict\), got list",
    ),
    "da_longer_than_forward": (
        lambda: classic.rnn_backward(np.zeros((N_A, M, T_X + 2)), RNN_CACHES),
        ValueError,
        r"da must have between 1 and T_x=6 steps",
    ),
    "da_wrong_batch": (
        lambda: classic.lstm_backward(np.zeros((N_A, M + 1, T_X)), LSTM_CACHES),
        ValueError,
        r"da must have shape \(5, 4, \*\) \(n_a, m, T\), got shape \(5, 5, 6\)",
    ),
    "da_next_wrong_ndim": (
        lambda: classic.rnn_cell_backward(np.zeros((N_A, M, 1)), RNN_CACHES[0][0]),
        ValueError,
        r"da_next must have 2 dimensions \(n_a, m\), got shape \(5, 4, 1\)",
    ),
    "da_wrong_dtype": (
        lambda: classic.rnn_backward(np.zeros((N_A, M, T_X), np.float32), RNN_CACHES),
        TypeError,
        r"all arrays must share one dtype: cache is float64 but da is float32",
    ),
    "caches_not_from_forward": (
        lambda: classic.rnn_backward(np.zeros((N_A, M, T_X)), RNN_CACHES[0]),
        TypeError,
        r"caches must be the pair \(list_of_cell_caches, x\)",
    ),
    "lstm_cache_to_rnn_backward": (
        lambda: classic.rnn_cell_backward(np.zeros((N_A, M)), LSTM_CACHES[0][0]),
        TypeError,
        r"cache must be the 4-tuple returned by the forward function, got tuple of length 10",
    ),
    "boolean_x": (
        lambda: classic.rnn_forward(X > 0, A0, rnn_params()),
        TypeError,
        r"x must have a real floating dtype, got bool",
    ),
    "integer_parameter": (
        lambda: classic.lstm_forward(X, A0, lstm_params(bo=np.zeros((N_A, 1), np.int32))),
        TypeError,
        r"parameters\['bo'\] must have a real floating dtype, got int32",
    ),
    "scalar_instead_of_a0": (
        lambda: classic.rnn_forward(X, 0.0, rnn_params()),
        TypeError,
        r"a0 must be an array .* got float",
    ),
    "no_time_steps": (
        lambda: classic.lstm_forward(X[:, :, :0], A0, lstm_params()),
        ValueError,
        r"x must have at least one time step, got shape \(3, 4, 0\)",
    ),
    "no_examples": (
        lambda: classic.rnn_forward(X[:, :0], A0[:, :0], rnn_params()),
        ValueError,
        r"x must hold at least one example \(m >= 1\), got shape \(3, 0, 6\)",
    ),
    "lstm_caches_to_rnn_backward": (
        lambda: classic.rnn_backward(np.zeros((N_A, M, T_X)), LSTM_CACHES),
        TypeError,
        r"caches\[0\]\[0\] must be the 4-tuple returned by the forward function, got tuple of length 10",
    ),
    "softmax_of_a_list": (lambda: classic.softmax([1.0, 2.0]), TypeError, r"x must be an array"),
    "sigmoid_of_integers": (
        lambda: classic.sigmoid(np.arange(3)),
        TypeError,
        r"x must have a real floating dtype, got int64",
    ),
}


@pytest.mark.parametrize("case", list(CLASSIC_CASES))
def test_classic_rejects_bad_input_with_a_message_naming_the_argument(case):
    call, error, message = CLASSIC_CASES[case]
    with pytest.raises(error, match=message):
        call()


LSTM = xrnn.LSTM(N_X, N_A, num_layers=2, xp="numpy", dtype="float64", seed=0)
GRU_BI = xrnn.GRU(N_X, N_A, bidirectional=True, xp="numpy", dtype="float64", seed=0)
XL = RNG.standard_normal((T_X, M, N_X))
STATE = (np.zeros((2, M, N_A)), np.zeros((2, M, N_A)))
_, _, LSTM_CACHE = LSTM.forward(XL, STATE)


def _changed_params_backward():
    layer = xrnn.RNN(N_X, N_A, xp="numpy", dtype="float64", seed=0)
    _, _, cache = layer.forward(XL)
    layer.params = {k: v * 0.5 for k, v in layer.params.items()}
    layer.backward(cache, np.zeros((T_X, M, N_A)))


def _replaced_param_of_wrong_shape(cls):
    layer = cls(N_X, N_A, xp="numpy", dtype="float64", seed=0)
    layer.params["weight_hh_l0"] = np.ones((layer.params["weight_hh_l0"].shape[0], N_A + 2))
    layer.forward(XL)


LAYER_CASES = {
    **{
        f"{cls.__name__.lower()}_param_replaced_with_a_wrong_shape": (
            lambda cls=cls: _replaced_param_of_wrong_shape(cls),
            ValueError,
            r"params\['weight_hh_l0'\] must have shape \(\d+, 5\) \(as in torch.nn's state_dict\), "
            r"got shape \(\d+, 7\)",
        )
        for cls in (xrnn.RNN, xrnn.LSTM, xrnn.GRU)
    },
    "x_wrong_rank": (
        lambda: LSTM.forward(XL[0]),
        ValueError,
        r"x must have 3 dimensions \(T, N, input_size\), got shape \(4, 3\)",
    ),
    "x_wrong_feature_size": (
        lambda: LSTM.forward(XL[:, :, :2]),
        ValueError,
        r"x must have shape \(\*, \*, 3\) \(T, N, input_size\), got shape \(6, 4, 2\)",
    ),
    "x_no_steps": (lambda: LSTM.forward(XL[:0]), ValueError, r"x must hold at least one step"),
    "x_wrong_dtype": (
        lambda: LSTM.forward(XL.astype(np.float32)),
        TypeError,
        r"all arrays must share one dtype: parameters is float64 but x is float32",
    ),
    "x_other_namespace": (
        lambda: LSTM.forward(torch.from_numpy(XL)),
        TypeError,
        r"x is torch but parameters is numpy",
    ),
    "lstm_state_not_a_pair": (
        lambda: LSTM.forward(XL, STATE[0]),
        TypeError,
        r"state of an LSTM must be a tuple \(h, c\), got ndarray",
    ),
    "state_wrong_shape": (
        lambda: LSTM.forward(XL, (STATE[0], np.zeros((1, M, N_A)))),
        ValueError,
        r"state\[1\] \(c\) must have shape \(2, 4, 5\) \(num_layers \* num_directions, N, hidden_size\), "
        r"got shape \(1, 4, 5\)",
    ),
    "gru_state_wrong_batch": (
        lambda: GRU_BI.forward(XL, np.zeros((2, M + 1, N_A))),
        ValueError,
        r"state must have shape \(2, 4, 5\)",
    ),
    "lengths_wrong_count": (
        lambda: GRU_BI.forward(XL, lengths=[6, 5]),
        ValueError,
        r"lengths must have one entry per sequence \(N=4\), got 2",
    ),
    "lengths_not_integers": (
        lambda: GRU_BI.forward(XL, lengths=[6, 5.0, 2, 1]),
        TypeError,
        r"lengths must hold integers, got 5.0",
    ),
    "lengths_float_array": (
        lambda: GRU_BI.forward(XL, lengths=np.array([6.0, 5, 2, 1])),
        TypeError,
        r"lengths must hold integers, got dtype float64",
    ),
    "lengths_zero": (
        lambda: GRU_BI.forward(XL, lengths=[6, 0, 2, 1]),
        ValueError,
        r"lengths must lie in 1..T=6, got 0",
    ),
    "lengths_negative": (
        lambda: GRU_BI.forward(XL, lengths=[6, -1, 2, 1]),
        ValueError,
        r"lengths must lie in 1..T=6, got -1",
    ),
    "lengths_beyond_T": (
        lambda: GRU_BI.forward(XL, lengths=[7, 1, 2, 1]),
        ValueError,
        r"lengths must lie in 1..T=6, got 7",
    ),
    "lengths_2d": (
        lambda: GRU_BI.forward(XL, lengths=np.ones((4, 1), dtype=np.int64)),
        ValueError,
        r"lengths must have 1 dimension \(N,\), got shape \(4, 1\)",
    ),
    "dy_wrong_shape": (
        lambda: LSTM.backward(LSTM_CACHE, np.zeros((T_X, M, N_A + 1))),
        ValueError,
        r"dy must have shape \(6, 4, 5\) \(T, N, D\*H\) like forward's y, got shape \(6, 4, 6\)",
    ),
    "dstate_wrong_shape": (
        lambda: LSTM.backward(LSTM_CACHE, None, (np.zeros((1, M, N_A)), None)),
        ValueError,
        r"dstate\[0\] \(h\) must have shape \(2, 4, 5\)",
    ),
    "cache_from_another_layer": (
        lambda: GRU_BI.backward(LSTM_CACHE, None),
        ValueError,
        r"cache was made by another layer",
    ),
    "cache_not_a_cache": (
        lambda: LSTM.backward((1, 2), None),
        TypeError,
        r"cache must be the LayerCache returned by forward, got tuple",
    ),
    "cache_after_params_changed": (
        _changed_params_backward,
        ValueError,
        r"cache was made with other parameters than the layer holds now",
    ),
    "state_dict_missing_key": (
        lambda: xrnn.LSTM.from_state_dict({k: v for k, v in LSTM.state_dict().items() if k != "bias_hh_l1"}),
        ValueError,
        r"state_dict is missing key\(s\) \['bias_hh_l1'\]",
    ),
    "state_dict_extra_key": (
        lambda: xrnn.LSTM.from_state_dict({**LSTM.state_dict(), "weight_xx_l0": A0}),
        ValueError,
        r"state_dict has unexpected key\(s\) \['weight_xx_l0'\]",
    ),
    "state_dict_misshaped": (
        lambda: xrnn.LSTM.from_state_dict({**LSTM.state_dict(), "bias_ih_l0": np.zeros(3)}),
        ValueError,
        r"state_dict\['bias_ih_l0'\] must have shape \(20,\) .* got \(3,\)",
    ),
    "state_dict_of_a_gru_into_lstm": (
        lambda: xrnn.LSTM.from_state_dict(GRU_BI.state_dict()),
        ValueError,
        r"state_dict\['weight_ih_l0'\] must have shape \(20, 3\)",
    ),
    "unknown_backend": (
        lambda: xrnn.LSTM(3, 4, xp="tensorflow"),
        ValueError,
        r"unknown backend 'tensorflow': expected one of numpy, cupy, torch, jax, array_api_strict",
    ),
    "bad_hidden_size": (lambda: xrnn.GRU(3, 0), ValueError, r"hidden_size must be a positive int, got 0"),
    "bad_nonlinearity": (
        lambda: xrnn.RNN(3, 4, nonlinearity="sigmoid"),
        ValueError,
        r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'",
    ),
    "x_boolean": (lambda: LSTM.forward(XL > 0), TypeError, r"x must have a real floating dtype, got bool"),
    "x_a_list": (lambda: LSTM.forward(XL.tolist()), TypeError, r"x must be an array .* got list"),
    "x_on_another_device": (
        lambda: xrnn.GRU(N_X, N_A, xp="torch", seed=0).forward(torch.zeros((2, 1, N_X), device="meta")),
        ValueError,
        r"all arrays must sit on one device: x is on meta but parameters is on cpu",
    ),
    "state_of_integers": (
        lambda: GRU_BI.forward(XL, np.zeros((2, M, N_A), np.int64)),
        TypeError,
        r"state must have a real floating dtype, got int64",
    ),
    "lengths_a_string": (
        lambda: GRU_BI.forward(XL, lengths="6521"),
        TypeError,
        r"lengths must be a sequence",
    ),
    "lengths_of_booleans": (
        lambda: GRU_BI.forward(XL, lengths=[True, 2, 3, 1]),
        TypeError,
        r"lengths must hold integers, got True",
    ),
    "dstate_not_a_pair_for_lstm": (
        lambda: LSTM.backward(LSTM_CACHE, None, np.zeros((2, M, N_A))),
        TypeError,
        r"dstate of an LSTM must be a tuple \(h, c\), got ndarray",
    ),
    "dy_integer": (
        lambda: LSTM.backward(LSTM_CACHE, np.zeros((T_X, M, N_A), np.int64)),
        TypeError,
        r"dy must have a real floating dtype, got int64",
    ),
    "x_no_sequences": (
        lambda: LSTM.forward(XL[:, :0]),
        ValueError,
        r"x must hold at least one step of one sequence",
    ),
    "bad_dtype": (
        lambda: xrnn.RNN(3, 4, dtype="float16"),
        ValueError,
        r"dtype must be 'float32' or 'float64', got 'float16'",
    ),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_api_rejects_bad_input_with_a_message_naming_the_argument(case):
    call, error, message = LAYER_CASES[case]
    with pytest.raises(error, match=message):
        call()


def test_uninstalled_backend_is_a_clear_error(monkeypatch):
    from xrnn._util import namespaces as _backend

    monkeypatch.setitem(_backend.BACKENDS, "cupy", "xrnn_tests_no_such_module")
    with pytest.raises(ValueError, match=r"backend 'cupy' is not installed"):
        xrnn.LSTM(3, 4, xp="cupy")
    monkeypatch.setenv("XRNN_BACKEND", "cupy")
    with pytest.raises(ValueError, match=r"backend 'cupy' is not installed"):
        xrnn.default_namespace()


def test_layer_leaves_its_inputs_unchanged():
    x, state = XL.copy(), (np.ones((2, M, N_A)), np.ones((2, M, N_A)))
    dy, lengths = RNG.standard_normal((T_X, M, N_A)), np.array([6, 2, 3, 1])
    params = {k: v.copy() for k, v in LSTM.params.items()}
    _, _, cache = LSTM.forward(x, state, lengths=lengths)
    LSTM.backward(cache, dy, state)
    assert np.array_equal(x, XL) and all(np.all(s == 1.0) for s in state)
    assert np.array_equal(lengths, [6, 2, 3, 1])
    assert all(np.array_equal(params[k], LSTM.params[k]) for k in params)


def _transposed(a):
    """The same values as ``a`` in a Fortran-ordered (transposed) buffer."""
    return np.asfortranarray(a)


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


WORKING_CASES = {
    "strided_view_x": (lambda v: LSTM.forward(v(np.repeat(XL, 2, axis=1))[:, ::2]), lambda: LSTM.forward(XL)),
    "fortran_ordered_x": (lambda v: LSTM.forward(v(_transposed(XL))), lambda: LSTM.forward(XL)),
    "read_only_x_and_state": (
        lambda v: LSTM.forward(v(_read_only(XL)), tuple(v(_read_only(s)) for s in STATE)),
        lambda: LSTM.forward(XL, STATE),
    ),
    "read_only_dy": (
        lambda v: LSTM.backward(LSTM_CACHE, v(_read_only(np.ones((T_X, M, N_A))))),
        lambda: LSTM.backward(LSTM_CACHE, np.ones((T_X, M, N_A))),
    ),
    "lengths_int32_array": (
        lambda v: GRU_BI.forward(XL, lengths=v(np.array([6, 2, 3, 1], np.int32))),
        lambda: GRU_BI.forward(XL, lengths=[6, 2, 3, 1]),
    ),
    "lengths_torch_tensor": (
        lambda v: GRU_BI.forward(XL, lengths=v(torch.tensor([6, 2, 3, 1]))),
        lambda: GRU_BI.forward(XL, lengths=[6, 2, 3, 1]),
    ),
    "lengths_all_full": (lambda v: GRU_BI.forward(XL, lengths=v((6, 6, 6, 6))), lambda: GRU_BI.forward(XL)),
    "lstm_state_as_a_list": (lambda v: LSTM.forward(XL, v([*STATE])), lambda: LSTM.forward(XL, STATE)),
    "classic_transposed_parameters": (
        lambda v: classic.rnn_forward(X, A0, {**RNN_P, "Waa": v(np.asfortranarray(RNN_P["Waa"]))}),
        lambda: classic.rnn_forward(X, A0, RNN_P),
    ),
    "classic_read_only_x": (
        lambda v: classic.lstm_forward(v(_read_only(X)), A0, LSTM_P),
        lambda: classic.lstm_forward(X, A0, LSTM_P),
    ),
    "classic_strided_a0": (
        lambda v: classic.rnn_forward(X, v(np.repeat(A0, 2, axis=1))[:, ::2], RNN_P),
        lambda: classic.rnn_forward(X, A0, RNN_P),
    ),
}
RNN_P = rnn_params()
LSTM_P = lstm_params()


def _arrays(result):
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _arrays(r)]
    if isinstance(result, dict):
        return [a for r in result.values() for a in _arrays(r)]
    return [result] if isinstance(result, np.ndarray) else []


@pytest.mark.parametrize("case", list(WORKING_CASES))
def test_unusual_but_valid_inputs_give_the_plain_result_and_stay_unchanged(case):
    call, reference = WORKING_CASES[case]
    given = []

    def keep(a):
        given.append((a, np.array(a, copy=True) if isinstance(a, np.ndarray) else a))
        return a

    got, want = _arrays(call(keep)), _arrays(reference())
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    for a, before in given:
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, before)


DENSE = xrnn.Dense(4, 3, xp="numpy", dtype="float64", seed=0)
MODEL = xrnn.SequenceModel("lstm", 2, 3, 1, xp="numpy", seed=0)
ADAM = xrnn.Adam()

TRAINING_CASES = {
    "dense_wrong_features": (lambda: DENSE.forward(np.ones((5, 2, 3))), ValueError, r"h must have shape"),
    "dense_integer_input": (
        lambda: DENSE.forward(np.ones((5, 2, 4), dtype=np.int64)),
        TypeError,
        r"h must have a real floating dtype, got int64",
    ),
    "mse_shapes_differ": (
        lambda: xrnn.mse(np.ones((3, 1)), np.ones((3, 2))),
        ValueError,
        r"target must have shape \(3, 1\) like prediction, got shape \(3, 2\)",
    ),
    "mse_mixed_dtypes": (
        lambda: xrnn.mse(np.ones((3, 1)), np.ones((3, 1), np.float32)),
        TypeError,
        r"all arrays must share one dtype: prediction is float64 but target is float32",
    ),
    "mse_mixed_namespaces": (
        lambda: xrnn.mse(np.ones((3, 1)), torch.ones(3, 1, dtype=torch.float64)),
        TypeError,
        r"prediction is numpy but target is torch",
    ),
    "cross_entropy_float_targets": (
        lambda: xrnn.softmax_cross_entropy(np.ones((2, 3, 4)), np.ones((2, 3))),
        TypeError,
        r"targets must hold integer class indices, got dtype float64",
    ),
    "cross_entropy_target_out_of_range": (
        lambda: xrnn.softmax_cross_entropy(np.ones((2, 3, 4)), np.full((2, 3), 7)),
        ValueError,
        r"targets must lie in 0..3 \(C=4 classes\)",
    ),
    "cross_entropy_mask_shape": (
        lambda: xrnn.softmax_cross_entropy(np.ones((2, 3, 4)), np.zeros((2, 3), int), np.ones((3, 2), bool)),
        ValueError,
        r"mask must have shape \(2, 3\) like targets, got shape \(3, 2\)",
    ),
    "cross_entropy_list_logits": (
        lambda: xrnn.softmax_cross_entropy([[1.0]], np.zeros((1,), int)),
        TypeError,
        r"logits must be an array",
    ),
    "adam_negative_lr": (
        lambda: xrnn.Adam(lr=-1),
        ValueError,
        r"lr must be a positive finite number, got -1",
    ),
    "sgd_momentum_one_or_more": (
        lambda: xrnn.SGD(0.1, momentum=1.5),
        ValueError,
        r"momentum must be a number in \[0, 1\), got 1.5",
    ),
    "optimizer_grads_of_other_keys": (
        lambda: ADAM.step({"w": np.ones(3)}, {"v": np.ones(3)}),
        ValueError,
        r"grads must have the keys of params \['w'\], got \['v'\]",
    ),
    "optimizer_grads_of_other_shape": (
        lambda: xrnn.Adam().step({"w": np.ones(3)}, {"w": np.ones(4)}),
        ValueError,
        r"grads\['w'\] must have shape \(3,\) like params\['w'\], got shape \(4,\)",
    ),
    "clip_negative_norm": (
        lambda: xrnn.clip_grad_norm({"w": np.ones(3)}, -1.0),
        ValueError,
        r"max_norm must be a positive number, got -1.0",
    ),
    "clip_a_list": (
        lambda: xrnn.clip_grad_norm([np.ones(3)], 1.0),
        TypeError,
        r"grads must be a dict of arrays",
    ),
    "model_unknown_cell": (
        lambda: xrnn.SequenceModel("transformer", 2, 3, 1),
        ValueError,
        r"cell must be one of rnn, lstm, gru, mingru, minlstm, indrnn, layernorm_lstm, layernorm_gru "
        "or a cell of "
        r"xrnn.cells.define, got 'transformer'",
    ),
    "model_x_wrong_features": (
        lambda: MODEL.forward(np.ones((4, 2, 5), np.float32)),
        ValueError,
        r"x must have shape \(\*, \*, 2\) \(T, N, input_size\), got shape \(4, 2, 5\)",
    ),
    "model_params_of_another_model": (
        lambda: MODEL.set_params({"rnn.weight_ih_l0": np.ones(3)}),
        ValueError,
        r"params must have the keys of this lstm model; missing",
    ),
    "sample_from_a_non_character_model": (
        lambda: xrnn.sample(MODEL, [0], 5),
        ValueError,
        r"model must read and predict the same symbols",
    ),
    "train_negative_steps": (
        lambda: xrnn.train(MODEL, xrnn.AddingTask(), xrnn.Adam(), steps=-1),
        ValueError,
        r"steps must be an int >= 0, got -1",
    ),
    "save_something_else": (
        lambda: xrnn.save_checkpoint("unused.npz", "model"),
        TypeError,
        r"model must be a SequenceModel, RNN, LSTM, GRU or Dense, got str",
    ),
    "load_a_missing_file": (
        lambda: xrnn.load_checkpoint("no-such-checkpoint.npz"),
        FileNotFoundError,
        r"checkpoint 'no-such-checkpoint.npz' does not exist",
    ),
}


@pytest.mark.parametrize("case", list(TRAINING_CASES))
def test_training_pieces_reject_bad_input_with_a_message_naming_the_argument(case):
    call, error, message = TRAINING_CASES[case]
    with pytest.raises(error, match=message):
        call()


CLI_CASES = {
    "unknown_task": (["demo", "--task", "sorting"], 2, "invalid choice: 'sorting'"),
    "unknown_cell": (["demo", "--cell", "transformer"], 2, "invalid choice: 'transformer'"),
    "steps_not_a_number": (
        ["demo", "--steps", "many"],
        2,
        "--steps: must be an integer, got 'many'",
    ),
    "unknown_backend": (["demo", "--backend", "tensorflow"], 2, "invalid choice: 'tensorflow'"),
    "seq_len_for_reber": (["demo", "--task", "reber", "--seq-len", "5"], 2, "--seq-len does not apply"),
    "missing_checkpoint": (["sample", "no-such.npz"], 1, "checkpoint 'no-such.npz' does not exist"),
    # Settings that cannot work: usage errors (status 2) found before any training starts.
    "steps_zero": (["demo", "--steps", "0"], 2, "argument --steps: must be >= 1, got 0"),
    "gradflow_steps_zero": (["gradflow", "--steps", "0"], 2, "argument --steps: must be >= 1, got 0"),
    "seq_len_one": (["demo", "--seq-len", "1"], 2, "argument --seq-len: must be >= 2"),
    "gradflow_seq_len_one": (["gradflow", "--seq-len", "1"], 2, "argument --seq-len: must be >= 2"),
    "text_seq_len_one": (["demo", "--task", "text", "--seq-len", "1"], 2, "argument --seq-len: must be >= 2"),
    "lr_zero": (["demo", "--lr", "0"], 2, "argument --lr: must be > 0, got 0"),
    "lr_not_finite": (["gradflow", "--lr", "nan"], 2, "argument --lr: must be a finite number, got 'nan'"),
    "temperature_negative": (
        ["sample", "no-such.npz", "--temperature", "-1"],
        2,
        "argument --temperature: must be >= 0, got -1",
    ),
    "out_is_a_file": (["demo", "--out", "a-file.txt"], 2, "--out 'a-file.txt' is a file, not a folder"),
    "out_below_a_file": (
        ["gradflow", "--out", "a-file.txt/runs"],
        2,
        "--out 'a-file.txt/runs': cannot create the folder (Not a directory)",
    ),
    "corpus_is_a_folder": (
        ["demo", "--task", "text", "--corpus", "a-folder"],
        2,
        "corpus file 'a-folder' is a folder, not a file",
    ),
    "corpus_empty": (
        ["demo", "--task", "text", "--corpus", "empty.txt"],
        2,
        "corpus file 'empty.txt' is empty",
    ),
    "corpus_not_utf8": (
        ["demo", "--task", "text", "--corpus", "latin-1.txt"],
        2,
        "corpus file 'latin-1.txt' is not UTF-8 text (invalid continuation byte at byte 1)",
    ),
    "corpus_missing": (
        ["demo", "--task", "text", "--corpus", "missing.txt"],
        2,
        "corpus file 'missing.txt' does not exist",
    ),
    "corpus_shorter_than_a_window": (
        ["demo", "--task", "text", "--corpus", "a-file.txt"],
        2,
        "text must be longer than seq_len=64, got 11 characters",
    ),
}
if os.path.exists("/dev/zero"):
    CLI_CASES["corpus_endless"] = (
        ["demo", "--task", "text", "--corpus", "/dev/zero"],
        2,
        "corpus file '/dev/zero' is larger than 16 MiB, the most read as a corpus",
    )
if sys.platform == "linux":  # procfs: no one, root included, creates files there
    CLI_CASES["out_not_creatable"] = (
        ["demo", "--out", "/proc/xrnn-out"],
        2,
        "--out '/proc/xrnn-out': cannot create the folder",
    )
    CLI_CASES["out_not_writable"] = (
        ["gradflow", "--out", "/proc"],
        2,
        "--out '/proc': cannot write in the folder",
    )
if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes in a read-only folder
    CLI_CASES["out_read_only_folder"] = (
        ["demo", "--out", "read-only"],
        2,
        "--out 'read-only': cannot write in the folder (Permission denied)",
    )


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_command_rejects_bad_options_with_a_message(case, capsys, tmp_path, monkeypatch):
    from xrnn.cli import command as cli

    argv, status, message = CLI_CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file.txt").write_text("some words\n", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin-1.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    (tmp_path / "read-only").mkdir(mode=0o555)
    monkeypatch.setattr(cli, "train", lambda *a, **k: pytest.fail("training started"))
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == status
    assert message in err.splitlines()[-1] and "Traceback" not in err  # one line says what is wrong
    assert "xrnn demo:" not in out and "xrnn gradflow:" not in out  # nothing started
