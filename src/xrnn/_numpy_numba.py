"""NumPy fast path: each cell's pointwise step fused into one compiled Numba kernel.

The generic cells (:mod:`xrnn.rnn`, :mod:`xrnn.lstm`, :mod:`xrnn.gru`) spend a dozen
elementwise array operations per time step, each a full pass over memory; on the CPU
those passes cost about as much as the step's matmul. For NumPy arrays of float32 or
float64, when numba is installed, :func:`fused` gives the scan (:mod:`xrnn._scan`) a
cell whose ``step`` and ``step_backward`` are single loops over the batch that compute
exactly the equations of the cell's module docstring, reading each input once and
writing each output once, biases included. The fast cell adds where the loop's big
arrays live (``Cell.alloc``, ``Cell.project``): one buffer per sequence for the step
caches, the output ``y``, the backward's gate gradients and the hoisted projection,
recycled across calls once nothing refers to them (:class:`_Recycler`). A step's cache
is the cell's own ``NamedTuple`` of C-contiguous ``(N, H)`` arrays, so either backward
accepts either forward's cache. ``tests/test_fastpath.py`` holds the two paths equal.

Where NumPy's own C-BLAS ``gemm`` can be found (:func:`_blas`, true of NumPy's wheels),
the fast cell also brings the time loop itself, compiled (``Cell.sequence``,
``Cell.sequence_backward``): per step one ``gemm`` called from Numba straight into the
BLAS that NumPy's ``@`` uses, then the fused kernel; variable lengths are handled row by
row as the scan's mask does. The hoisted projection, the reverse direction and the weight
gradients stay in the generic engine. Without that symbol the scan's own loop calls the
fused kernels step by step. The tests run both loops.

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

import ctypes
import dataclasses
import functools
import importlib
import math
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._scan import Cell
from ._validation import check_shape
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


# --------------------------------------------------------- whole sequences, BLAS inside
# With NumPy's own BLAS at hand (:func:`_blas`), the whole time loop runs compiled: per
# step one ``gemm`` call straight into BLAS (``gemm`` below: the address of NumPy's
# ``sgemm`` or ``dgemm``) and one fused kernel, against about a dozen
# Python-level calls per step in the scan's loop (the overhead that dominates small
# shapes). These loops are the scan's (:mod:`xrnn._scan`) forward and backward loops,
# nothing more: the hoisted projection, the reverse direction and the weight gradients
# stay in the generic engine.


@intrinsic
def _gemm(typingctx: Any, address: Any, a: Any, b: Any, beta: Any, c: Any) -> Any:
    """``c = a @ b + beta * c`` through the C-BLAS ``gemm`` at ``address``, row-major.

    ``a (M, K)``, ``b (K, N)``, ``c (M, N)``, all C-contiguous. The sizes go as 64-bit
    integers, which BLAS builds with 32-bit integers read correctly too (below ``2**31``)
    in the little-endian x86-64 and AArch64 calling conventions: a 32-bit parameter sees
    the low half of its 64-bit register or stack slot, and every argument after it lands
    where the callee looks for it (each one that follows on the stack is 8-byte aligned).
    """
    if not all(isinstance(t, types.Array) and t.layout == "C" and t.ndim == 2 for t in (a, b, c)):
        return None
    real = a.dtype
    if real not in (types.float32, types.float64) or b.dtype != real or c.dtype != real:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arrays = [
            context.make_array(t)(context, builder, v) for t, v in zip((a, b, c), (args[1], args[2], args[4]))
        ]
        (m, k), (_, n) = (cgutils.unpack_tuple(builder, x.shape) for x in arrays[::2])
        i32, i64 = ir.IntType(32), ir.IntType(64)
        real_type, ptr = context.get_value_type(real), ir.IntType(8).as_pointer()
        a_ptr, b_ptr, c_ptr = (builder.bitcast(x.data, ptr) for x in arrays)
        row_major, no_trans = ir.Constant(i32, 101), ir.Constant(i32, 111)  # CblasRowMajor, CblasNoTrans
        one, beta_v = context.get_constant(real, 1), context.cast(builder, args[3], signature.args[3], real)
        # cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        operand = [real_type, ptr, i64]
        fn_type = ir.FunctionType(ir.VoidType(), [i32] * 3 + [i64] * 3 + operand + operand[1:] + operand)
        fn = builder.inttoptr(args[0], fn_type.as_pointer())
        builder.call(fn, [row_major, no_trans, no_trans, m, n, k, one, a_ptr, k, b_ptr, n, beta_v, c_ptr, n])
        return context.get_dummy_value()

    return types.void(address, a, b, beta, c), codegen


@functools.cache
def _blas() -> dict[np.dtype, int] | None:
    """Addresses of NumPy's own C-BLAS ``sgemm`` and ``dgemm`` by dtype, or None.

    The symbols are looked up through NumPy's extension module, so they resolve within the
    libraries NumPy itself loaded: the loops call the very BLAS (and its thread pool) that
    NumPy's ``@`` calls. PyPI wheels of NumPy 2 export them as ``scipy_cblas_sgemm64_``
    (OpenBLAS, 64-bit integers), of NumPy 1.26 as ``cblas_sgemm64_``; other builds as
    ``cblas_sgemm``. None when no such symbol is found: the scan then keeps its own loop.
    """
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            lib = ctypes.CDLL(importlib.import_module(module).__file__)
            break
        except (ImportError, OSError, TypeError):
            continue
    else:
        return None
    for prefix, suffix in (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("scipy_cblas_", ""), ("cblas_", "")):
        try:
            single, double = getattr(lib, f"{prefix}sgemm{suffix}"), getattr(lib, f"{prefix}dgemm{suffix}")
        except AttributeError:
            continue
        return {
            np.dtype(np.float32): ctypes.cast(single, ctypes.c_void_p).value,
            np.dtype(np.float64): ctypes.cast(double, ctypes.c_void_p).value,
        }
    return None


# Variable lengths: ``lengths (N,)`` int64, or no entries when every sequence is full. At a
# step past a sequence's length its row carries the state (forward) and the gradient
# (backward) through unchanged, and its gate gradients are zero: the scan's mask, row by row.


@_jit
def _carry(t: int, lengths: Array, source: Array, target: Array) -> None:
    """``target[b] = source[b]`` for the rows ``b`` whose sequence ended before step ``t``."""
    for b in range(lengths.shape[0]):
        if t >= lengths[b]:
            target[b, :] = source[b, :]


@_jit
def _clear(t: int, lengths: Array, target: Array) -> None:
    """``target[b] = 0`` for the rows ``b`` whose sequence ended before step ``t``."""
    for b in range(lengths.shape[0]):
        if t >= lengths[b]:
            target[b, :] = 0


@_jit
def _upstream(dh: Array, dy: Array, t: int, lengths: Array, out: Array) -> Array:
    """``dh + dy[t]``: into ``out``, or ``dh`` itself when there is no ``dy`` and no length."""
    if dy.shape[0] == 0:
        if lengths.shape[0] == 0:
            return dh
        out[...] = dh  # kept apart from dh, which the step's gemm overwrites
        return out
    n, hidden = out.shape
    dy_t = dy[t]
    for r in range(n):
        dh_r, dy_r, out_r = dh[r], dy_t[r], out[r]
        for j in range(hidden):
            out_r[j] = dh_r[j] + dy_r[j]
    return out


@_jit
def _rnn_step_gemm(gemm, relu, t, lengths, gx, w_hh_t, bx, bh, h_prev, h, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``h_prev``."""
    _gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    if relu:
        _rnn_relu_forward(gx, gh, bx, bh, h)
    else:
        _rnn_tanh_forward(gx, gh, bx, bh, h)
    _carry(t, lengths, h_prev, h)


