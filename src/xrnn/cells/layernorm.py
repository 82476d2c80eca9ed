"""Layer normalisation inside a step (Ba et al. 2016), the per-row reduction of the LayerNorm cells.

``LN(a; gamma, beta) = (a - mean(a)) * rstd * gamma + beta`` over the last axis of each row,
with ``rstd = 1 / sqrt(var(a) + EPS)`` (the biased variance, as ``torch.nn.functional.layer_norm``).
Backward, from the normalised row ``a_hat = (a - mean) * rstd`` and ``rstd``::

    g  = dy * gamma
    da = rstd * (g - mean(g) - a_hat * mean(g * a_hat))
    dgamma = sum dy * a_hat        dbeta = sum dy        (over rows and steps, after the loop)

Written twice, each form once: on arrays (:func:`normalise`, :func:`normalise_backward`)
for the array loops, and on one row (:func:`row_helpers`) as plain Python over a 1-d
array for the compiled kernels (the per-row contract, :class:`~xrnn.cells.base.RowStep`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._util.typing import Array

__all__ = ["EPS", "normalise", "normalise_backward", "row_helpers"]

#: The variance epsilon of every normalisation (torch's and haste's default).
EPS = 1e-5


def normalise(a: Array, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(a_hat, rstd)``: ``a (..., W)`` centred and scaled per row, and ``rstd (..., 1)``."""
    centred = a - xp.mean(a, axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + EPS)
    return centred * rstd, rstd


def normalise_backward(dy: Array, gamma: Array, a_hat: Array, rstd: Array, *, xp: ModuleType) -> Array:
    """``da (N, W)`` of ``LN(a; gamma, beta)``.

    From ``dy (N, W)``, ``gamma (W,)``, ``a_hat (N, W)`` and ``rstd (N, 1)``.
    """
    g = dy * gamma
    mean_g = xp.mean(g, axis=1, keepdims=True)
    mean_ga = xp.mean(g * a_hat, axis=1, keepdims=True)
    return rstd * (g - mean_g - a_hat * mean_ga)


def row_helpers(sqrt: Callable[[Any], Any]) -> tuple[Callable[..., Any], ...]:
    """``(moments, backward_means)``: the reductions over one row, for compiled kernels.

    Plain Python over whole 1-d arrays (a cell passes views of its row), built on a
    target's ``sqrt``; a cell's ``row_step`` compiles each for its target
    (:class:`~xrnn.cells.base.RowStep`), which may sum in any order. Every quantity stays
    in the dtype of ``one`` and ``eps`` (1 and :data:`EPS` in that dtype): the divisions
    are by the count of units summed as ``one``, not by an integer, which compilers
    would promote to float64.

    - ``moments(a, one, eps) -> (mean, rstd)`` of ``a (W,)``, the variance from the
      centred values (a second pass);
    - ``backward_means(dy, gamma, a_hat, one) -> (mean(g), mean(g * a_hat))`` with ``g =
      dy * gamma``, all ``(W,)``, so that ``da_j = rstd * (g_j - mean(g) - a_hat_j *
      mean(g * a_hat))``.
    """

    def moments(a: Any, one: Any, eps: Any) -> tuple[Any, Any]:
        total = one - one
        count = one - one
        for j in range(a.shape[0]):
            total += a[j]
            count += one
        mean = total / count
        sq = one - one
        for j in range(a.shape[0]):
            sq += (a[j] - mean) * (a[j] - mean)
        return mean, one / sqrt(sq / count + eps)

    def backward_means(dy: Any, gamma: Any, a_hat: Any, one: Any) -> tuple[Any, Any]:
        s_g = one - one
        s_ga = one - one
        count = one - one
        for j in range(dy.shape[0]):
            g = dy[j] * gamma[j]
            s_g += g
            s_ga += g * a_hat[j]
            count += one
        return s_g / count, s_ga / count

    return moments, backward_means
