"""The same inputs and seed give bitwise identical outputs and gradients, run to run."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

import xrnn
from helpers import asarray, to_numpy

SCRIPT = """
import hashlib, numpy as np, xrnn
layer = xrnn.LSTM(5, 7, num_layers=2, bidirectional=True, xp="numpy", seed=3)
x = np.random.default_rng(4).standard_normal((9, 4, 5)).astype(np.float32)
y, (h, c), cache = layer.forward(x, lengths=[9, 3, 5, 1])
dx, _, grads = layer.backward(cache, np.ones_like(y))
arrays = [y, h, c, dx, *(grads[k] for k in sorted(grads))]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest())
"""


def _run(xp, cls):
    layer = cls(5, 7, num_layers=2, bidirectional=True, xp=xp, seed=3)
    x = asarray(xp, np.random.default_rng(4).standard_normal((9, 4, 5)), "float32")
    y, state, cache = layer.forward(x, lengths=[9, 3, 5, 1])
    dx, dstate, grads = layer.backward(cache, xp.ones_like(y))
    parts = [y, dx, *(state if isinstance(state, tuple) else (state,)), *(grads[k] for k in sorted(grads))]
    return hashlib.sha256(b"".join(np.ascontiguousarray(to_numpy(a)).tobytes() for a in parts)).hexdigest()


@pytest.mark.parametrize("cls", [xrnn.RNN, xrnn.LSTM, xrnn.GRU])
def test_two_runs_in_one_process_are_bitwise_identical(xp, cls):
    assert _run(xp, cls) == _run(xp, cls)


def test_two_processes_are_bitwise_identical():
    digests = {
        subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(digests) == 1