@_jit
def _rnn_sequence(gemm, relu, lengths, gx, w_hh_t, bx, bh, h0, y, gh):  # type: ignore[no-untyped-def]
    """RNN forward over ``T`` steps: ``y (T, N, H)`` from ``gx (T, N, H)``; ``gh`` is scratch."""
    _rnn_step_gemm(gemm, relu, 0, lengths, gx[0], w_hh_t, bx, bh, h0, y[0], gh)
    for t in range(1, gx.shape[0]):
        _rnn_step_gemm(gemm, relu, t, lengths, gx[t], w_hh_t, bx, bh, y[t - 1], y[t], gh)


@_jit
def _rnn_sequence_backward(gemm, relu, lengths, dy, dh, y, w_hh, dz):  # type: ignore[no-untyped-def]
    """RNN backward over ``T`` steps: ``dz (T, N, H)``; ``dh`` (final state in, initial out)."""
    ds = np.empty_like(dh)
    for t in range(y.shape[0] - 1, -1, -1):
        d = _upstream(dh, dy, t, lengths, ds)
        if relu:
            _rnn_relu_backward(d, y[t], dz[t])
        else:
            _rnn_tanh_backward(d, y[t], dz[t])
        _clear(t, lengths, dz[t])
        _gemm(gemm, dz[t], w_hh, 0.0, dh)
        _carry(t, lengths, d, dh)
    return dh


