"""NumPy fast path: each cell's pointwise step fused into one compiled Numba kernel.

The generic cells (:mod:`xrnn.rnn`, :mod:`xrnn.lstm`, :mod:`xrnn.gru`) spend a dozen
elementwise array operations per time step, each a full pass over memory; on the CPU
those passes cost about as much as the step's matmul. For NumPy arrays of float32 or
float64, when numba is installed, :func:`fused` gives the scan (:mod:`xrnn._scan`) a
cell whose ``step`` and ``step_backward`` are single loops over the batch that compute
exactly the equations of the cell's module docstring, reading each input once and
writing each output once, biases included. The time loop, masks and the reverse
direction stay in the generic engine; the fast cell only adds where the loop's big
arrays live (``Cell.alloc``, ``Cell.project``): one buffer per sequence for the step
caches, the output ``y``, the backward's gate gradients and the hoisted projection,
recycled across calls once nothing refers to them (:class:`_Recycler`). A step's cache is
the cell's own ``NamedTuple`` of C-contiguous ``(N, H)`` arrays, so either backward
accepts either forward's cache. ``tests/test_fastpath.py`` holds the two paths equal.

The kernels evaluate ``exp`` and ``tanh`` with :func:`_exp_parts` rather than
``math.exp``: numba compiles ``math.exp`` to one scalar libm call per element, which
stops the compiler from vectorising the loop. ``_exp_parts`` is the textbook method
(Cody-Waite reduction ``x = k ln2 + r``, Taylor series of ``expm1(r)``, ``2**k`` set in
the exponent bits) in the dtype of its argument: within 2 ulp of the correctly rounded
result in both dtypes. Sigmoid and tanh are written from it without overflow for any
finite input: ``e = exp(-|z|)``, ``sigmoid = 1/(1+e)`` or ``e/(1+e)``;
``m = expm1(-2|x|)``, ``tanh = -m/(2+m)`` with the sign of ``x``.

The fast path is chosen by :func:`xrnn._scan.fast_cell` (the one place) and is off when
the environment variable ``XRNN_NUMBA`` is ``0``. Kernels are compiled on first use
and cached on disk (``cache=True``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._scan import Cell
from .gru import GRUStep
from .lstm import LSTMStep

__all__ = ["fused", "release"]

Array = Any

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


# ------------------------------------------------------------ vectorisable exp and tanh


@intrinsic
def _pow2(typingctx: Any, k: Any) -> Any:
    """``2.0**k`` for an integral-valued float ``k`` in the normal exponent range."""
    if k not in (types.float32, types.float64):
        return None
    width, mantissa, bias = (32, 23, 127) if k == types.float32 else (64, 52, 1023)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        int_type = ir.IntType(width)
        biased = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        bits = builder.shl(biased, ir.Constant(int_type, mantissa))
        return builder.bitcast(bits, context.get_value_type(signature.return_type))

    return k(k), codegen


def _exp_parts(x):  # type: ignore[no-untyped-def]
    """``(2**k, expm1(r))`` with ``x = k*ln2 + r`` and ``|r| <= ln2/2``, for ``x <= 0``.

    ``exp(x) = 2**k * (1 + expm1(r))`` and ``expm1(x) = 2**k * expm1(r) + (2**k - 1)``.
    Arguments below -87 (float32) or -708 (float64) are taken at that bound, where
    ``exp`` is below 2e-38 or 4e-308.
    """
    raise NotImplementedError("compiled only")


@overload(_exp_parts)
def _exp_parts_impl(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        f = np.float32
        floor, inv_ln2, half = f(-87.0), f(1.442695), f(0.5)
        ln2_hi, ln2_lo = f(0.693359375), f(-2.12194440e-4)  # Cody-Waite split of ln2
        c2, c3, c4, c5, c6, c7 = (f(1 / 2), f(1 / 6), f(1 / 24), f(1 / 120), f(1 / 720), f(1 / 5040))

        def exp_parts_32(x):  # type: ignore[no-untyped-def]
            x = max(x, floor)
            k = np.floor(x * inv_ln2 + half)
            r = (x - k * ln2_hi) - k * ln2_lo
            p = r + r * r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7)))))
            return _pow2(k), p

        return exp_parts_32
    if x == types.float64:
        coef = 1.0 / np.cumprod(np.arange(1.0, 14.0))  # 1/n! for n = 1..13
        d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13 = (float(c) for c in coef[1:])

        def exp_parts_64(x):  # type: ignore[no-untyped-def]
            x = max(x, -708.0)
            k = np.floor(x * 1.4426950408889634 + 0.5)
            r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
            q = d9 + r * (d10 + r * (d11 + r * (d12 + r * d13)))
            p = r + r * r * (d2 + r * (d3 + r * (d4 + r * (d5 + r * (d6 + r * (d7 + r * (d8 + r * q)))))))
            return _pow2(k), p

        return exp_parts_64
    return None


def _one(x):  # type: ignore[no-untyped-def]
    """1 in the type of ``x`` (a bare ``1`` would promote float32 arithmetic to float64)."""
    raise NotImplementedError("compiled only")


@overload(_one)
def _one_impl(x):  # type: ignore[no-untyped-def]
    one = np.float32(1) if x == types.float32 else 1.0
    return lambda x: one


@_jit
def _sigmoid(z: Any) -> Any:
    """``1 / (1 + exp(-z))`` from ``e = exp(-|z|)``: ``1/(1+e)`` or ``e/(1+e)``."""
    one = _one(z)
    s, p = _exp_parts(-abs(z))
    e = s + s * p
    q = one / (one + e)
    return q if z >= 0 else e * q


@_jit
def _tanh(x: Any) -> Any:
    """``tanh(x)`` from ``m = expm1(-2|x|)``: ``-m / (2 + m)`` with the sign of ``x``."""
    one = _one(x)
    a = abs(x)
    s, p = _exp_parts(-(a + a))
    m = s * p + (s - one)
    t = -m / (one + one + m)
    return t if x >= 0 else -t


# ------------------------------------------------------------------------------ kernels
# Each kernel is one loop over batch rows ``b`` and hidden units ``j``. A row of ``G*H``
# pre-activations is viewed as ``(G, H)``: one row per gate, in the cell's gate order.
# Every output is written through its own 1-d row view: LLVM takes stores at several
# offsets into one row as possibly dependent and then does not vectorise the loop. It
# also gives up when a loop needs too many run-time overlap checks between the arrays it
# reads and writes; the LSTM's seven outputs leave room for one bias array, not two.


@_jit
def _rnn_tanh_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = tanh(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            h_b[j] = _tanh((x[j] + bx[j]) + (y[j] + bh[j]))


@_jit
def _rnn_tanh_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (1 - h*h)``."""
    n, hidden = h.shape
    one = h.dtype.type(1)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = dh[b, j] * (one - h[b, j] * h[b, j])


