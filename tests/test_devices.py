"""Arrays stay on their device: parameters where asked, results where the inputs are, mixing refused.

array-api-strict offers devices besides the CPU (``device1``, ``device2``), so these run on any
machine; on a GPU the same rules hold for CuPy and torch (ci/gpu.sh runs the suite there).
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import device as device_of

import xrnn
from helpers import LAYER_KINDS, make_layer, to_numpy
from xrnn._util.namespaces import on_host, to_host

strict = pytest.importorskip("array_api_strict")
try:
    ONE, TWO = strict.Device("device1"), strict.Device("device2")
except ValueError:  # pragma: no cover - an array-api-strict without extra devices
    pytest.skip("this array-api-strict has no devices besides the CPU", allow_module_level=True)


def _on(a, where):
    return strict.asarray(np.asarray(a, dtype=np.float32), device=where)


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_parameters_land_on_the_device_asked_for_and_results_stay_there(kind):
    layer = make_layer(
        kind, 3, 4, num_layers=2, bidirectional=True, xp="array_api_strict", device=ONE, seed=0
    )
    assert {device_of(v) for v in layer.params.values()} == {ONE}
    x = _on(np.ones((5, 2, 3)), ONE)
    lengths = strict.asarray([5, 2], device=ONE)
    y, state, cache = layer.forward(x, lengths=lengths)
    dx, dstate, grads = layer.backward(cache, y, dstate=state)
    states = [*state, *dstate] if isinstance(state, tuple) else [state, dstate]
    assert {device_of(a) for a in [y, dx, *states, *grads.values()]} == {ONE}


def test_inputs_on_another_device_than_the_parameters_are_refused_by_name():
    layer = xrnn.GRU(3, 4, xp="array_api_strict", device=ONE, seed=0)
    with pytest.raises(ValueError, match=r"all arrays must sit on one device: x is on .*device2.* but"):
        layer.forward(_on(np.ones((5, 2, 3)), TWO))


def test_a_model_trains_on_the_device_of_its_parameters():
    model = xrnn.SequenceModel("lstm", 3, 4, 2, xp="array_api_strict", device=ONE, seed=0)
    x = _on(np.ones((5, 2, 3)), ONE)
    logits, _, cache = model.forward(x)
    loss, dlogits = xrnn.softmax_cross_entropy(logits, strict.asarray(np.zeros((5, 2), np.int64), device=ONE))
    dx, grads = model.backward(cache, dlogits)
    assert {device_of(a) for a in [logits, loss, dx, *grads.values()]} == {ONE}


def test_to_host_copies_any_array_to_numpy(xp):
    a = xp.asarray([[1.0, 2.0], [3.0, 4.0]])
    host = to_host(a)
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, [[1.0, 2.0], [3.0, 4.0]])
    host[0, 0] = 9.0  # a copy: the array itself is untouched
    assert to_numpy(a)[0, 0] == 1.0


def test_device_arrays_are_not_on_the_host():
    jnp = pytest.importorskip("jax.numpy")
    assert on_host(np.zeros(1)) and on_host(strict.zeros(1, device=ONE))
    assert not on_host(jnp.zeros(1))  # JAX: a value read may wait for a device (or a trace)


def test_an_out_of_range_target_on_a_device_makes_the_loss_nan_without_a_wait():
    jnp = pytest.importorskip("jax.numpy")
    logits = jnp.zeros((2, 3, 4))
    targets = jnp.asarray([[0, 1, 2], [3, 4, 0]])  # 4 is out of range for C = 4
    loss, dlogits = xrnn.softmax_cross_entropy(logits, targets)
    assert np.isnan(float(loss))
    bad = np.isnan(np.asarray(dlogits)).all(axis=-1)
    np.testing.assert_array_equal(bad, [[False, False, False], [False, True, False]])
    fine, _ = xrnn.softmax_cross_entropy(logits, jnp.zeros((2, 3), dtype=jnp.int32))
    assert np.isfinite(float(fine))