@_jit
def _lstm_step_gemm(gemm, t, lengths, gx, w_hh_t, bias, h_prev, c_prev, h, kept, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``(h, c)``."""
    _gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    _lstm_forward(gx, gh, bias, c_prev, h, kept)
    _carry(t, lengths, h_prev, h)
    _carry(t, lengths, c_prev, kept[5])


@_jit
def _lstm_sequence(gemm, lengths, gx, w_hh_t, bias, h0, c0, y, kept, gh):  # type: ignore[no-untyped-def]
    """LSTM forward over ``T`` steps: ``y (T, N, H)``, ``kept (T, 6, N, H)`` as the step kernel's ``out``."""
    _lstm_step_gemm(gemm, 0, lengths, gx[0], w_hh_t, bias, h0, c0, y[0], kept[0], gh)
    for t in range(1, gx.shape[0]):
        _lstm_step_gemm(gemm, t, lengths, gx[t], w_hh_t, bias, y[t - 1], kept[t - 1, 5], y[t], kept[t], gh)


@_jit
def _lstm_sequence_backward(gemm, lengths, dy, dh, dc, kept, c0, w_hh, dz):  # type: ignore[no-untyped-def]
    """LSTM backward over ``T`` steps: ``dz (T, N, 4H)``; ``dh, dc`` (final state in, initial out)."""
    ds, dc_prev = np.empty_like(dh), np.empty_like(dc)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = _upstream(dh, dy, t, lengths, ds)
        i, f, g, o, tanh_c = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3], kept[t, 4]
        if t == 0:
            _lstm_backward(d, dc, i, f, g, o, tanh_c, c0, dz[t], dc_prev)
        else:
            _lstm_backward(d, dc, i, f, g, o, tanh_c, kept[t - 1, 5], dz[t], dc_prev)
        _clear(t, lengths, dz[t])
        _gemm(gemm, dz[t], w_hh, 0.0, dh)
        _carry(t, lengths, d, dh)
        _carry(t, lengths, dc, dc_prev)
        dc, dc_prev = dc_prev, dc
    return dh, dc


@_jit
def _gru_step_gemm(gemm, t, lengths, gx, w_hh_t, bx, bh, h_prev, h, kept, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``h_prev``."""
    _gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    _gru_forward(gx, gh, bx, bh, h_prev, h, kept)
    _carry(t, lengths, h_prev, h)


@_jit
def _gru_sequence(gemm, lengths, gx, w_hh_t, bx, bh, h0, y, kept, gh):  # type: ignore[no-untyped-def]
    """GRU forward over ``T`` steps: ``y (T, N, H)``, ``kept (T, 4, N, H)`` as the step kernel's ``out``."""
    _gru_step_gemm(gemm, 0, lengths, gx[0], w_hh_t, bx, bh, h0, y[0], kept[0], gh)
    for t in range(1, gx.shape[0]):
        _gru_step_gemm(gemm, t, lengths, gx[t], w_hh_t, bx, bh, y[t - 1], y[t], kept[t], gh)


@_jit
def _gru_sequence_backward(gemm, lengths, dy, dh, kept, h0, y, w_hh, dgx, dgh):  # type: ignore[no-untyped-def]
    """GRU backward over ``T`` steps: ``dgx, dgh (T, N, 3H)``; ``dh`` (final state in, initial out)."""
    ds, direct = np.empty_like(dh), np.empty_like(dh)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = _upstream(dh, dy, t, lengths, ds)
        r, z, n, gh_n = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3]
        if t == 0:
            _gru_backward(d, r, z, n, gh_n, h0, dgx[t], dgh[t], direct)
        else:
            _gru_backward(d, r, z, n, gh_n, y[t - 1], dgx[t], dgh[t], direct)
        _clear(t, lengths, dgx[t])
        _clear(t, lengths, dgh[t])
        _gemm(gemm, dgh[t], w_hh, 1.0, direct)  # dh_prev = dgh @ W_hh + dh * z
        _carry(t, lengths, d, direct)
        dh, direct = direct, dh
    return dh


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


