"""Every gradient of the layer API against central finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_layer, numeric_gradient


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=["full", "ragged"])
def test_layer_gradients_agree_with_finite_differences(kind, lengths):
    layer = make_layer(kind, 2, 2, num_layers=2, bidirectional=True, xp="numpy", dtype="float64", seed=5)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 4))
    parts = [rng.standard_normal((4, 2, 2)) for _ in range(2 if kind == "lstm" else 1)]
    dparts = [rng.standard_normal((4, 2, 2)) for _ in parts]

    def pack(p):
        return tuple(p) if kind == "lstm" else p[0]

    def loss():
        y, s, _ = layer.forward(x, pack(parts), lengths=lengths)
        return float(
            np.sum(y * dy) + sum(np.sum(a * b) for a, b in zip(s if kind == "lstm" else (s,), dparts))
        )

    _, _, cache = layer.forward(x, pack(parts), lengths=lengths)
    dx, ds0, grads = layer.backward(cache, dy, pack(dparts))
    assert rel(dx, numeric_gradient(loss, x)) < 1e-6
    for got, part in zip(ds0 if kind == "lstm" else (ds0,), parts):
        assert rel(got, numeric_gradient(loss, part)) < 1e-6
    for key, value in layer.params.items():
        assert rel(grads[key], numeric_gradient(loss, value)) < 1e-6, key
