"""Each cell's pointwise step, forward and backward, as one compiled loop over the batch.

Every kernel computes exactly the equations of its cell's module (:mod:`xrnn.cells`),
reading each input once and writing each output once, biases included; the tests hold
them equal to the cells' array form.

Each kernel is one loop over batch rows ``b`` and hidden units ``j``. A row of ``G*H``
pre-activations is viewed as ``(G, H)``: one row per gate, in the cell's gate order.
Every output is written through its own 1-d row view: LLVM takes stores at several
offsets into one row as possibly dependent and then does not vectorise the loop. It
also gives up when a loop needs too many run-time overlap checks between the arrays it
reads and writes; the LSTM's seven outputs leave room for one bias array, not two.
"""

from __future__ import annotations

from ..._typing import Array
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .compile import jit

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


@jit
def rnn_tanh_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = tanh(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            h_b[j] = _tanh((x[j] + bx[j]) + (y[j] + bh[j]))


@jit
def rnn_tanh_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (1 - h*h)``."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = dh[b, j] * (one - h[b, j] * h[b, j])


@jit
def rnn_relu_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = relu(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    zero = h.dtype.type(0)
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            z = (x[j] + bx[j]) + (y[j] + bh[j])
            h_b[j] = z if z > 0 else zero


@jit
def rnn_relu_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (h > 0)``."""
    n, hidden = h.shape
    zero = h.dtype.type(0)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = dh[b, j] if h[b, j] > 0 else zero


@jit
def lstm_forward(gx: Array, gh: Array, bias: Array, c_prev: Array, h: Array, out: Array) -> None:
    """LSTM step, ``z = (gx + bias) + gh``: ``h``, and ``out (6, N, H)``: ``i, f, g, o, tanh(c), c``."""
    n, hidden = c_prev.shape
    bias = bias.reshape((4, hidden))  # b_ih + b_hh (one array: see the comment above)
    for b in range(n):
        x, y = gx[b].reshape((4, hidden)), gh[b].reshape((4, hidden))  # gates i, f, g, o
        i_b, f_b, g_b, o_b = out[0, b], out[1, b], out[2, b], out[3, b]
        tanh_c_b, h_b, c_b = out[4, b], h[b], out[5, b]
        for j in range(hidden):
            i = _sigmoid((x[0, j] + bias[0, j]) + y[0, j])
            f = _sigmoid((x[1, j] + bias[1, j]) + y[1, j])
            g = _tanh((x[2, j] + bias[2, j]) + y[2, j])
            o = _sigmoid((x[3, j] + bias[3, j]) + y[3, j])
            c = f * c_prev[b, j] + i * g
            tanh_c = _tanh(c)
            i_b[j], f_b[j], g_b[j], o_b[j] = i, f, g, o
            tanh_c_b[j], h_b[j], c_b[j] = tanh_c, o * tanh_c, c


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
            i_, f_, g_, o_, t = i[b, j], f[b, j], g[b, j], o[b, j], tanh_c[b, j]
            dc = dc_next[b, j] + dh[b, j] * o_ * (one - t * t)
            dz_i[j] = dc * g_ * i_ * (one - i_)
            dz_f[j] = dc * c_prev[b, j] * f_ * (one - f_)
            dz_g[j] = dc * i_ * (one - g_ * g_)
            dz_o[j] = dh[b, j] * t * o_ * (one - o_)
            dc_prev_b[j] = dc * f_


@jit
def gru_forward(gx: Array, gh: Array, bx: Array, bh: Array, h_prev: Array, h: Array, out: Array) -> None:
    """GRU step, ``gx + bx`` and ``gh + bh``: ``h``, and ``out (4, N, H)``: ``r, z, n, gh_n``."""
    rows, hidden = h_prev.shape
    bx, bh = bx.reshape((3, hidden)), bh.reshape((3, hidden))
    for b in range(rows):
        x, y = gx[b].reshape((3, hidden)), gh[b].reshape((3, hidden))  # gates r, z, n
        r_b, z_b, n_b, gh_n_b, h_b = out[0, b], out[1, b], out[2, b], out[3, b], h[b]
        for j in range(hidden):
            r = _sigmoid((x[0, j] + bx[0, j]) + (y[0, j] + bh[0, j]))
            z = _sigmoid((x[1, j] + bx[1, j]) + (y[1, j] + bh[1, j]))
            gh_n = y[2, j] + bh[2, j]
            n = _tanh((x[2, j] + bx[2, j]) + r * gh_n)
            r_b[j], z_b[j], n_b[j], gh_n_b[j] = r, z, n, gh_n
            h_b[j] = n + z * (h_prev[b, j] - n)


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
            d, r_, z_, n_ = dh[b, j], r[b, j], z[b, j], n[b, j]
            dn = d * (one - z_) * (one - n_ * n_)
            dz = d * (h_prev[b, j] - n_) * z_ * (one - z_)
            dr = dn * gh_n[b, j] * r_ * (one - r_)
            dx_r[j], dx_z[j], dx_n[j] = dr, dz, dn
            dy_r[j], dy_z[j], dy_n[j] = dr, dz, dn * r_
            direct[j] = d * z_
