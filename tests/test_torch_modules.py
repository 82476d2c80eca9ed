"""``xrnn.torch.LSTM``, ``GRU`` and ``RNN`` behave as ``torch.nn``'s modules, held against torch.nn itself.

A port of the behaviours of ``torch.nn.LSTM`` that users rely on: the state dict (keys,
shapes, order), ``batch_first``, initial states, ``bidirectional``, ``num_layers``,
``proj_size``, ``bias=False``, dropout under ``train()`` and ``eval()``; and what a module
must survive: ``torch.optim``, ``torch.save``, ``copy.deepcopy``, pickling,
``torch.compile`` and ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys

import pytest

from conftest import BACKENDS

torch = pytest.importorskip("torch")
if "torch" not in BACKENDS:
    pytest.skip("torch is not under test (XRNN_BACKEND)", allow_module_level=True)

import xrnn.torch as xt  # noqa: E402

IN, H, T, N = 3, 4, 5, 2
KINDS = {"lstm": (xt.LSTM, torch.nn.LSTM), "gru": (xt.GRU, torch.nn.GRU), "rnn": (xt.RNN, torch.nn.RNN)}
CONFIGS = {
    "default": {},
    "batch_first": {"batch_first": True},
    "stacked_bidirectional": {"num_layers": 2, "bidirectional": True},
    "no_bias": {"bias": False},
}


def _pair(kind: str, dtype=torch.float64, **options):
    """An xrnn module and the torch.nn module of the same configuration, with the same parameters."""
    ours_class, theirs_class = KINDS[kind]
    theirs = theirs_class(IN, H, dtype=dtype, **options)
    ours = ours_class(IN, H, dtype=dtype, **options)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _input(batch_first: bool = False, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (N, T, IN) if batch_first else (T, N, IN)
    return torch.randn(shape, generator=g, dtype=dtype, requires_grad=True)


def _flat(state):
    return state if isinstance(state, tuple) else (state,)


def _run(module, x, hx=None, **call):
    """Outputs, final states and every gradient (input, initial state, parameters) of one step."""
    out, state = module(x, hx, **call)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    loss = (out * weights).sum() + sum((s**2).sum() for s in _flat(state))
    leaves = [x, *(h for h in _flat(hx) if h is not None)] if hx is not None else [x]
    grads = torch.autograd.grad(loss, [*leaves, *module.parameters()])
    return [out, *_flat(state), *grads]


def _assert_same(ours, theirs, tol=1e-10):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_state_dict_is_torch_nns_key_for_key_and_shape_for_shape(kind, config):
    ours_class, theirs_class = KINDS[kind]
    ours, theirs = ours_class(IN, H, **CONFIGS[config]), theirs_class(IN, H, **CONFIGS[config])
    assert [(k, v.shape, v.dtype) for k, v in ours.state_dict().items()] == [
        (k, v.shape, v.dtype) for k, v in theirs.state_dict().items()
    ]
    assert all(isinstance(p, torch.nn.Parameter) for p in ours.parameters())


def test_the_projected_lstms_state_dict_is_torch_nns():
    ours, theirs = xt.LSTM(IN, H, 2, proj_size=2), torch.nn.LSTM(IN, H, 2, proj_size=2)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_outputs_states_and_every_gradient_equal_torch_nns(kind, config):
    ours, theirs = _pair(kind, **CONFIGS[config])
    x = _input(CONFIGS[config].get("batch_first", False))
    _assert_same(_run(ours, x), _run(theirs, x))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_given_initial_state_and_its_gradient_equal_torch_nns(kind):
    ours, theirs = _pair(kind, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(1)
    parts = [torch.randn(4, N, H, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    hx = tuple(parts) if kind == "lstm" else parts[0]
    _assert_same(_run(ours, _input(), hx), _run(theirs, _input(), hx))


def test_a_projected_lstm_equals_torch_nns():
    ours, theirs = _pair("lstm", num_layers=2, bidirectional=True, proj_size=2)
    _assert_same(_run(ours, _input()), _run(theirs, _input()))


def test_the_relu_rnn_equals_torch_nns():
    ours, theirs = _pair("rnn", nonlinearity="relu", num_layers=2)
    _assert_same(_run(ours, _input()), _run(theirs, _input()))


@pytest.mark.parametrize("kind", list(KINDS))
def test_lengths_give_what_a_packed_sequence_gives_torch_nn(kind):
    ours, theirs = _pair(kind, bidirectional=True)
    x, lengths = _input(), [T, 2]
    out, state = ours(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_ref, state_ref = theirs(packed)
    out_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(out_ref, total_length=T)
    _assert_same([out, *_flat(state)], [out_ref, *_flat(state_ref)])


def test_an_unbatched_input_gives_unbatched_outputs_as_in_torch_nn():
    ours, theirs = _pair("lstm", num_layers=2)
    x = _input()[:, 0, :]
    out, (h, c) = ours(x)
    out_ref, (h_ref, c_ref) = theirs(x)
    _assert_same([out, h, c], [out_ref, h_ref, c_ref])


def test_dropout_acts_in_training_and_not_in_eval_as_in_torch_nn():
    ours, theirs = _pair("gru", num_layers=2, dropout=0.5)
    x = _input()
    ours.eval(), theirs.eval()
    _assert_same(_run(ours, x), _run(theirs, x))  # eval: no dropout
    ours.train()
    first, second = ours(x)[0], ours(x)[0]
    assert not torch.equal(first, second)  # fresh masks each call
    ours.eval()
    assert torch.equal(ours(x)[0], ours(x)[0])


def test_dropout_one_drops_every_output_between_layers_as_in_torch_nn():
    # p = 1 makes the masks certain (all zero), so the training pass can be compared exactly
    ours, theirs = _pair("lstm", num_layers=2, dropout=1.0)
    _assert_same(_run(ours.train(), _input()), _run(theirs.train(), _input()))


def test_dropout_on_one_layer_warns_as_torch_nn_does():
    with pytest.warns(UserWarning, match="dropout"):
        torch.nn.GRU(IN, H, dropout=0.3)
    with pytest.warns(UserWarning, match="dropout"):
        xt.GRU(IN, H, dropout=0.3)


def test_torch_optim_trains_it_as_it_trains_torch_nn():
    ours, theirs = _pair("lstm", num_layers=2)
    optimisers = [torch.optim.Adam(m.parameters(), lr=0.05) for m in (ours, theirs)]
    x, target = _input().detach(), torch.ones(T, N, H, dtype=torch.float64)
    for _ in range(3):
        for module, optimiser in zip((ours, theirs), optimisers, strict=True):
            optimiser.zero_grad()
            ((module(x)[0] - target) ** 2).mean().backward()
            optimiser.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("how", ["torch.save", "deepcopy", "pickle"])
def test_a_copy_or_a_saved_module_computes_what_the_module_computes(how):
    module = xt.LSTM(IN, H, 2, bidirectional=True, dtype=torch.float64)
    if how == "torch.save":
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        again = torch.load(buffer, weights_only=False)
    elif how == "deepcopy":
        again = copy.deepcopy(module)
    else:
        again = pickle.loads(pickle.dumps(module))
    assert again.state_dict().keys() == module.state_dict().keys()
    _assert_same(_run(again, _input()), _run(module, _input()))
    with torch.no_grad():
        next(again.parameters()).add_(1.0)  # a copy owns its parameters
    assert not torch.equal(next(again.parameters()), next(module.parameters()))


# Dynamo reads .grad of the non-leaf tensor a graph break hands back: torch's own warning
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf Tensor:UserWarning")
def test_torch_compile_runs_it_with_a_graph_break():
    ours, theirs = _pair("gru")
    compiled = torch.compile(ours, backend="eager")
    x = _input()
    out = compiled(x)[0]
    out.sum().backward()
    torch.testing.assert_close(out, theirs(x)[0], atol=1e-10, rtol=1e-10)
    assert all(p.grad is not None for p in ours.parameters())


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck_passes_through_input_state_and_parameters(kind):
    ours_class, _ = KINDS[kind]
    module = ours_class(2, 3, num_layers=2, bidirectional=True, dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def run(x, h0, *params):
        state = (h0, torch.zeros_like(h0)) if kind == "lstm" else h0
        out, final = torch.func.functional_call(module, dict(zip(names, params)), (x, state))
        return out, *_flat(final)

    assert torch.autograd.gradcheck(run, (x, h0, *module.parameters()))


def test_the_backward_runs_on_the_compiled_kernels(monkeypatch):
    pytest.importorskip("numba")
    from xrnn.backends.numba import NumbaOps

    calls = []
    backward = NumbaOps.backward
    counted = lambda self, *a, **k: calls.append(1) or backward(self, *a, **k)  # noqa: E731
    monkeypatch.setattr(NumbaOps, "backward", counted)
    module = xt.LSTM(IN, H, dtype=torch.float32)
    module(_input(dtype=torch.float32))[0].sum().backward()
    assert calls and all(p.grad is not None for p in module.parameters())


def test_importing_xrnn_does_not_import_torch():
    code = "import sys, xrnn; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", [xt.LSTM, xt.GRU, xt.RNN], ids=lambda m: m.__name__)
def test_each_module_documents_every_constructor_argument_and_is_in_the_api_reference(module):
    import inspect
    import pathlib

    doc = inspect.getdoc(module) or ""
    documented = set()
    for line in doc.splitlines():
        if line and not line.startswith(" ") and " : " in line:
            documented |= {part.strip() for part in line.split(" : ")[0].split(",")}
    assert set(inspect.signature(module).parameters) <= documented
    api = pathlib.Path(__file__).parents[1] / "docs" / "api.rst"
    assert f"xrnn.torch.{module.__name__}" in api.read_text()
