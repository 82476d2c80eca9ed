"""``layer.apply`` inside torch programs: autograd runs xrnn's backward; modules train with torch.optim.

The oracle of every gradient is ``layer.backward`` of the same layer on NumPy (float64, to
1e-10). These tests are the torch leg's: they run when torch is installed and
``XRNN_BACKEND`` does not narrow the backends to another one.
"""

from __future__ import annotations

import numpy as np
import pytest

import xrnn
from conftest import BACKENDS
from helpers import assert_close, make_layer

if "torch" not in BACKENDS:
    pytest.skip("torch is not installed or not among the backends under test", allow_module_level=True)

import torch  # noqa: E402

T, N, IN, H = 5, 3, 2, 4
LENGTHS = [5, 2, 1]

#: (num_layers, bidirectional, lengths): every value of each axis, each pair of values once.
CONFIGS = [(1, False, None), (1, True, LENGTHS), (2, False, LENGTHS), (2, True, None)]

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _case(kind: str, num_layers: int, bidirectional: bool):
    layer = make_layer(
        kind,
        input_size=IN,
        hidden_size=H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dtype="float64",
        xp="numpy",
        seed=1,
    )
    rng = np.random.default_rng(2)
    d = 2 if bidirectional else 1
    x, dy = rng.standard_normal((T, N, IN)), rng.standard_normal((T, N, d * H))
    states = tuple(
        rng.standard_normal((num_layers * d, N, H)) for _ in range(2 if isinstance(layer, xrnn.LSTM) else 1)
    )
    return layer, x, dy, states


def _leaf(a, device="cpu"):
    return torch.tensor(a, device=device, requires_grad=True)


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _state(states):
    return states if len(states) == 2 else states[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("num_layers", "bidirectional", "lengths"), CONFIGS)
def test_torch_autograd_through_apply_is_the_layers_backward(
    kind, num_layers, bidirectional, lengths, device
):
    layer, x, dy, states = _case(kind, num_layers, bidirectional)
    dstate = tuple(0.5 * s for s in states)
    _, _, cache = layer.forward(x, _state(states), lengths)
    dx, dstate0, grads = layer.backward(cache, dy, _state(dstate))
    params = {k: _leaf(v, device) for k, v in layer.params.items()}
    x_t, states_t = _leaf(x, device), tuple(_leaf(s, device) for s in states)
    y, out = layer.apply(params, x_t, _state(states_t), lengths)
    loss = torch.sum(y * torch.tensor(dy, device=device))
    loss = loss + sum(torch.sum(a * torch.tensor(b, device=device)) for a, b in zip(_parts(out), dstate))
    loss.backward()
    assert_close(x_t.grad, dx, dtype="float64")
    for got, expected in zip(states_t, _parts(dstate0), strict=True):
        assert_close(got.grad, expected, dtype="float64")
    for key, expected in grads.items():
        assert_close(params[key].grad, expected, dtype="float64")


def test_gradients_reach_whichever_tensors_require_them():
    layer, x, dy, _ = _case("gru", 1, False)
    _, _, cache = layer.forward(x)
    dx, _, _ = layer.backward(cache, dy)
    params = {k: torch.tensor(v) for k, v in layer.params.items()}  # constants
    x_t = _leaf(x)
    y, _ = layer.apply(params, x_t)
    (y * torch.tensor(dy)).sum().backward()
    assert_close(x_t.grad, dx, dtype="float64")
    assert all(p.grad is None for p in params.values())


def test_without_autograd_apply_is_the_forward_pass():
    layer, x, _, _ = _case("lstm", 1, True)
    params = {k: _leaf(v) for k, v in layer.params.items()}
    with torch.no_grad():
        y, (h, c) = layer.apply(params, torch.tensor(x))
    assert y.grad_fn is None and not y.requires_grad
    y_ref, (h_ref, _), _ = layer.forward(x)
    assert_close(y, y_ref, dtype="float64")
    assert_close(h, h_ref, dtype="float64")


def test_an_input_changed_in_place_before_backward_is_refused():
    layer, x, _, _ = _case("rnn_tanh", 1, False)
    params = {k: _leaf(v) for k, v in layer.params.items()}
    x_t = torch.tensor(x)
    y, _ = layer.apply(params, x_t)
    x_t += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_a_gradient_of_the_gradient_is_refused_rather_than_wrong():
    layer, x, _, _ = _case("rnn_tanh", 1, False)
    params = {k: _leaf(v) for k, v in layer.params.items()}
    x_t = _leaf(x)
    y, _ = layer.apply(params, x_t)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad((y**2).sum(), x_t, create_graph=True)


def test_y_changed_in_place_before_backward_is_refused():
    layer, x, _, _ = _case("rnn_tanh", 1, False)
    params = {k: _leaf(v) for k, v in layer.params.items()}
    y, _ = layer.apply(params, torch.tensor(x))
    z = y.detach()
    z.mul_(2.0)  # the memory the cache shares, through an alias autograd does not see
    with pytest.raises(ValueError, match="changed in place"):
        y.sum().backward()


class _Regressor(torch.nn.Module):
    """An xrnn LSTM's parameters as ``nn.Parameter``s, and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = xrnn.LSTM(2, 16, xp="torch", seed=0)
        self.rnn_params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(v) for k, v in self.lstm.params.items()}
        )
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x):
        y, _ = self.lstm.apply({k: v for k, v in self.rnn_params.items()}, x)
        return self.head(y)


def _running_sum_task():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 8, 2, generator=g)
    return x, torch.cumsum(x[..., :1], dim=0) / 4.0


def test_a_torch_module_of_xrnn_parameters_trains_with_adam():
    model = _Regressor()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, target = _running_sum_task()
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.mean((model(x) - target) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.rnn_params.values())
    assert losses[-1] < 0.3 * losses[0]


# Dynamo reads .grad of the non-leaf tensor a graph break hands back (any disabled function's
# result, not only apply's): a warning of torch's own, which this suite would turn into an error.
_DYNAMO_GRAD_WARNING = "ignore:The .grad attribute of a Tensor that is not a leaf Tensor:UserWarning"


@pytest.mark.filterwarnings(_DYNAMO_GRAD_WARNING)
def test_torch_compile_runs_apply_as_a_graph_break():
    model = _Regressor()
    x, _ = _running_sum_task()
    expected = model(x)
    compiled = torch.compile(model, backend="eager")
    out = compiled(x)
    out.sum().backward()
    assert_close(out, expected, dtype="float32")
    assert all(p.grad is not None for p in model.rnn_params.values())


@pytest.mark.filterwarnings(_DYNAMO_GRAD_WARNING)
def test_torch_compile_fullgraph_says_why_apply_cannot_be_in_the_graph():
    torch._dynamo.reset()  # the module's code compiled by another test would be reused, break and all
    model = _Regressor()
    x, _ = _running_sum_task()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with pytest.raises(Exception, match=r"(?s)xrnn's layer.apply runs its own time loop.*fullgraph=True"):
        compiled(x)


def test_sequence_model_apply_trains_under_torch_autograd():
    model = xrnn.SequenceModel("gru", 2, 8, 1, xp="torch", dtype="float64", seed=3)
    params = {k: _leaf(v.numpy()) for k, v in model.params.items()}
    x, target = _running_sum_task()
    z, _ = model.apply(params, x.double())
    torch.mean((z - target.double()) ** 2).backward()
    z_ref, _, cache = model.forward(x.double())
    _, grads = model.backward(cache, 2.0 * (z_ref - target.double()) / z_ref.numel())  # d mean((z - t)^2)
    for key, expected in grads.items():
        assert_close(params[key].grad, expected, dtype="float64")
