"""The whole time loop compiled: per step one BLAS ``gemm`` and one fused kernel.

With NumPy's own BLAS at hand (:func:`blas`), the time loop runs compiled: per step one
``gemm`` call straight into the BLAS that NumPy's ``@`` uses (``gemm`` below: the
address of NumPy's ``sgemm`` or ``dgemm``) and one fused kernel
(:mod:`.kernels`), against about a dozen Python-level calls per step in the generic
loop (the overhead that dominates small shapes). These loops are the generic
:class:`~xrnn.engine.ops.Ops` loops, nothing more: the hoisted projection, the reverse
direction and the weight gradients stay in the generic engine.

Buffers: ``y (T, N, H)`` receives each step's ``h`` and ``kept (T, K, N, H)`` the ``K``
other arrays a step keeps for backward (the LSTM's ``i, f, g, o, tanh(c), c``, the GRU's
``r, z, n, gh_n``), so that the state before step ``t > 0`` is ``y[t - 1]`` (and
``kept[t - 1, 5]``, the LSTM's ``c``).

Variable lengths: ``lengths (N,)`` int64, or no entries when every sequence is full. At a
step past a sequence's length its row carries the state (forward) and the gradient
(backward) through unchanged, and its gate gradients are zero: the generic loop's mask,
row by row.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..._util.typing import Array
from .compile import jit
from .kernels import (
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_relu_backward,
    rnn_relu_forward,
    rnn_tanh_backward,
    rnn_tanh_forward,
)

__all__ = [
    "blas",
    "blas_threads",
    "call_gemm",
    "carry",
    "clear",
    "gemm_address",
    "gru_sequence",
    "gru_sequence_backward",
    "lstm_projected_sequence",
    "lstm_projected_sequence_backward",
    "lstm_sequence",
    "lstm_sequence_backward",
    "rnn_sequence",
    "rnn_sequence_backward",
    "upstream",
]


@intrinsic
def call_gemm(typingctx: Any, address: Any, a: Any, b: Any, beta: Any, c: Any) -> Any:
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
def blas() -> dict[np.dtype, int] | None:
    """Addresses of NumPy's own C-BLAS ``sgemm`` and ``dgemm`` by dtype, or None.

    The symbols are looked up through NumPy's extension module, so they resolve within the
    libraries NumPy itself loaded: the loops call the very BLAS (and its thread pool) that
    NumPy's ``@`` calls. PyPI wheels of NumPy 2 export them as ``scipy_cblas_sgemm64_``
    (OpenBLAS, 64-bit integers), of NumPy 1.26 as ``cblas_sgemm64_``; other builds as
    ``cblas_sgemm``. None when no such symbol is found: the loops then run step by step
    from Python (:mod:`.ops`), with NumPy's ``@``.
    """
    lib = _numpy_library()
    if lib is None:
        return None
    for prefix, suffix in (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("scipy_cblas_", ""), ("cblas_", "")):
        try:
            single, double = getattr(lib, f"{prefix}sgemm{suffix}"), getattr(lib, f"{prefix}dgemm{suffix}")
        except AttributeError:
            continue
        return {np.dtype(np.float32): _address(single), np.dtype(np.float64): _address(double)}
    return None


@functools.cache
def blas_threads() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """The get and set of the thread count of NumPy's own BLAS, or None where not found.

    OpenBLAS's ``openblas_get_num_threads`` and ``openblas_set_num_threads`` under the names
    of NumPy's wheels (``scipy_openblas_...64_`` for NumPy 2, ``openblas_...64_`` for 1.26)
    or their plain names; found like :func:`blas`. The count is the process's, for every
    thread that calls BLAS.
    """
    lib = _numpy_library()
    if lib is None:
        return None
    for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
        try:
            get, put = (
                getattr(lib, f"{prefix}get_num_threads{suffix}"),
                getattr(lib, f"{prefix}set_num_threads{suffix}"),
            )
        except AttributeError:
            continue
        get.restype, get.argtypes = ctypes.c_int, []
        put.restype, put.argtypes = None, [ctypes.c_int]
        return get, put
    return None


def _numpy_library() -> ctypes.CDLL | None:
    """NumPy's extension module as a library: its symbols resolve within what NumPy loaded."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return ctypes.CDLL(importlib.import_module(module).__file__)
        except (ImportError, OSError, TypeError):
            continue
    return None


def _address(function: Any) -> int:
    """The address of a ``ctypes`` function pointer."""
    return int(ctypes.cast(function, ctypes.c_void_p).value or 0)