class _SequenceSteps(Sequence[Any]):
    """The step caches of a compiled forward loop: the cell's own caches, made on access.

    ``steps[t]`` is what the cell's step ``t`` returns as its cache (``h`` for the RNN, an
    :class:`~xrnn.lstm.LSTMStep` or :class:`~xrnn.gru.GRUStep` of views; rows past a
    sequence's length hold what the loop carried there, which no backward reads), so any
    backward takes it; the compiled backward reads the buffers ``y (T, N, H)``, ``kept (T, K, N, H)``
    and ``first`` (the state before step 0 that the caches refer to: ``c0`` or ``h0``).
    """

    def __init__(self, name: str, y: Array, kept: Array | None, first: Array) -> None:
        self.name, self.y, self.kept, self.first = name, y, kept, first

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[t] for t in range(*index.indices(len(self)))]
        t = range(len(self))[index]
        if self.name == "lstm":
            return LSTMStep(*self.kept[t, :5], self.first if t == 0 else self.kept[t - 1, 5])
        if self.name == "gru":
            return GRUStep(*self.kept[t], self.first if t == 0 else self.y[t - 1])
        return self.y[t]


def _buffers(name: str, steps: Sequence[Any]) -> tuple[Array, Array | None, Array]:
    """``(y, kept, first)`` of :class:`_SequenceSteps` for any list of the cell's step caches.

    A compiled forward's steps give their own buffers; other caches (the generic path's,
    the classic API's) are copied into buffers of that layout: for the LSTM ``c_prev`` of
    step ``t`` goes to ``kept[t - 1, 5]``, for the GRU ``h_prev`` to ``y[t - 1]``.
    """
    if isinstance(steps, _SequenceSteps) and steps.name == name:
        return steps.y, steps.kept, steps.first
    if name.startswith("rnn"):
        return np.stack([_c(h) for h in steps]), None, steps[0]
    t_steps = len(steps)
    first = _c(steps[0][-1])
    n, hidden = first.shape
    width = 6 if name == "lstm" else 4
    kept = _RECYCLER.empty((t_steps, width, n, hidden), first.dtype)
    # the LSTM's backward reads no y: a view of kept stands in for its shape
    y = kept[:, 0] if name == "lstm" else _RECYCLER.empty((t_steps, n, hidden), first.dtype)
    for t, step in enumerate(steps):
        kept[t, : len(step) - 1] = step[:-1]
        if t > 0:
            (kept[t - 1, 5] if name == "lstm" else y[t - 1])[...] = step[-1]
    return y, kept, first


