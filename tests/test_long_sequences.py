"""Long sequences: no recursion, memory linear in T, and truncated BPTT."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import xrnn
from helpers import asarray, assert_close, to_numpy

torch = pytest.importorskip("torch")


def cache_bytes(obj, seen=None) -> int:
    """Bytes of the distinct arrays reachable from a cache (lists, tuples, any other sequence)."""
    seen = {} if seen is None else seen  # id -> array, kept alive so that no id is reused
    if isinstance(obj, Sequence) and not isinstance(obj, str):
        return sum(cache_bytes(o, seen) for o in obj)
    if hasattr(obj, "shape") and hasattr(obj, "dtype") and id(obj) not in seen:
        seen[id(obj)] = obj
        return int(np.prod(obj.shape)) * to_numpy(obj).itemsize
    return 0


@pytest.mark.parametrize("cls", [xrnn.RNN, xrnn.LSTM, xrnn.GRU])
def test_cache_memory_grows_linearly_in_T(cls):
    layer = cls(4, 8, xp="numpy", dtype="float64", seed=0)
    sizes = {}
    for t_steps in (100, 200, 400):
        _, _, cache = layer.forward(np.ones((t_steps, 3, 4)))
        sizes[t_steps] = cache_bytes(cache)
    per_step = [sizes[t] / t for t in sizes]
    assert max(per_step) / min(per_step) < 1.1, sizes


def test_ten_thousand_steps_run_forward_and_backward():
    layer = xrnn.LSTM(2, 4, xp="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((10_000, 2, 2))
    y, (h, c), cache = layer.forward(x)
    dx, _, grads = layer.backward(cache, np.ones_like(y))
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_long_sequences_run_on_every_backend(xp):
    layer = xrnn.GRU(2, 3, xp=xp, dtype="float64", seed=0)
    x = asarray(xp, np.random.default_rng(0).standard_normal((300, 2, 2)), "float64")
    y, _, cache = layer.forward(x)
    dx, _, _ = layer.backward(cache, xp.ones_like(y))
    assert np.all(np.isfinite(to_numpy(dx)))


@pytest.mark.parametrize("chunk", [1, 3, 5, 12])
def test_truncated_bptt_matches_torch_with_the_state_detached_between_chunks(xp, chunk):
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, dtype=torch.float64)
    layer = xrnn.LSTM.from_state_dict(module.state_dict(), xp=xp)
    x = np.random.default_rng(1).standard_normal((12, 2, 3))
    target = np.random.default_rng(2).standard_normal((12, 2, 4))

    state = None
    for start in range(0, 12, chunk):
        y, state = module(torch.from_numpy(x[start : start + chunk]), state)
        ((y - torch.from_numpy(target[start : start + chunk])) ** 2).sum().backward()
        state = tuple(s.detach() for s in state)

    def loss_and_grad(y, start):
        diff = y - asarray(xp, target[start : start + y.shape[0]], "float64")
        return float(xp.sum(diff * diff)), 2 * diff

    loss, grads, (h, c) = xrnn.truncated_bptt(layer, asarray(xp, x, "float64"), chunk, loss_and_grad)
    assert_close(h, state[0].numpy(), xp=xp)
    assert_close(c, state[1].numpy(), xp=xp)
    for key, param in module.named_parameters():
        assert_close(grads[key], param.grad.numpy(), xp=xp)


def test_truncated_bptt_with_one_chunk_is_full_bptt():
    layer = xrnn.GRU(2, 3, batch_first=True, xp="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((2, 7, 2))
    y, _, cache = layer.forward(x)
    _, _, full = layer.backward(cache, np.ones_like(y))
    loss, grads, _ = xrnn.truncated_bptt(layer, x, 7, lambda y, t0: (float(y.sum()), np.ones_like(y)))
    assert loss == pytest.approx(float(y.sum()))
    assert all(np.array_equal(grads[k], full[k]) for k in full)


def test_truncated_bptt_rejects_a_bad_chunk_size():
    layer = xrnn.RNN(2, 3, xp="numpy", seed=0)
    with pytest.raises(ValueError, match=r"chunk_size must be a positive int, got 0"):
        xrnn.truncated_bptt(layer, np.ones((4, 1, 2), np.float32), 0, lambda y, t: (0.0, y))