def gemm_address(dtype: Any) -> int:
    """Address of NumPy's ``gemm`` for ``dtype`` (the compiled loops exist only where there is one)."""
    found = blas()
    if found is None:
        raise RuntimeError("NumPy's BLAS gemm was not found; the compiled loops are not in use")
    return found[np.dtype(dtype)]


@jit
def carry(t: int, lengths: Array, source: Array, target: Array) -> None:
    """``target[b] = source[b]`` for the rows ``b`` whose sequence ended before step ``t``."""
    for b in range(lengths.shape[0]):
        if t >= lengths[b]:
            target[b, :] = source[b, :]


@jit
def clear(t: int, lengths: Array, target: Array) -> None:
    """``target[b] = 0`` for the rows ``b`` whose sequence ended before step ``t``."""
    for b in range(lengths.shape[0]):
        if t >= lengths[b]:
            target[b, :] = 0


@jit
def upstream(dh: Array, dy: Array, t: int, lengths: Array, out: Array) -> Array:
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


@jit
def _rnn_step_gemm(gemm, relu, t, lengths, gx, w_hh_t, bx, bh, h_prev, h, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``h_prev``."""
    call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    if relu:
        rnn_relu_forward(gx, gh, bx, bh, h)
    else:
        rnn_tanh_forward(gx, gh, bx, bh, h)
    carry(t, lengths, h_prev, h)


@jit
def rnn_sequence(gemm, relu, lengths, gx, w_hh_t, bx, bh, h0, y, gh):  # type: ignore[no-untyped-def]
    """RNN forward over ``T`` steps: ``y (T, N, H)`` from ``gx (T, N, H)``; ``gh`` is scratch."""
    _rnn_step_gemm(gemm, relu, 0, lengths, gx[0], w_hh_t, bx, bh, h0, y[0], gh)
    for t in range(1, gx.shape[0]):
        _rnn_step_gemm(gemm, relu, t, lengths, gx[t], w_hh_t, bx, bh, y[t - 1], y[t], gh)


@jit
def rnn_sequence_backward(gemm, relu, lengths, dy, dh, y, w_hh, dz):  # type: ignore[no-untyped-def]
    """RNN backward over ``T`` steps: ``dz (T, N, H)``; ``dh`` (final state in, initial out)."""
    ds = np.empty_like(dh)
    for t in range(y.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        if relu:
            rnn_relu_backward(d, y[t], dz[t])
        else:
            rnn_tanh_backward(d, y[t], dz[t])
        clear(t, lengths, dz[t])
        call_gemm(gemm, dz[t], w_hh, 0.0, dh)
        carry(t, lengths, d, dh)
    return dh


@jit
def _lstm_step_gemm(gemm, t, lengths, gx, w_hh_t, bias, h_prev, c_prev, h, kept, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``(h, c)``."""
    call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    lstm_forward(gx, gh, bias, c_prev, h, kept)
    carry(t, lengths, h_prev, h)
    carry(t, lengths, c_prev, kept[5])


@jit
def lstm_sequence(gemm, lengths, gx, w_hh_t, bias, h0, c0, y, kept, gh):  # type: ignore[no-untyped-def]
    """LSTM forward over ``T`` steps: ``y (T, N, H)``, ``kept (T, 6, N, H)`` as the step kernel's ``out``."""
    _lstm_step_gemm(gemm, 0, lengths, gx[0], w_hh_t, bias, h0, c0, y[0], kept[0], gh)
    for t in range(1, gx.shape[0]):
        _lstm_step_gemm(gemm, t, lengths, gx[t], w_hh_t, bias, y[t - 1], kept[t - 1, 5], y[t], kept[t], gh)


@jit
def lstm_sequence_backward(gemm, lengths, dy, dh, dc, kept, c0, w_hh, dz):  # type: ignore[no-untyped-def]
    """LSTM backward over ``T`` steps: ``dz (T, N, 4H)``; ``dh, dc`` (final state in, initial out)."""
    ds, dc_prev = np.empty_like(dh), np.empty_like(dc)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        i, f, g, o, tanh_c = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3], kept[t, 4]
        if t == 0:
            lstm_backward(d, dc, i, f, g, o, tanh_c, c0, dz[t], dc_prev)
        else:
            lstm_backward(d, dc, i, f, g, o, tanh_c, kept[t - 1, 5], dz[t], dc_prev)
        clear(t, lengths, dz[t])
        call_gemm(gemm, dz[t], w_hh, 0.0, dh)
        carry(t, lengths, d, dh)
        carry(t, lengths, dc, dc_prev)
        dc, dc_prev = dc_prev, dc
    return dh, dc


