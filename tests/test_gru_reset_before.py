"""``xrnn.GRU(reset_after=False)``, the GRU of Keras and ONNX, against three oracles.

The oracles: the equations written here in torch (float64, autograd), ONNX Runtime's
``GRU`` with ``linear_before_reset=0`` (its default), and Keras 3's
``GRU(reset_after=False)`` with weights copied both ways; then every layer feature
(``checkpoint=``, ``need_cache=False``, ``apply`` under autograd, models, checkpoints).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")

T, N, IN, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]


def _reference(params, x, lengths, num_layers, directions):
    """``y``, final ``h`` of the reset-before GRU, written from its equations, one sequence at a time."""
    inp = x
    finals = []
    for k in range(num_layers):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:directions]):
            w_ih, w_hh = params[f"weight_ih_l{k}{suffix}"], params[f"weight_hh_l{k}{suffix}"]
            b = params[f"bias_ih_l{k}{suffix}"] + params[f"bias_hh_l{k}{suffix}"]
            u_r, u_z, u_n = w_hh[:H], w_hh[H : 2 * H], w_hh[2 * H :]
            rows, last = [], []
            for n in range(x.shape[1]):
                h = torch.zeros(H, dtype=torch.float64)
                out = [torch.zeros(H, dtype=torch.float64)] * x.shape[0]
                order = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for t in order:
                    g = w_ih @ inp[t, n] + b
                    r = torch.sigmoid(g[:H] + u_r @ h)
                    z = torch.sigmoid(g[H : 2 * H] + u_z @ h)
                    cand = torch.tanh(g[2 * H :] + u_n @ (r * h))
                    h = (1 - z) * cand + z * h
                    out[t] = h
                rows.append(torch.stack(out))
                last.append(h)
            outs.append(torch.stack(rows, dim=1))
            finals.append(torch.stack(last))
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(finals)


def test_reset_before_gru_is_its_equations_forward_and_backward(xp):
    dtype = "float64"  # float32 meets float64 in tests/test_ops.py (every Ops against the generic one)
    num_layers, bidirectional = 2, True
    layer = xrnn.GRU(
        IN, H, num_layers, bidirectional=bidirectional, reset_after=False, xp=xp, dtype=dtype, seed=0
    )
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, IN))
    directions = 2 if bidirectional else 1
    dy = rng.standard_normal((T, N, directions * H))
    dh = rng.standard_normal((num_layers * directions, N, H))
    y, h, cache = layer.forward(asarray(xp, x, dtype), lengths=LENGTHS)
    dx, dh0, grads = layer.backward(cache, asarray(xp, dy, dtype), asarray(xp, dh, dtype))

    params = {
        k: torch.tensor(to_numpy(v), dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()
    }
    x_t = torch.tensor(x, requires_grad=True)
    y_ref, h_ref = _reference(params, x_t, LENGTHS, num_layers, directions)
    y_ref = y_ref * torch.tensor(np.arange(T)[:, None] < np.array(LENGTHS)[None, :])[:, :, None]
    ((y_ref * torch.tensor(dy)).sum() + (h_ref * torch.tensor(dh)).sum()).backward()

    assert_close(y, y_ref.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(h, h_ref.detach().numpy(), xp=xp, dtype=dtype)
    assert_close(dx, x_t.grad.numpy(), xp=xp, dtype=dtype)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


def test_reset_before_gru_gradient_of_the_initial_state_is_autograds(xp):
    layer = xrnn.GRU(IN, H, reset_after=False, xp=xp, dtype="float64", seed=2)
    rng = np.random.default_rng(3)
    x, h0 = rng.standard_normal((T, N, IN)), rng.standard_normal((1, N, H))
    y, h, cache = layer.forward(asarray(xp, x, "float64"), asarray(xp, h0, "float64"))
    _, dh0, _ = layer.backward(cache, asarray(xp, np.ones((T, N, H)), "float64"))

    params = {k: torch.tensor(to_numpy(v)) for k, v in layer.params.items()}
    h0_t = torch.tensor(h0, requires_grad=True)
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b = params["bias_ih_l0"] + params["bias_hh_l0"]
    state, total = h0_t[0], 0.0
    for t in range(T):
        g = torch.tensor(x[t]) @ w_ih.T + b
        r = torch.sigmoid(g[:, :H] + state @ w_hh[:H].T)
        z = torch.sigmoid(g[:, H : 2 * H] + state @ w_hh[H : 2 * H].T)
        cand = torch.tanh(g[:, 2 * H :] + (r * state) @ w_hh[2 * H :].T)
        state = (1 - z) * cand + z * state
        total = total + state.sum()
    total.backward()
    assert_close(dh0, h0_t.grad.numpy(), xp=xp, dtype="float64")


def test_reset_after_true_is_torchs_gru_and_false_differs():
    x = np.random.default_rng(4).standard_normal((T, N, IN))
    after = xrnn.GRU(IN, H, xp="numpy", dtype="float64", seed=5)
    before = xrnn.GRU.from_state_dict(after.state_dict(), reset_after=False)
    assert before.reset_after is False and "reset_after=False" in repr(before)
    torch_gru = torch.nn.GRU(IN, H, dtype=torch.float64)
    torch_gru.load_state_dict({k: torch.tensor(v) for k, v in after.state_dict().items()})
    assert_close(after.forward(x)[0], torch_gru(torch.tensor(x))[0].detach().numpy(), dtype="float64")
    assert np.abs(before.forward(x)[0] - after.forward(x)[0]).max() > 1e-3


def test_reset_after_must_be_a_bool():
    with pytest.raises(TypeError, match="reset_after"):
        xrnn.GRU(IN, H, reset_after="no", xp="numpy")


def _onnx_gru(layer, x, lengths):
    """``Y``, ``Y_h`` of ONNX Runtime's GRU (``linear_before_reset=0``) with ``layer``'s weights."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    zrn = [1, 0, 2]  # ONNX orders the gates z, r, h; torch r, z, n

    def regate(w):
        return np.concatenate([w[q * H : (q + 1) * H] for q in zrn], axis=0)

    suffixes = ("", "_reverse")[: layer.num_directions]
    p = {k: to_numpy(v) for k, v in layer.params.items()}
    w = np.stack([regate(p[f"weight_ih_l0{s}"]) for s in suffixes])
    r = np.stack([regate(p[f"weight_hh_l0{s}"]) for s in suffixes])
    b = np.stack(
        [np.concatenate([regate(p[f"bias_ih_l0{s}"]), regate(p[f"bias_hh_l0{s}"])]) for s in suffixes]
    )
    direction = "bidirectional" if layer.bidirectional else "forward"
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.astype(np.float32).ravel())
        for name, a in (("W", w), ("R", r), ("B", b))
    ]
    node = helper.make_node(
        "GRU",
        ["X", "W", "R", "B", "L"],
        ["Y", "Y_h"],
        hidden_size=H,
        direction=direction,
        linear_before_reset=0,
    )
    graph = helper.make_graph(
        [node],
        "gru",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape)),
            helper.make_tensor_value_info("L", TensorProto.INT32, [x.shape[1]]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, [x.shape[0], len(suffixes), x.shape[1], H]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [len(suffixes), x.shape[1], H]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, y_h = session.run(None, {"X": x, "L": np.asarray(lengths, np.int32)})
    return y, y_h  # (T, D, N, H), (D, N, H)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_reset_before_gru_is_onnx_runtimes_gru_with_linear_before_reset_0(bidirectional):
    layer = xrnn.GRU(IN, H, bidirectional=bidirectional, reset_after=False, xp="numpy", seed=6)
    x = np.random.default_rng(7).standard_normal((T, N, IN)).astype(np.float32)
    y_onnx, h_onnx = _onnx_gru(layer, x, LENGTHS)
    y, h, _ = layer.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(y, np.concatenate(list(y_onnx.transpose(1, 0, 2, 3)), axis=2), atol=1e-5)
    np.testing.assert_allclose(h, h_onnx, atol=1e-5)


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _host(a):
    """A Keras tensor or variable of any Keras backend as a NumPy array."""
    a = getattr(a, "value", a)
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _keras_gru(keras, units, n_in):
    layer = keras.layers.GRU(units, reset_after=False, return_sequences=True, return_state=True)
    layer.build((None, None, n_in))
    return layer


def test_reset_before_gru_is_keras_gru_with_weights_from_xrnn(keras):
    layer = xrnn.GRU(IN, H, reset_after=False, xp="numpy", seed=8)
    p = {k: to_numpy(v) for k, v in layer.params.items()}
    zrn = [1, 0, 2]  # Keras orders the gates z, r, h as ONNX

    def regate(w):
        return np.concatenate([w[..., q * H : (q + 1) * H] for q in zrn], axis=-1)

    k_layer = _keras_gru(keras, H, IN)
    k_layer.set_weights(
        [regate(p["weight_ih_l0"].T), regate(p["weight_hh_l0"].T), regate(p["bias_ih_l0"] + p["bias_hh_l0"])]
    )
    x = np.random.default_rng(9).standard_normal((T, N, IN)).astype(np.float32)
    y_k, h_k = k_layer(np.transpose(x, (1, 0, 2)))
    y, h, _ = layer.forward(x)
    np.testing.assert_allclose(y, np.transpose(_host(y_k), (1, 0, 2)), atol=1e-5)
    np.testing.assert_allclose(h[0], _host(h_k), atol=1e-5)


def test_reset_before_gru_from_keras_weights_runs_as_keras(keras):
    k_layer = _keras_gru(keras, H, IN)
    kernel, recurrent, bias = (_host(w) for w in k_layer.weights)
    rzn = [1, 0, 2]  # back from Keras's z, r, h

    def regate(w):
        return np.concatenate([w[..., q * H : (q + 1) * H] for q in rzn], axis=-1)

    sd = {
        "weight_ih_l0": regate(kernel).T,
        "weight_hh_l0": regate(recurrent).T,
        "bias_ih_l0": regate(bias + np.float32(0.1)),  # Keras's zero bias, shifted to be seen
        "bias_hh_l0": np.zeros(3 * H, np.float32),
    }
    layer = xrnn.GRU.from_state_dict(sd, reset_after=False, xp="numpy")
    k_layer.set_weights([kernel, recurrent, bias + np.float32(0.1)])
    x = np.random.default_rng(10).standard_normal((N, T, IN)).astype(np.float32)
    y_k, _ = k_layer(x)
    y, _, _ = xrnn.GRU.from_state_dict(layer.state_dict(), reset_after=False, batch_first=True).forward(x)
    np.testing.assert_allclose(y, _host(y_k), atol=1e-5)


def test_the_late_scalar_step_is_the_cells_path_through_the_reset():
    from xrnn.cells import gru_reset_before as cell

    rng = np.random.default_rng(11)
    gx, gh = rng.standard_normal((2, N, 3 * H)) * np.array([1.0, 30.0, 1e4])[:, None]
    h_prev, dm, dh = rng.standard_normal((3, N, H))
    forward, backward = cell.late_scalar_step(torch.sigmoid, torch.tanh)
    as_t = torch.tensor
    m = cell.late_input(gx, gh[:, : 2 * H], (h_prev,), xp=np)
    np.testing.assert_allclose(
        forward(1.0, as_t(gx[:, :H]), as_t(gh[:, :H]), as_t(h_prev)).numpy(), m, rtol=1e-13
    )
    _, cache = cell.step(gx, gh, (h_prev,), xp=np)
    dgx, _, (direct,) = cell.late_backward(dm, cache, cell.step_backward((dh,), cache, xp=np), xp=np)
    dr, direct_scalar = backward(1.0, as_t(dm), as_t(cache.r), as_t(h_prev), as_t(dh * cache.z))
    np.testing.assert_allclose(dr.numpy(), dgx[:, :H], rtol=1e-13)
    np.testing.assert_allclose(direct_scalar.numpy(), direct, rtol=1e-13)
