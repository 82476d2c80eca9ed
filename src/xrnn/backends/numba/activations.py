"""Vectorisable ``exp``, ``sigmoid`` and ``tanh`` for the compiled kernels.

The kernels evaluate ``exp`` and ``tanh`` with :func:`_exp_parts` rather than
``math.exp``: numba compiles ``math.exp`` to one scalar libm call per element, which
stops the compiler from vectorising the loop. ``_exp_parts`` is the textbook method
(Cody-Waite reduction ``x = k ln2 + r``, Taylor series of ``expm1(r)``, ``2**k`` set in
the exponent bits) in the dtype of its argument: within 2 ulp of the correctly rounded
result in both dtypes. Sigmoid and tanh are written from it without overflow for any
finite input: ``e = exp(-|z|)``, ``sigmoid = 1/(1+e)`` or ``e/(1+e)``;
``m = expm1(-2|x|)``, ``tanh = -m/(2+m)`` with the sign of ``x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .compile import jit

__all__ = ["sigmoid", "tanh"]


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


@jit
def sigmoid(z: Any) -> Any:
    """``1 / (1 + exp(-z))`` from ``e = exp(-|z|)``: ``1/(1+e)`` or ``e/(1+e)``."""
    one = _one(z)
    s, p = _exp_parts(-abs(z))
    e = s + s * p
    q = one / (one + e)
    return q if z >= 0 else e * q


@jit
def tanh(x: Any) -> Any:
    """``tanh(x)`` from ``m = expm1(-2|x|)``: ``-m / (2 + m)`` with the sign of ``x``."""
    one = _one(x)
    a = abs(x)
    s, p = _exp_parts(-(a + a))
    m = s * p + (s - one)
    t = -m / (one + one + m)
    return t if x >= 0 else -t
