"""minGRU and minLSTM: a direct torch implementation as oracle, the parallel scan equal to the loop."""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy
from xrnn.backends import registry
from xrnn.engine.linear_scan import BLOCK, LinearOps, doubling_scan

torch = pytest.importorskip("torch")

CELLS = {"mingru": xrnn.MinGRU, "minlstm": xrnn.MinLSTM}
T, N, F, H = 9, 3, 4, 5
LENGTHS = [9, 4, 6]


def _g(p):
    return torch.where(p >= 0, p + 0.5, torch.sigmoid(p))


def _torch_direction(cell, x, h0, w, b):
    """The paper's equations step by step, for one sequence ``x (T, F)`` from ``h0 (H,)``."""
    hs, h = [], h0
    for t in range(x.shape[0]):
        gates = x[t] @ w.T + (0 if b is None else b)
        if cell == "mingru":
            z = torch.sigmoid(gates[:H])
            h = (1 - z) * h + z * _g(gates[H:])
        else:
            f, i = torch.sigmoid(gates[:H]), torch.sigmoid(gates[H : 2 * H])
            h = f / (f + i) * h + i / (f + i) * _g(gates[2 * H :])
        hs.append(h)
    return torch.stack(hs), h


def _torch_layer(cell, params, x, h0, lengths, num_layers, dirs):
    """``y (T, N, D*H)`` and the final state ``(L*D, N, H)``, one sequence at a time within its length."""
    ys, finals = [], [[None] * x.shape[1] for _ in range(num_layers * dirs)]
    for n, length in enumerate(lengths):
        inp = x[:length, n]
        for k in range(num_layers):
            outs = []
            for d in range(dirs):
                s = f"l{k}" + ("_reverse" if d else "")
                seq = inp if d == 0 else torch.flip(inp, [0])
                hs, h = _torch_direction(
                    cell, seq, h0[k * dirs + d, n], params[f"weight_ih_{s}"], params.get(f"bias_ih_{s}")
                )
                outs.append(hs if d == 0 else torch.flip(hs, [0]))
                finals[k * dirs + d][n] = h
            inp = torch.cat(outs, 1)
        pad = torch.zeros((x.shape[0] - length, inp.shape[1]), dtype=x.dtype)
        ys.append(torch.cat([inp, pad]))
    return torch.stack(ys, 1), torch.stack([torch.stack(f) for f in finals])


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("parallel", [True, False])
def test_forward_and_every_gradient_equal_torch_autograd(cell, parallel):
    rng = np.random.default_rng(1)
    layer = CELLS[cell](F, H, num_layers=2, bidirectional=True, dtype="float64", seed=0, parallel=parallel)
    x, h0 = rng.standard_normal((T, N, F)), rng.standard_normal((4, N, H))
    y, state, cache = layer.forward(x, h0, LENGTHS)
    dy, dstate = rng.standard_normal(y.shape), rng.standard_normal(state.shape)
    dx, dh0, grads = layer.backward(cache, dy, dstate)

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    ty, tstate = _torch_layer(cell, tp, tx, th0, LENGTHS, 2, 2)
    ((ty * torch.tensor(dy)).sum() + (tstate * torch.tensor(dstate)).sum()).backward()
    assert_close(y, ty.detach(), dtype="float64")
    assert_close(state, tstate.detach(), dtype="float64")
    assert_close(dx, tx.grad, dtype="float64")
    assert_close(dh0, th0.grad, dtype="float64")
    for key, value in tp.items():
        assert_close(grads[key], value.grad, dtype="float64")


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_parallel_scan_equals_the_loop_on_every_backend(cell, xp, dtype):
    tol = {"float32": 1e-5, "float64": 1e-12}[dtype]
    results = []
    for parallel in (True, False):
        layer = CELLS[cell](F, H, bidirectional=True, dtype=dtype, xp=xp, seed=3, parallel=parallel)
        x = asarray(xp, np.random.default_rng(2).standard_normal((T, N, F)), dtype)
        y, state, cache = layer.forward(x, None, LENGTHS)
        dy = asarray(xp, np.random.default_rng(4).standard_normal(tuple(y.shape)), dtype)
        dx, dh0, grads = layer.backward(cache, dy)
        results.append((y, state, dx, dh0, *grads.values()))
    for got, want in zip(*results):
        assert_close(got, want, xp=xp, dtype=dtype, tol=tol)


