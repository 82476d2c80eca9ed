"""``xrnn.LSTM(peepholes=True)`` against its equations under torch autograd and ONNX Runtime (``P``)."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")

T, N, IN, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]


def _reference(params, x, h0, c0, lengths, num_layers, directions):
    """``y``, final ``h`` and ``c`` of the peephole LSTM from its equations, one sequence at a time."""
    inp, finals_h, finals_c = x, [], []
    for k in range(num_layers):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:directions]):
            w_ih, w_hh = params[f"weight_ih_l{k}{suffix}"], params[f"weight_hh_l{k}{suffix}"]
            b = params[f"bias_ih_l{k}{suffix}"] + params[f"bias_hh_l{k}{suffix}"]
            p_i, p_f, p_o = params[f"weight_ch_l{k}{suffix}"].reshape(3, H)
            rows, last_h, last_c = [], [], []
            for n in range(x.shape[1]):
                idx = k * directions + d
                h, c = h0[idx, n], c0[idx, n]
                out = [torch.zeros(H, dtype=torch.float64)] * x.shape[0]
                order = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for t in order:
                    z = w_ih @ inp[t, n] + b + w_hh @ h
                    i = torch.sigmoid(z[:H] + p_i * c)
                    f = torch.sigmoid(z[H : 2 * H] + p_f * c)
                    c = f * c + i * torch.tanh(z[2 * H : 3 * H])
                    h = torch.sigmoid(z[3 * H :] + p_o * c) * torch.tanh(c)
                    out[t] = h
                rows.append(torch.stack(out))
                last_h.append(h)
                last_c.append(c)
            outs.append(torch.stack(rows, dim=1))
            finals_h.append(torch.stack(last_h))
            finals_c.append(torch.stack(last_c))
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(finals_h), torch.stack(finals_c)


def test_peephole_lstm_is_its_equations_forward_and_backward(xp):
    dtype = "float64"  # float32 meets float64 in tests/test_ops.py (every Ops against the generic one)
    layer = xrnn.LSTM(IN, H, 2, bidirectional=True, peepholes=True, xp=xp, dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, IN))
    h0, c0 = rng.standard_normal((2, 4, N, H))
    dy, dh, dc = rng.standard_normal((T, N, 2 * H)), *rng.standard_normal((2, 4, N, H))

    def on(a):
        return asarray(xp, a, dtype)

    y, (h, c), cache = layer.forward(on(x), (on(h0), on(c0)), lengths=LENGTHS)
    dx, (dh0, dc0), grads = layer.backward(cache, on(dy), (on(dh), on(dc)))

    params = {
        k: torch.tensor(to_numpy(v), dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()
    }
    x_t, h0_t, c0_t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    y_ref, h_ref, c_ref = _reference(params, x_t, h0_t, c0_t, LENGTHS, 2, 2)
    y_ref = y_ref * torch.tensor(np.arange(T)[:, None] < np.array(LENGTHS)[None, :])[:, :, None]
    loss = (
        (y_ref * torch.tensor(dy)).sum() + (h_ref * torch.tensor(dh)).sum() + (c_ref * torch.tensor(dc)).sum()
    )
    loss.backward()
    for got, expected in [(y, y_ref), (h, h_ref), (c, c_ref)]:
        assert_close(got, expected.detach().numpy(), xp=xp, dtype=dtype)
    for got, expected in [(dx, x_t), (dh0, h0_t), (dc0, c0_t)]:
        assert_close(got, expected.grad.numpy(), xp=xp, dtype=dtype)
    assert set(grads) == set(params)
    for key, value in grads.items():
        assert_close(value, params[key].grad.numpy(), xp=xp, dtype=dtype)


def test_peephole_weights_are_a_state_dict_entry_of_three_blocks():
    layer = xrnn.LSTM(IN, H, bidirectional=True, peepholes=True, xp="numpy", seed=2)
    sd = layer.state_dict()
    assert sd["weight_ch_l0"].shape == (3 * H,) and sd["weight_ch_l0_reverse"].shape == (3 * H,)
    again = xrnn.LSTM.from_state_dict(sd)
    assert again.peepholes and "peepholes=True" in repr(again)
    plain = {k: v for k, v in sd.items() if not k.startswith("weight_ch")}
    assert not xrnn.LSTM.from_state_dict(plain).peepholes
    with pytest.raises(TypeError, match="peepholes"):
        xrnn.LSTM(IN, H, peepholes=1, xp="numpy")


def test_zero_peephole_weights_give_torchs_lstm():
    layer = xrnn.LSTM(IN, H, peepholes=True, xp="numpy", dtype="float64", seed=3)
    layer.params = {
        k: (np.zeros_like(v) if k.startswith("weight_ch") else v) for k, v in layer.params.items()
    }
    module = torch.nn.LSTM(IN, H, dtype=torch.float64)
    module.load_state_dict(
        {k: torch.tensor(v) for k, v in layer.params.items() if not k.startswith("weight_ch")}
    )
    x = np.random.default_rng(4).standard_normal((T, N, IN))
    assert_close(layer.forward(x)[0], module(torch.tensor(x))[0].detach().numpy(), dtype="float64")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_peephole_lstm_is_onnx_runtimes_lstm_with_p(bidirectional):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    layer = xrnn.LSTM(IN, H, bidirectional=bidirectional, peepholes=True, xp="numpy", seed=5)
    ifgo_to_iofc = [0, 3, 1, 2]  # ONNX orders the gates i, o, f, c; torch i, f, g, o

    def regate(w, order):
        return np.concatenate([w[q * H : (q + 1) * H] for q in order], axis=0)

    suffixes = ("", "_reverse")[: layer.num_directions]
    p = layer.params
    arrays = {
        "W": np.stack([regate(p[f"weight_ih_l0{s}"], ifgo_to_iofc) for s in suffixes]),
        "R": np.stack([regate(p[f"weight_hh_l0{s}"], ifgo_to_iofc) for s in suffixes]),
        "B": np.stack(
            [
                np.concatenate([regate(p[f"bias_{kind}_l0{s}"], ifgo_to_iofc) for kind in ("ih", "hh")])
                for s in suffixes
            ]
        ),
        "P": np.stack([regate(p[f"weight_ch_l0{s}"], [0, 2, 1]) for s in suffixes]),  # i, f, o -> i, o, f
    }
    inits = [helper.make_tensor(k, TensorProto.FLOAT, a.shape, a.ravel()) for k, a in arrays.items()]
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B", "L", "", "", "P"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=H,
        direction="bidirectional" if bidirectional else "forward",
    )
    d = len(suffixes)
    graph = helper.make_graph(
        [node],
        "lstm",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, N, IN]),
            helper.make_tensor_value_info("L", TensorProto.INT32, [N]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, d, N, H]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [d, N, H]),
            helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [d, N, H]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((T, N, IN)).astype(np.float32)
    y_onnx, h_onnx, c_onnx = session.run(None, {"X": x, "L": np.asarray(LENGTHS, np.int32)})
    y, (h, c), _ = layer.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(y, np.concatenate(list(y_onnx.transpose(1, 0, 2, 3)), axis=2), atol=1e-5)
    np.testing.assert_allclose(h, h_onnx, atol=1e-5)
    np.testing.assert_allclose(c, c_onnx, atol=1e-5)