@_jit
def _rnn_relu_forward(gx: Array, gh: Array, bx: Array, bh: Array, h: Array) -> None:
    """``h = relu(gx + gh)`` (with the biases ``bx``, ``bh`` of ``gx`` and ``gh``)."""
    n, hidden = h.shape
    zero = h.dtype.type(0)
    for b in range(n):
        x, y, h_b = gx[b], gh[b], h[b]
        for j in range(hidden):
            z = (x[j] + bx[j]) + (y[j] + bh[j])
            h_b[j] = z if z > 0 else zero


@_jit
def _rnn_relu_backward(dh: Array, h: Array, dz: Array) -> None:
    """``dz = dh * (h > 0)``."""
    n, hidden = h.shape
    zero = h.dtype.type(0)
    for b in range(n):
        dz_b = dz[b]
        for j in range(hidden):
            dz_b[j] = dh[b, j] if h[b, j] > 0 else zero


@_jit
def _lstm_forward(gx: Array, gh: Array, bias: Array, c_prev: Array, h: Array, out: Array) -> None:
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


@_jit
def _lstm_backward(
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


@_jit
def _gru_forward(gx: Array, gh: Array, bx: Array, bh: Array, h_prev: Array, h: Array, out: Array) -> None:
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


@_jit
def _gru_backward(
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


# ------------------------------------------------------------------ cells on the kernels
# The scan calls ``alloc`` once per sequence and hands step ``t`` its slices as ``out``:
# forward ``y (T, N, H)`` for the new ``h`` (the layer's output, no stacking) and
# ``(T, K, N, H)`` for the K other arrays a step keeps, ``out = (y[t], kept[t])``;
# backward ``(D, T, N, G*H)`` for dgx (and the GRU's dgh), ``out = buffer[:, t]``. Forward
# steps also get ``bias = (b_x, b_h)``, added to ``gx`` and ``gh`` in the kernel. Fresh memory
# costs a page fault per page, so one allocation per sequence is measurably faster than
# one per step. ``gx`` and ``gh`` are the scan's own row-major arrays; states and caches
# may come from the caller (the classic API transposes them), hence ``_c``.


def _c(a: Array) -> Array:
    """``a`` as a C-contiguous array (a copy only when it is a strided view)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


class _Recycler:
    """Sequence buffers that are reused once nothing refers to them any more.

    The OS zeroes fresh memory page by page on first touch; for an LSTM training step at
    I=H=512 that zeroing took 13% of the time on the benchmark machine (``perf``, see
    docs/benchmarks.md), more than all the fused kernels together. A buffer handed out
    here is a view of a byte array kept in this list; when every view of it has been
    dropped (its reference count is back to the list's own), a later request of the same
    size reuses it. At most ``keep`` idle buffers stay; older idle ones are let go.
    :func:`release` lets go of all idle buffers.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.raw: list[Array] = []
        self.lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes == 0:
            return np.empty(shape, dtype)
        with self.lock:
            idle = [j for j in range(len(self.raw)) if sys.getrefcount(self.raw[j]) == _IDLE_REFS]
            fits = [j for j in idle if self.raw[j].nbytes == nbytes]
            if fits:
                raw = self.raw.pop(fits[0])  # and back at the end: most recently used
            else:
                raw = np.empty(nbytes, np.uint8)
                drop = set(idle[: max(0, len(idle) + 1 - self.keep)])  # the oldest idle ones
                self.raw = [r for j, r in enumerate(self.raw) if j not in drop]
            self.raw.append(raw)
        return raw[:nbytes].view(dtype).reshape(shape)

    def release(self) -> None:
        """Let go of every idle buffer."""
        with self.lock:
            busy = [j for j in range(len(self.raw)) if sys.getrefcount(self.raw[j]) > _IDLE_REFS]
            self.raw = [self.raw[j] for j in busy]


_IDLE_REFS = 2  # references to an idle buffer in ``getrefcount(self.raw[j])``: the list's and the argument
_RECYCLER = _Recycler(keep=8)


def release() -> None:
    """Free the idle sequence buffers that the fast path keeps for reuse."""
    _RECYCLER.release()


def _alloc(kept: int, gate_blocks: int, gradients: int) -> Any:
    """``Cell.alloc``: ``kept`` ``(N, H)`` arrays a step forward, ``gradients`` ``(N, G*H)`` back."""

    def alloc(t_steps: int, like: Array, backward: bool) -> Any:
        n, hidden = like.shape
        if backward:
            return _RECYCLER.empty((gradients, t_steps, n, gate_blocks * hidden), like.dtype)
        y = _RECYCLER.empty((t_steps, n, hidden), like.dtype)
        return y, _RECYCLER.empty((t_steps, kept, n, hidden), like.dtype)

    return alloc


def _project(x_flat: Array, w_ih: Array) -> Array:
    """``Cell.project``: the hoisted ``x_flat @ w_ih^T`` into a recycled buffer."""
    out = _RECYCLER.empty((x_flat.shape[0], w_ih.shape[0]), x_flat.dtype)
    return np.matmul(x_flat, w_ih.T, out=out)


def _rnn_step(kernel: Any) -> Any:
    def step(gx: Array, gh: Array, state: tuple[Array], *, xp: Any, out: Any, bias: Any) -> Any:
        h = out[0]  # the step's cache is its output h
        kernel(gx, gh, *bias, h)
        return (h,), h

    return step


def _rnn_step_backward(kernel: Any) -> Any:
    def step_backward(dstate: tuple[Array], h: Array, *, xp: Any, out: Array) -> Any:
        kernel(_c(dstate[0]), _c(h), out[0])
        return out[0], None, (None,)

    return step_backward


def _lstm_step(gx: Array, gh: Array, state: tuple[Array, Array], *, xp: Any, out: Any, bias: Any) -> Any:
    c_prev = _c(state[1])
    h, kept = out
    _lstm_forward(gx, gh, bias[0], c_prev, h, kept)  # bias[1] is zero: fold_bias put b_hh in bias[0]
    i, f, g, o, tanh_c, c = kept
    return (h, c), LSTMStep(i, f, g, o, tanh_c, c_prev)


def _lstm_step_backward(dstate: tuple[Array, Array], cache: LSTMStep, *, xp: Any, out: Array) -> Any:
    dh, dc_next = dstate
    dc_prev = np.empty_like(dh)
    i, f, g, o, tanh_c, c_prev = cache
    _lstm_backward(_c(dh), _c(dc_next), _c(i), _c(f), _c(g), _c(o), _c(tanh_c), _c(c_prev), out[0], dc_prev)
    return out[0], None, (None, dc_prev)


def _gru_step(gx: Array, gh: Array, state: tuple[Array], *, xp: Any, out: Any, bias: Any) -> Any:
    h_prev = _c(state[0])
    h, kept = out
    _gru_forward(gx, gh, *bias, h_prev, h, kept)
    r, z, n, gh_n = kept
    return (h,), GRUStep(r, z, n, gh_n, h_prev)


def _gru_step_backward(dstate: tuple[Array], cache: GRUStep, *, xp: Any, out: Array) -> Any:
    direct = np.empty_like(dstate[0])
    r, z, n, gh_n, h_prev = cache
    _gru_backward(_c(dstate[0]), _c(r), _c(z), _c(n), _c(gh_n), _c(h_prev), out[0], out[1], direct)
    return out[0], out[1], (direct,)


_FUSED = {  # name: (step, step_backward, alloc)
    "rnn_tanh": (_rnn_step(_rnn_tanh_forward), _rnn_step_backward(_rnn_tanh_backward), _alloc(0, 1, 1)),
    "rnn_relu": (_rnn_step(_rnn_relu_forward), _rnn_step_backward(_rnn_relu_backward), _alloc(0, 1, 1)),
    "lstm": (_lstm_step, _lstm_step_backward, _alloc(6, 4, 1)),
    "gru": (_gru_step, _gru_step_backward, _alloc(4, 3, 2)),
}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fused(cell: Cell, dtype: Any) -> Cell:
    """``cell`` with its step and step backward on the fused kernels, when they apply.

    Parameters
    ----------
    cell : Cell
        One of the cells of :mod:`xrnn.rnn`, :mod:`xrnn.lstm`, :mod:`xrnn.gru`.
    dtype : numpy dtype
        Dtype of the arrays the scan will see.

    Returns
    -------
    Cell
        The same cell (same name, gates, states and caches) with fused kernels, or
        ``cell`` itself for another dtype or an unknown cell.
    """
    fused = _FUSED.get(cell.name)
    if fused is None or np.dtype(dtype) not in _DTYPES:
        return cell
    return dataclasses.replace(cell, step=fused[0], step_backward=fused[1], alloc=fused[2], project=_project)
