"""Each cell's pointwise step, forward and backward, as one compiled loop over the batch.

The maths is the cells' own scalar step (:class:`xrnn.cells.ScalarStep`, built here on
the vectorisable activations of :mod:`.activations` and inlined into the loops); these
kernels only read its inputs and write its results, each once, biases included. The
tests hold them equal to the cells' array form.

Each kernel is one loop over batch rows ``b`` and hidden units ``j``. A row of ``G*H``
pre-activations is viewed as ``(G, H)``: one row per gate, in the cell's gate order.
Every output is written through its own 1-d row view: LLVM takes stores at several
offsets into one row as possibly dependent and then does not vectorise the loop. It
also gives up when a loop needs too many run-time overlap checks between the arrays it
reads and writes; the LSTM's seven outputs leave room for one bias array, not two.
"""

from __future__ import annotations

from ..._util.typing import Array
from ...cells import SCALAR_STEPS
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .compile import inline, jit

__all__ = [
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "rnn_relu_backward",
    "rnn_relu_forward",
    "rnn_tanh_backward",
    "rnn_tanh_forward",
]

_rnn_tanh_step, _rnn_tanh_step_backward = (inline(f) for f in SCALAR_STEPS["rnn_tanh"](_sigmoid, _tanh))
_rnn_relu_step, _rnn_relu_step_backward = (inline(f) for f in SCALAR_STEPS["rnn_relu"](_sigmoid, _tanh))
_lstm_step, _lstm_step_backward = (inline(f) for f in SCALAR_STEPS["lstm"](_sigmoid, _tanh))
_gru_step, _gru_step_backward = (inline(f) for f in SCALAR_STEPS["gru"](_sigmoid, _tanh))


@jit
def rnn_tanh_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = tanh(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            h_b[j] = _rnn_tanh_step(one, x[j] + bx[j], y[j] + bh[j])


@jit
def rnn_tanh_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (1 - h*h)``."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = _rnn_tanh_step_backward(one, dh[b, j], h[b, j])


@jit
def rnn_relu_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = relu(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            h_b[j] = _rnn_relu_step(one, x[j] + bx[j], y[j] + bh[j])


@jit
def rnn_relu_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (h > 0)``."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = _rnn_relu_step_backward(one, dh[b, j], h[b, j])


@jit
def lstm_forward(gx: Array, gh: Array, bias: Array, c_prev: Array, h: Array, out: Array) -> None:
    """LSTM step, ``z = (gx + bias) + gh``: ``h``, and ``out (6, N, H)``: ``i, f, g, o, tanh(c), c``."""
    n, hidden = c_prev.shape
    one = h.dtype.type(1)
    bias = bias.reshape((4, hidden))  # b_ih + b_hh (one array: see the comment above)
    for b in range(n):
        x, y = gx[b].reshape((4, hidden)), gh[b].reshape((4, hidden))  # gates i, f, g, o
        i_b, f_b, g_b, o_b = out[0, b], out[1, b], out[2, b], out[3, b]
        tanh_c_b, h_b, c_b = out[4, b], h[b], out[5, b]
        for j in range(hidden):
            i, f, g, o, tanh_c, h_j, c = _lstm_step(
                one,
                x[0, j] + bias[0, j],
                x[1, j] + bias[1, j],
                x[2, j] + bias[2, j],
                x[3, j] + bias[3, j],
                y[0, j],
                y[1, j],
                y[2, j],
                y[3, j],
                c_prev[b, j],
            )
            i_b[j], f_b[j], g_b[j], o_b[j] = i, f, g, o
            tanh_c_b[j], h_b[j], c_b[j] = tanh_c, h_j, c


@jit
def lstm_backward(
    dh: Array,
    dc_next: Array,
    i: Array,
    f: Array,
    g: Array,
    o: Array,
    tanh_c: Array,
    c_prev: Array,
    dz: Array,
    dc_prev: Array,
) -> None:
    """LSTM step backward: ``dz (N, 4H)`` and ``dc_prev (N, H)`` from the step's cache."""
    n, hidden = dh.shape
    one = dh.dtype.type(1)
    for b in range(n):
        d = dz[b].reshape((4, hidden))
        dz_i, dz_f, dz_g, dz_o, dc_prev_b = d[0], d[1], d[2], d[3], dc_prev[b]
        for j in range(hidden):
            dz_i[j], dz_f[j], dz_g[j], dz_o[j], dc_prev_b[j] = _lstm_step_backward(
                one, dh[b, j], dc_next[b, j], i[b, j], f[b, j], g[b, j], o[b, j], tanh_c[b, j], c_prev[b, j]
            )


@jit
def gru_forward(gx: Array, gh: Array, bx: Array, bh: Array, h_prev: Array, h: Array, out: Array) -> None:
    """GRU step, ``gx + bx`` and ``gh + bh``: ``h``, and ``out (4, N, H)``: ``r, z, n, gh_n``."""
    rows, hidden = h_prev.shape
    one = h.dtype.type(1)
    bx, bh = bx.reshape((3, hidden)), bh.reshape((3, hidden))
    for b in range(rows):
        x, y = gx[b].reshape((3, hidden)), gh[b].reshape((3, hidden))  # gates r, z, n
        r_b, z_b, n_b, gh_n_b, h_b = out[0, b], out[1, b], out[2, b], out[3, b], h[b]
        for j in range(hidden):
            gh_n = y[2, j] + bh[2, j]
            r, z, n, h_j = _gru_step(
                one,
                x[0, j] + bx[0, j],
                x[1, j] + bx[1, j],
                x[2, j] + bx[2, j],
                y[0, j] + bh[0, j],
                y[1, j] + bh[1, j],
                gh_n,
                h_prev[b, j],
            )
            r_b[j], z_b[j], n_b[j], gh_n_b[j], h_b[j] = r, z, n, gh_n, h_j


@jit
def gru_backward(
    dh: Array,
    r: Array,
    z: Array,
    n: Array,
    gh_n: Array,
    h_prev: Array,
    dgx: Array,
    dgh: Array,
    dh_direct: Array,
) -> None:
    """GRU step backward: ``dgx, dgh (N, 3H)`` and the direct ``dh_prev = dh * z``."""
    rows, hidden = dh.shape
    one = dh.dtype.type(1)
    for b in range(rows):
        x, y = dgx[b].reshape((3, hidden)), dgh[b].reshape((3, hidden))
        dx_r, dx_z, dx_n, dy_r, dy_z, dy_n = x[0], x[1], x[2], y[0], y[1], y[2]
        direct = dh_direct[b]
        for j in range(hidden):
            dr, dz, dn, dn_r, direct[j] = _gru_step_backward(
                one, dh[b, j], r[b, j], z[b, j], n[b, j], gh_n[b, j], h_prev[b, j]
            )
            dx_r[j], dx_z[j], dx_n[j] = dr, dz, dn
            dy_r[j], dy_z[j], dy_n[j] = dr, dz, dn_r
