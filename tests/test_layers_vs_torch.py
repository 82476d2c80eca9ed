"""The layer API against ``torch.nn.RNN/LSTM/GRU`` and autograd, on every backend.

Torch runs in float64 as the oracle: outputs, final states, ``dx``, initial-state
gradients and every parameter gradient, with packed sequences for ragged batches; the
options grid adds ``bias=False``, the LSTM's ``proj_size`` and eval-mode ``dropout``.
NumPy runs both of its paths (:data:`PATHS`): the Numba Ops and the generic one.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from conftest import AVAILABLE, BACKENDS
from helpers import asarray, assert_close, layer_class, to_numpy, torch_class
from xrnn._util.namespaces import resolve_namespace
from xrnn.backends import ops_for

torch = pytest.importorskip("torch")

INPUT, HIDDEN, PROJ = 3, 4, 2
TORCH_DEVICE = os.environ.get("XRNN_TORCH_DEVICE", "cpu")  # where the oracle runs

#: Every backend under test, and NumPy twice: on the Numba Ops and on the generic one.
PATHS = [(name, "numba" if name == "numpy" else "") for name in BACKENDS]
PATHS += [("numpy", "generic")] if "numpy" in BACKENDS else []


@pytest.fixture(params=PATHS, ids=[f"{name}-{path}" if path else name for name, path in PATHS])
def xp_path(request, monkeypatch):
    """The array namespace of each backend under test, NumPy on each of its two paths."""
    name, path = request.param
    if not AVAILABLE.get(name, False):
        pytest.skip(f"backend {name} is not installed")
    if path:
        monkeypatch.setenv("XRNN_NUMBA", "1" if path == "numba" else "0")
    return resolve_namespace(name)


def _torch_module(
    kind: str, num_layers: int, bidirectional: bool, batch_first: bool, seed: int = 0, **options
):
    torch_cls, kwargs = torch_class(kind)
    torch.manual_seed(seed)
    return torch_cls(
        INPUT,
        HIDDEN,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=torch.float64,
        **kwargs,
        **options,
    )


@functools.cache
def reference(
    kind: str,
    num_layers: int,
    bidirectional: bool,
    lengths: tuple[int, ...] | None,
    batch_first: bool,
    t_steps: int = 5,
    n: int = 3,
    bias: bool = True,
    proj_size: int = 0,
    dropout: float = 0.0,
) -> dict:
    """Inputs, upstream gradients and torch's results for one configuration (NumPy, float64).

    With ``dropout``, torch runs in eval mode (no dropout: the output is deterministic).
    Torch runs on ``$XRNN_TORCH_DEVICE`` (default ``cpu``; ``ci/gpu.sh`` sets ``cuda``: cuDNN).
    """
    on = {"device": TORCH_DEVICE}
    options = {"bias": bias, "dropout": dropout} | ({"proj_size": proj_size} if proj_size else {})
    module = _torch_module(kind, num_layers, bidirectional, batch_first, **options).to(TORCH_DEVICE)
    if dropout:
        module.eval()
    rng = np.random.default_rng(1)
    d, h_out = (2 if bidirectional else 1), (proj_size or HIDDEN)
    x = rng.standard_normal((n, t_steps, INPUT) if batch_first else (t_steps, n, INPUT))
    state0 = [
        rng.standard_normal((num_layers * d, n, size))
        for size in (h_out, HIDDEN)[: 2 if kind == "lstm" else 1]
    ]
    dy = rng.standard_normal((n, t_steps, d * h_out) if batch_first else (t_steps, n, d * h_out))
    dstate = [rng.standard_normal(s.shape) for s in state0]

    xt = torch.tensor(x, requires_grad=True, **on)
    st = [torch.tensor(s, requires_grad=True, **on) for s in state0]
    hx = tuple(st) if kind == "lstm" else st[0]
    if lengths is None:
        yt, sn = module(xt, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
        yp, sn = module(packed, hx)
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, batch_first=batch_first, total_length=t_steps)
    sn = list(sn) if kind == "lstm" else [sn]
    upstream = sum((s * torch.tensor(g, **on)).sum() for s, g in zip(sn, dstate))
    loss = (yt * torch.tensor(dy, **on)).sum() + upstream
    loss.backward()
    return {
        "state_dict": {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()},
        "x": x,
        "state0": state0,
        "dy": dy,
        "dstate": dstate,
        "y": yt.detach().cpu().numpy(),
        "state": [s.detach().cpu().numpy() for s in sn],
        "dx": xt.grad.cpu().numpy(),
        "dstate0": [s.grad.cpu().numpy() for s in st],
        "grads": {k: p.grad.cpu().numpy().copy() for k, p in module.named_parameters()},
    }


def _run(xp, dtype, kind, num_layers, bidirectional, lengths, batch_first, **shape):
    ref = reference(kind, num_layers, bidirectional, lengths, batch_first, **shape)
    layer_cls, kwargs = layer_class(kind)
    dropout = shape.get("dropout", 0.0)
    layer = layer_cls.from_state_dict(
        ref["state_dict"], batch_first=batch_first, xp=xp, dtype=dtype, dropout=dropout, **kwargs
    )
    if dropout:
        layer.eval()
    parts = [asarray(xp, s, dtype) for s in ref["state0"]]
    dparts = [asarray(xp, s, dtype) for s in ref["dstate"]]
    state = tuple(parts) if kind == "lstm" else parts[0]
    dstate = tuple(dparts) if kind == "lstm" else dparts[0]
    y, state_n, cache = layer.forward(asarray(xp, ref["x"], dtype), state, lengths=lengths)
    dx, dstate0, grads = layer.backward(cache, asarray(xp, ref["dy"], dtype), dstate)
    return ref, y, state_n, dx, dstate0, grads


def _check_all(ref, y, state_n, dx, dstate0, grads, xp, dtype, kind, tol=None):
    assert_close(y, ref["y"], xp=xp, dtype=dtype, tol=tol)
    for got, want in zip(state_n if kind == "lstm" else (state_n,), ref["state"]):
        assert_close(got, want, xp=xp, dtype=dtype, tol=tol)
    assert_close(dx, ref["dx"], xp=xp, dtype=dtype, tol=tol)
    for got, want in zip(dstate0 if kind == "lstm" else (dstate0,), ref["dstate0"]):
        assert_close(got, want, xp=xp, dtype=dtype, tol=tol)
    assert list(grads) == list(ref["grads"])
    for key, want in ref["grads"].items():
        assert_close(grads[key], want, xp=xp, dtype=dtype, tol=tol)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("lengths", [None, (5, 1, 3)], ids=["full", "ragged"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_layer_matches_torch_forward_and_every_gradient(
    xp_path, dtype, kind, num_layers, bidirectional, lengths, batch_first
):
    results = _run(xp_path, dtype, kind, num_layers, bidirectional, lengths, batch_first)
    tol = 1e-9 if dtype == "float64" else 1e-4
    _check_all(*results, xp_path, dtype, kind, tol=tol)


def _options_grid():
    """``bias`` x ``proj_size`` for the LSTM, ``bias=False`` for the others (``bias=True``, no
    projection is the grid above); two layers run with ``dropout=0.3`` in eval mode."""
    for kind in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        for bias, proj in [(True, PROJ), (False, 0), (False, PROJ)] if kind == "lstm" else [(False, 0)]:
            yield pytest.param(kind, bias, proj, id=f"{kind}-bias{int(bias)}-proj{proj}")


@pytest.mark.parametrize("lengths", [None, (5, 1, 3)], ids=["full", "ragged"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind,bias,proj_size", list(_options_grid()))
def test_layer_options_match_torch_forward_and_every_gradient(
    xp_path, dtype, kind, bias, proj_size, num_layers, bidirectional, lengths
):
    dropout = 0.3 if num_layers > 1 else 0.0
    options = {"bias": bias, "proj_size": proj_size, "dropout": dropout}
    results = _run(xp_path, dtype, kind, num_layers, bidirectional, lengths, False, **options)
    tol = 1e-9 if dtype == "float64" else 1e-4
    _check_all(*results, xp_path, dtype, kind, tol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path,expected", [("1", "NumbaOps"), ("0", "Ops")])
def test_numpy_paths_of_the_grid_are_the_numba_and_the_generic_ops(monkeypatch, dtype, path, expected):
    pytest.importorskip("numba")
    monkeypatch.setenv("XRNN_NUMBA", path)
    assert type(ops_for(resolve_namespace("numpy"), dtype)).__name__ == expected


@pytest.mark.parametrize("t_steps,n", [(1, 1), (1, 4), (6, 1), (9, 5)])
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm"])
def test_single_layer_matches_torch_on_edge_shapes(xp, dtype, kind, t_steps, n):
    results = _run(xp, dtype, kind, 1, False, None, False, t_steps=t_steps, n=n)
    _check_all(*results, xp, dtype, kind)


def test_weights_from_torch_round_trip_bit_for_bit(xp, kind):
    module = _torch_module(kind, 2, True, False).float()
    source = module.state_dict()
    layer_cls, kwargs = layer_class(kind)
    layer = layer_cls.from_state_dict(source, xp=xp, **kwargs)
    assert str(layer.params["weight_ih_l0"].dtype).endswith("float32")
    back = _torch_module(kind, 2, True, False, seed=7).float()
    back.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in layer.state_dict().items()})
    for key, value in source.items():
        assert torch.equal(back.state_dict()[key], value), key


def test_exported_weights_give_xrnn_outputs_in_torch(xp, kind):
    (layer_cls, kwargs), (torch_cls, _) = layer_class(kind), torch_class(kind)
    layer = layer_cls(
        INPUT, HIDDEN, num_layers=2, bidirectional=True, xp=xp, dtype="float64", seed=3, **kwargs
    )
    module = torch_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, dtype=torch.float64, **kwargs)
    module.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, INPUT))
    y, _, _ = layer.forward(xp.asarray(x))
    assert_close(y, module(torch.from_numpy(x))[0].detach().numpy(), xp=xp, dtype="float64")


def test_initialisation_is_uniform_within_one_over_sqrt_hidden_as_torch(kind):
    (layer_cls, kwargs), (torch_cls, _) = layer_class(kind), torch_class(kind)
    layer = layer_cls(INPUT, 16, num_layers=2, seed=0, xp="numpy", **kwargs)
    module = torch_cls(INPUT, 16, num_layers=2, **kwargs)
    assert {k: tuple(v.shape) for k, v in layer.params.items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()
    }
    values = np.concatenate([to_numpy(v).ravel() for v in layer.params.values()])
    assert np.all(np.abs(values) <= 1 / 4) and values.std() > 0.1
    again = layer_cls(INPUT, 16, num_layers=2, seed=0, xp="numpy", **kwargs)
    assert all(np.array_equal(layer.params[k], again.params[k]) for k in layer.params)