def _sequence(name: str, n_gates: int) -> Any:
    """``Cell.sequence``: the scan's forward loop, compiled."""

    def sequence(gx: Array, w_hh_t: Array, biases: Any, state: Any, lengths: Array | None) -> Any:
        t_steps, n, width = gx.shape
        hidden, dtype = w_hh_t.shape[0], gx.dtype
        gemm = _gemm_of(dtype)
        b_x, b_h = (np.zeros(width, dtype) if b is None else _c(b) for b in biases)
        # the compiled loops read and write without bounds checks: the sizes must agree first
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh_t.T, (n_gates * hidden, hidden), fits)
        check_shape("gx", gx, (t_steps, n, n_gates * hidden), fits)
        check_shape("b_x", b_x, (width,), fits)
        check_shape("b_h", b_h, (width,), fits)
        for j, s in enumerate(state):
            check_shape(f"state[{j}]", s, (n, hidden), fits)
        gx, h0 = _c(gx), _c(state[0])
        y = _RECYCLER.empty((t_steps, n, hidden), dtype)
        gh = np.empty((n, width), dtype)
        lengths = _lengths(lengths)
        if name == "lstm":  # b_h is zero: the LSTM folds it into b_x
            kept, c0 = _RECYCLER.empty((t_steps, 6, n, hidden), dtype), _c(state[1])
            _lstm_sequence(gemm, lengths, gx, w_hh_t, b_x, h0, c0, y, kept, gh)
            return y, (y[-1], kept[-1, 5]), _SequenceSteps(name, y, kept, c0)
        if name == "gru":
            kept = _RECYCLER.empty((t_steps, 4, n, hidden), dtype)
            _gru_sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, h0, y, kept, gh)
            return y, (y[-1],), _SequenceSteps(name, y, kept, h0)
        _rnn_sequence(gemm, name == "rnn_relu", lengths, gx, w_hh_t, b_x, b_h, h0, y, gh)
        return y, (y[-1],), _SequenceSteps(name, y, None, h0)

    return sequence


def _sequence_backward(name: str, n_gates: int) -> Any:
    """``Cell.sequence_backward``: the scan's backward loop, compiled."""

    def sequence_backward(
        steps: Sequence[Any], dy: Array | None, dstate: Any, w_hh: Array, lengths: Array | None
    ) -> Any:
        y, kept, first = _buffers(name, steps)
        t_steps, n, hidden = y.shape
        dtype, width = y.dtype, n_gates * hidden
        gemm = _gemm_of(dtype)
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh, (width, hidden), fits)
        for j, d in enumerate(dstate):
            check_shape(f"dstate[{j}]", d, (n, hidden), fits)
        if dy is not None:
            check_shape("dy", dy, (t_steps, n, hidden), fits)
        dy = np.empty((0, n, hidden), dtype) if dy is None else _c(dy)
        w_hh = _c(w_hh)
        dh = np.array(dstate[0], dtype=dtype, order="C")  # a copy: the loop writes it
        lengths = _lengths(lengths)
        if name == "lstm":
            dz = _RECYCLER.empty((t_steps, n, width), dtype)
            dc = np.array(dstate[1], dtype=dtype, order="C")
            dh, dc = _lstm_sequence_backward(gemm, lengths, dy, dh, dc, kept, first, w_hh, dz)
            return dz, None, (dh, dc)
        if name == "gru":
            dg = _RECYCLER.empty((2, t_steps, n, width), dtype)
            dh = _gru_sequence_backward(gemm, lengths, dy, dh, kept, first, y, w_hh, dg[0], dg[1])
            return dg[0], dg[1], (dh,)
        dz = _RECYCLER.empty((t_steps, n, width), dtype)
        dh = _rnn_sequence_backward(gemm, name == "rnn_relu", lengths, dy, dh, y, w_hh, dz)
        return dz, None, (dh,)

    return sequence_backward


def _lengths(lengths: Array | None) -> Array:
    """Lengths as the loops take them: int64, no entries when every sequence is full."""
    return np.empty(0, np.int64) if lengths is None else np.ascontiguousarray(lengths, dtype=np.int64)


def _gemm_of(dtype: Any) -> int:
    """Address of NumPy's ``gemm`` for ``dtype`` (the loops exist only where there is one)."""
    found = _blas()
    if found is None:
        raise RuntimeError("NumPy's BLAS was not found; the compiled loops are not in use")
    return found[np.dtype(dtype)]


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
    loops = {}
    if _blas() is not None:
        loops = {
            "sequence": _sequence(cell.name, cell.n_gates),
            "sequence_backward": _sequence_backward(cell.name, cell.n_gates),
        }
    return dataclasses.replace(
        cell, step=fused[0], step_backward=fused[1], alloc=fused[2], project=_project, **loops
    )