def test_doubling_scan_stays_finite_and_equal_to_the_loop_over_long_sequences():
    rng = np.random.default_rng(5)
    a = np.concatenate([np.full((2000, 4), 1.0 - 1e-12), rng.uniform(0, 1e-30, (2000, 4))])
    b = rng.standard_normal((4000, 4))
    scanned = doubling_scan(a, b, xp=np)
    assert np.all(np.isfinite(scanned))
    np.testing.assert_allclose(scanned, LinearOps(np).sequential(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_loop_equals_the_generic_loop(dtype):
    ops = registry.linear_ops_for(np, np.dtype(dtype))
    assert ops.name == "numba"
    rng = np.random.default_rng(6)
    a, b = rng.uniform(0, 1, (50, 3, 4)).astype(dtype), rng.standard_normal((50, 3, 4)).astype(dtype)
    assert_close(ops.sequential(a, b), LinearOps(np).sequential(a, b), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_recurrence_and_its_backward_equal_the_generic_ones(dtype):
    ops = registry.linear_ops_for(np, np.dtype(dtype))
    rng = np.random.default_rng(7)
    a, b, h_prev, dh = (rng.uniform(0, 1, (30, 3, 4)).astype(dtype) for _ in range(4))
    h0, dh_last = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    assert_close(ops.recurrence(a, b, h0), LinearOps(np).recurrence(a, b, h0), dtype=dtype)
    got, want = (
        ops.recurrence_backward(a, h_prev, dh, dh_last),
        LinearOps(np).recurrence_backward(a, h_prev, dh, dh_last),
    )
    for g, w in zip(got, want):
        assert_close(g, w, dtype=dtype)


def test_the_blocked_scan_equals_the_loop_past_one_block(xp, dtype):
    tol, steps = {"float32": 1e-5, "float64": 1e-12}[dtype], 2 * BLOCK + 5  # padded to whole blocks
    results = []
    for parallel in (True, False):
        layer = xrnn.MinGRU(F, H, dtype=dtype, xp=xp, seed=3, parallel=parallel)
        x = asarray(xp, np.random.default_rng(8).standard_normal((steps, N, F)), dtype)
        y, state, cache = layer.forward(x, None, [steps, BLOCK + 1, 3])
        dx, dh0, grads = layer.backward(
            cache, asarray(xp, np.random.default_rng(9).standard_normal(y.shape), dtype)
        )
        results.append((y, state, dx, dh0, *grads.values()))
    for got, want in zip(*results):
        assert_close(got, want, xp=xp, dtype=dtype, tol=tol)


def test_xrnn_numba_0_gives_the_generic_loop(monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", "0")
    assert registry.linear_ops_for(np, np.dtype("float64")).name == "generic"


def test_mingru_forward_equals_the_mingru_pytorch_package():
    mingru = pytest.importorskip("minGRU_pytorch.minGRU")
    torch.manual_seed(0)
    ref = mingru.minGRU(H).double()
    x = torch.randn(2, T, H, dtype=torch.float64)
    w = ref.to_hidden_and_gate.weight.detach().numpy()  # rows: hidden, then gate
    layer = xrnn.MinGRU(H, H, bias=False, batch_first=True, dtype="float64", parallel=True)
    layer.params = {"weight_ih_l0": np.concatenate([w[H:], w[:H]])}  # xrnn's order: z, then h~
    y, _, _ = layer.forward(x.numpy())
    assert_close(y, ref(x).detach().numpy(), dtype="float64")


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_sequence_model_trains_and_its_checkpoint_loads(cell, tmp_path):
    rng = np.random.default_rng(7)
    model = xrnn.SequenceModel(cell, 3, 8, 2, dtype="float64", seed=0, parallel=True)
    x, y = rng.standard_normal((12, 16, 3)), rng.standard_normal((12, 16, 2))
    history = xrnn.fit(model, xrnn.Adam(lr=0.02), x, y, loss="mse", epochs=15, batch_size=16, verbose=False)
    assert history.loss[-1] < history.loss[0]
    xrnn.save_checkpoint(tmp_path / "m.npz", model)
    loaded = xrnn.load_checkpoint(tmp_path / "m.npz").model
    assert loaded.rnn.parallel is True
    assert_close(loaded.predict(x), model.predict(x), dtype="float64", tol=1e-15)


def test_a_layer_checkpoint_round_trips(tmp_path):
    layer = xrnn.MinLSTM(3, 4, num_layers=2, bidirectional=True, bias=False, dtype="float64", seed=1)
    xrnn.save_checkpoint(tmp_path / "l.npz", layer)
    loaded = xrnn.load_checkpoint(tmp_path / "l.npz").model
    assert type(loaded) is xrnn.MinLSTM and loaded.params.keys() == layer.params.keys()
    x = np.random.default_rng(8).standard_normal((5, 2, 3))
    assert_close(loaded.forward(x)[0], layer.forward(x)[0], dtype="float64", tol=1e-15)


def test_parameters_have_no_recurrent_weight():
    layer = xrnn.MinGRU(3, 4, bidirectional=True)
    assert {k: tuple(v.shape) for k, v in layer.params.items()} == {
        "weight_ih_l0": (8, 3),
        "bias_ih_l0": (8,),
        "weight_ih_l0_reverse": (8, 3),
        "bias_ih_l0_reverse": (8,),
    }


def test_parallel_must_be_a_bool_or_none():
    with pytest.raises(TypeError, match="parallel must be True, False or None, got 'yes'"):
        xrnn.MinGRU(3, 4, parallel="yes")


def test_dropout_between_layers_is_kept_for_backward():
    rng = np.random.default_rng(9)
    layer = xrnn.MinGRU(3, 4, num_layers=2, dropout=0.5, dtype="float64", seed=0)
    x = rng.standard_normal((6, 2, 3))
    y, _, cache = layer.forward(x)
    dx, _, _ = layer.backward(cache, np.ones_like(y))
    layer.eval()
    assert to_numpy(dx).shape == x.shape and len(cache.masks) == 1


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_layer_rebuilds_from_its_state_dict(cell):
    layer = CELLS[cell](3, 4, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    rebuilt = CELLS[cell].from_state_dict(layer.state_dict())
    assert (rebuilt.num_layers, rebuilt.bidirectional, rebuilt.hidden_size) == (2, True, 4)
    x = np.random.default_rng(10).standard_normal((5, 2, 3))
    assert_close(rebuilt.forward(x)[0], layer.forward(x)[0], dtype="float64", tol=1e-15)


def test_a_state_dict_without_the_layer_keys_is_refused():
    with pytest.raises(ValueError, match=r"weight_ih_l0 of shape \(2\*H, input_size\) for a MinGRU"):
        xrnn.MinGRU.from_state_dict({"weight_ih_l0": np.zeros((5, 3))})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_compiled_coefficients_equal_the_cells_array_form(cell, dtype):
    from xrnn.cells.minimal import MINGRU_CELL, MINLSTM_CELL

    min_cell = {"mingru": MINGRU_CELL, "minlstm": MINLSTM_CELL}[cell]
    compiled, generic = registry.linear_ops_for(np, np.dtype(dtype)), LinearOps(np)
    rng = np.random.default_rng(11)
    gates = rng.standard_normal((6, 3, min_cell.n_gates * 4)) * np.array([1.0, 30.0])[:, None, None].repeat(
        3, 0
    )
    gates = gates.astype(dtype)  # rows of moderate and of extreme pre-activations
    da, db = rng.standard_normal((2, 6, 3, 4)).astype(dtype)
    a, b, cache = compiled.coefficients(min_cell, gates)
    a_ref, b_ref, cache_ref = generic.coefficients(min_cell, gates)
    assert_close(a, a_ref, dtype=dtype)
    assert_close(b, b_ref, dtype=dtype)
    assert_close(
        compiled.coefficients_backward(min_cell, da, db, cache),
        generic.coefficients_backward(min_cell, da, db, cache_ref),
        dtype=dtype,
    )


@pytest.mark.parametrize(
    ("numba", "steps", "n", "hidden", "scan"),
    [
        ("1", 64, 2, 4, False),  # compiled: the loop at every size
        ("0", 8, 2, 4, False),  # short
        ("0", 64, 2, 4, True),  # many steps of few elements: the scan
        ("0", 64, 8, 128, True),  # N*H = 1024 elements a step
        ("0", 64, 16, 128, False),  # N*H = 2048 elements a step on the host: the loop
    ],
)
def test_parallel_none_chooses_the_loop_or_the_scan_by_size(numba, steps, n, hidden, scan, monkeypatch):
    monkeypatch.setenv("XRNN_NUMBA", numba)
    layer = xrnn.MinGRU(2, hidden, dtype="float64", seed=0)
    _, _, cache = layer.forward(np.zeros((steps, n, 2)))
    assert cache.scans[0].parallel is scan
