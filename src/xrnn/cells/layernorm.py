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
    """``(moments, backward_means, pre_activation)``: one row's reductions, for compiled kernels.

    Plain Python over 1-d arrays, built on a target's ``sqrt``; a cell's ``row_step``
    compiles each for its target (:class:`~xrnn.cells.base.RowStep`). Every quantity stays
    in the dtype of ``one`` and ``eps`` (1 and :data:`EPS` in that dtype): the divisions
    are by the count of units summed as ``one``, not by an integer, which compilers
    would promote to float64.

    - ``moments(a, start, width, one, eps) -> (mean, rstd)`` of ``a[start:start + width]``;
    - ``backward_means(dy, dy_start, gamma, g_start, a, a_start, width, mean, rstd, one)
      -> (mean(g), mean(g * a_hat))`` with ``g = dy * gamma`` and ``a_hat = (a - mean) *
      rstd``, so that ``da_j = rstd * (g_j - mean(g) - a_hat_j * mean(g * a_hat))``;
    - ``pre_activation(gx, gh, v, k, x_mean, x_rstd, h_mean, h_rstd, width)``, ``LN(gx)_k +
      LN(gh)_k`` with ``v = [b_ih, b_hh, g_ih, g_hh, ...]`` (each ``width``).
    """

    def moments(a: Any, start: int, width: int, one: Any, eps: Any) -> tuple[Any, Any]:
        total = one - one
        count = one - one
        for j in range(start, start + width):
            total += a[j]
            count += one
        mean = total / count
        sq = one - one
        for j in range(start, start + width):
            sq += (a[j] - mean) * (a[j] - mean)
        return mean, one / sqrt(sq / count + eps)

    def backward_means(
        dy: Any,
        dy_start: int,
        gamma: Any,
        g_start: int,
        a: Any,
        a_start: int,
        width: int,
        mean: Any,
        rstd: Any,
        one: Any,
    ) -> tuple[Any, Any]:
        s_g = one - one
        s_ga = one - one
        count = one - one
        for j in range(width):
            g = dy[dy_start + j] * gamma[g_start + j]
            s_g += g
            s_ga += g * (a[a_start + j] - mean) * rstd
            count += one
        return s_g / count, s_ga / count

    def pre_activation(
        gx: Any, gh: Any, v: Any, k: int, x_mean: Any, x_rstd: Any, h_mean: Any, h_rstd: Any, width: int
    ) -> Any:
        x_part = (gx[k] - x_mean) * x_rstd * v[2 * width + k] + v[k]
        return x_part + (gh[k] - h_mean) * h_rstd * v[3 * width + k] + v[width + k]

    return moments, backward_means, pre_activation
