"""Each cell's scalar step (what the compiled kernels run) is the cell's array step, element by element.

The Numba and CUDA kernels compile :data:`xrnn.cells.SCALAR_STEPS`; here the same functions
run as plain Python on float64 scalars, with the standard library's ``exp`` and ``tanh``,
and are held equal to the cells' ``step`` and ``step_backward`` on NumPy arrays, with
pre-activations up to ``|z| = 1e4``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_compat import numpy as npx

from xrnn.cells import CELLS, SCALAR_STEPS


def _sigmoid(z: float) -> float:
    e = math.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


def _inputs(cell, seed=0):
    rng = np.random.default_rng(seed)
    n, hidden = 4, 3
    scale = np.array([1.0, 30.0, 1e4, -1e4])[:, None]  # rows ever further into saturation
    gx = rng.standard_normal((n, cell.n_gates * hidden)) * scale
    gh = rng.standard_normal((n, cell.n_gates * hidden)) * scale
    state = tuple(rng.standard_normal((n, hidden)) for _ in range(cell.n_states))
    dstate = tuple(rng.standard_normal((n, hidden)) for _ in range(cell.n_states))
    return gx, gh, state, dstate


def _columns(a, b, j, hidden, gates):
    return [a[b, q * hidden + j] for q in range(gates)]


@pytest.mark.parametrize("name", list(SCALAR_STEPS))
def test_scalar_step_is_the_array_step(name):
    cell = CELLS[name]
    forward, backward = SCALAR_STEPS[name](_sigmoid, math.tanh)
    gx, gh, state, dstate = _inputs(cell)
    n, hidden = state[0].shape
    # a cell's per-unit vectors (the peepholes) go to both forms, after the pre-activations
    vectors = np.random.default_rng(1).standard_normal(sum(b for _, b in cell.vectors) * hidden)
    given = {"vectors": vectors} if cell.vectors else {}
    (new, cache) = cell.step(gx, gh, state, xp=npx, **given)
    dgx, dgh, direct = cell.step_backward(dstate, cache, xp=npx, **given)
    dgh = dgx if dgh is None else dgh
    fields = (cache,) if name.startswith(("rnn", "indrnn")) else tuple(cache)  # a cache that is h
    for b in range(n):
        for j in range(hidden):
            x_parts = [float(v) for v in _columns(gx, b, j, hidden, cell.n_gates)]
            h_parts = [float(v) for v in _columns(gh, b, j, hidden, cell.n_gates)]
            previous = [float(s[b, j]) for s in state[-1:]]  # c_prev (LSTM) or h_prev (GRU)
            v_parts = [float(vectors[q * hidden + j]) for q in range(len(vectors) // hidden)]
            out = forward(1.0, *x_parts, *h_parts, *v_parts, *(previous if cell.n_gates > 1 else []))
            out = out if isinstance(out, tuple) else (out,)
            if name in ("lstm", "lstm_peephole"):  # i, f, g, o, tanh_c, h, c
                expected = [f[b, j] for f in fields[:5]] + [new[0][b, j], new[1][b, j]]
            elif name in ("gru", "gru_reset_before"):  # r, z, n, h (gh_n is the recurrent part given)
                expected = [f[b, j] for f in fields[:3]] + [new[0][b, j]]
            else:
                expected = [new[0][b, j]]
            np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-300)

            d_in = [float(d[b, j]) for d in dstate]
            kept = [float(f[b, j]) for f in fields]
            grads = backward(1.0, *d_in, *kept, *v_parts)
            grads = grads if isinstance(grads, tuple) else (grads,)
            gate_x = [float(v) for v in _columns(dgx, b, j, hidden, cell.n_gates)]
            gate_h = [float(v) for v in _columns(dgh, b, j, hidden, cell.n_gates)]
            if name in ("lstm", "lstm_peephole"):  # dz_i, dz_f, dz_g, dz_o, dc_prev
                expected = [*gate_x, direct[1][b, j]]
            elif name == "gru":  # dr, dz, dn, dn * r, direct dh_prev
                expected = [*gate_x, gate_h[2], direct[0][b, j]]
            elif name == "gru_reset_before":  # dz, dn, direct dh_prev: dr waits for the late matmul
                expected = [*gate_x[1:], direct[0][b, j]]
            else:
                expected = gate_x
            np.testing.assert_allclose(grads, expected, rtol=1e-13, atol=1e-300)


def test_every_cell_has_a_per_element_or_a_per_row_form():
    # a cell that reduces over rows (layer normalisation) has a RowStep instead (tests/test_layernorm.py)
    for name, cell in CELLS.items():
        assert (name in SCALAR_STEPS) != (cell.row_step is not None), name


#: Arguments after ``one``: forward (pre-activations and previous state), backward.
ARITY = {
    "rnn_tanh": (2, 2),
    "rnn_relu": (2, 2),
    "lstm": (9, 8),
    "gru": (7, 6),
    "gru_reset_before": (7, 5),
    "lstm_peephole": (12, 11),
    "indrnn_tanh": (2, 2),  # the RNN's step: the loops form u * h_prev (Cell.diagonal)
    "indrnn_relu": (2, 2),
}


@pytest.mark.parametrize("name", list(SCALAR_STEPS))
def test_compiled_scalar_steps_keep_float32_arithmetic_in_float32(name):
    # the kernels pass one = dtype(1): no literal may turn float32 arithmetic into float64
    numba = pytest.importorskip("numba")
    from xrnn.backends.numba.activations import sigmoid, tanh

    assert set(ARITY) == set(SCALAR_STEPS)
    for function, arity in zip(SCALAR_STEPS[name](sigmoid, tanh), ARITY[name]):
        compiled = numba.njit(function)
        compiled(np.float32(1), *[np.float32(0.5)] * arity)
        (signature,) = compiled.nopython_signatures
        returned = signature.return_type
        types = list(returned) if isinstance(returned, numba.types.BaseTuple) else [returned]
        assert all(t == numba.float32 for t in types), (function.__qualname__, returned)