@jit
def lstm_projected_sequence(gemm, lengths, gx, w_hh_t, bias, h0, c0, w_hr_t, y, kept, gh, h_cell):  # type: ignore[no-untyped-def]
    """LSTM forward with a projection: ``y (T, N, P)``, ``y[t] = (o * tanh(c)) @ W_hr^T``.

    Per step one more ``gemm`` than :func:`lstm_sequence`; ``h_cell (N, H)`` is scratch
    for the step's ``o * tanh(c)`` (``kept`` holds ``o`` and ``tanh(c)``, as without one).
    """
    for t in range(gx.shape[0]):
        h_prev = h0 if t == 0 else y[t - 1]
        c_prev = c0 if t == 0 else kept[t - 1, 5]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        lstm_forward(gx[t], gh, bias, c_prev, h_cell, kept[t])
        call_gemm(gemm, h_cell, w_hr_t, 0.0, y[t])
        carry(t, lengths, h_prev, y[t])
        carry(t, lengths, c_prev, kept[t, 5])


@jit
def lstm_projected_sequence_backward(gemm, lengths, dy, dh, dc, kept, c0, w_hh, w_hr, dz):  # type: ignore[no-untyped-def]
    """Backward of :func:`lstm_projected_sequence`: ``dz (T, N, 4H)``; ``dh (N, P)``, ``dc (N, H)``.

    Per step one more ``gemm`` than :func:`lstm_sequence_backward`: ``dh @ W_hr``, the
    gradient of the step's ``o * tanh(c)``.
    """
    ds, dc_prev, dh_cell = np.empty_like(dh), np.empty_like(dc), np.empty_like(dc)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        call_gemm(gemm, d, w_hr, 0.0, dh_cell)
        i, f, g, o, tanh_c = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3], kept[t, 4]
        if t == 0:
            lstm_backward(dh_cell, dc, i, f, g, o, tanh_c, c0, dz[t], dc_prev)
        else:
            lstm_backward(dh_cell, dc, i, f, g, o, tanh_c, kept[t - 1, 5], dz[t], dc_prev)
        clear(t, lengths, dz[t])
        call_gemm(gemm, dz[t], w_hh, 0.0, dh)
        carry(t, lengths, d, dh)
        carry(t, lengths, dc, dc_prev)
        dc, dc_prev = dc_prev, dc
    return dh, dc


@jit
def _gru_step_gemm(gemm, t, lengths, gx, w_hh_t, bx, bh, h_prev, h, kept, gh):  # type: ignore[no-untyped-def]
    """Step ``t``: ``gh = h_prev @ W_hh^T``, the fused kernel, rows past their length keep ``h_prev``."""
    call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    gru_forward(gx, gh, bx, bh, h_prev, h, kept)
    carry(t, lengths, h_prev, h)


@jit
def gru_sequence(gemm, lengths, gx, w_hh_t, bx, bh, h0, y, kept, gh):  # type: ignore[no-untyped-def]
    """GRU forward over ``T`` steps: ``y (T, N, H)``, ``kept (T, 4, N, H)`` as the step kernel's ``out``."""
    _gru_step_gemm(gemm, 0, lengths, gx[0], w_hh_t, bx, bh, h0, y[0], kept[0], gh)
    for t in range(1, gx.shape[0]):
        _gru_step_gemm(gemm, t, lengths, gx[t], w_hh_t, bx, bh, y[t - 1], y[t], kept[t], gh)


@jit
def gru_sequence_backward(gemm, lengths, dy, dh, kept, h0, y, w_hh, dgx, dgh):  # type: ignore[no-untyped-def]
    """GRU backward over ``T`` steps: ``dgx, dgh (T, N, 3H)``; ``dh`` (final state in, initial out)."""
    ds, direct = np.empty_like(dh), np.empty_like(dh)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        r, z, n, gh_n = kept[t, 0], kept[t, 1], kept[t, 2], kept[t, 3]
        if t == 0:
            gru_backward(d, r, z, n, gh_n, h0, dgx[t], dgh[t], direct)
        else:
            gru_backward(d, r, z, n, gh_n, y[t - 1], dgx[t], dgh[t], direct)
        clear(t, lengths, dgx[t])
        clear(t, lengths, dgh[t])
        call_gemm(gemm, dgh[t], w_hh, 1.0, direct)  # dh_prev = dgh @ W_hh + dh * z
        carry(t, lengths, d, direct)
        dh, direct = direct, dh
    return dh
