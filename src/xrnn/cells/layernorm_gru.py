"""The LayerNorm GRU of haste (LMNT, ``haste_pytorch.LayerNormGRU``; Ba et al. 2016), torch's gate order.

Layer normalisation of the input pre-activations ``gx = W_ih x`` and of the recurrent ones
``gh = W_hh h_prev`` separately, each over all three gates' units together ``(N, 3H)``;
the norms' biases are torch's ``b_ih`` and ``b_hh``, so ``b_hn`` stays inside the reset as
in ``torch.nn.GRU``::

    a = LN(gx; g_ih, b_ih)      u = LN(gh; g_hh, b_hh)        (N, 3H), gates r, z, n
    r = sigmoid(a_r + u_r)      z = sigmoid(a_z + u_z)
    n = tanh(a_n + r * u_n)
    h = (1 - z) * n + z * h_prev

with ``LN`` of :mod:`.layernorm`. These are haste's equations (its ``LayerNormGRUScript``:
``gamma[0]``, ``gamma[1]`` are ``g_ih``, ``g_hh``; ``bias``, ``recurrent_bias`` are ``b_ih``,
``b_hh``); haste orders the gates ``z, r, n``.

The per-unit vectors (:attr:`~.base.Cell.vectors`), concatenated ``(12H,)``: ``bias_ih``,
``bias_hh``, ``ln_ih_weight``, ``ln_hh_weight``, each ``3H``. Backward::

    dn = dh * (1 - z) * (1 - n^2)       dz = dh * (h_prev - n) * z(1-z)
    dr = dn * u_n * r(1-r)              dh_prev (direct) = dh * z
    da = [dr, dz, dn]   du = [dr, dz, dn * r]
    dgx = LN'(da; g_ih)   dgh = LN'(du; g_hh)

``step_backward`` returns ``dgx`` with ``da``, ``du``, ``da * x_hat`` and ``du * h_hat`` after
it (``(N, 15H)``, :attr:`~.base.Cell.gradient_blocks` 12; ``x_hat``, ``h_hat`` the normalised
rows): the gradients of the vectors per row, which :func:`vector_gradient` sums after the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array
from .base import Cell, RowStep
from .layernorm import EPS, normalise, normalise_backward, row_helpers

__all__ = ["LAYERNORM_GRU", "LayerNormGRUStep", "row_step"]


class LayerNormGRUStep(NamedTuple):
    """What one LayerNorm GRU step keeps: ``r, z, n``, ``h_prev`` ``(N, H)``; raw ``gx, gh`` ``(N, 3H)``."""

    r: Array
    z: Array
    n: Array
    gx: Array
    gh: Array
    h_prev: Array


def _split(vectors: Array, hidden: int) -> tuple[Array, ...]:
    """``b_ih, b_hh, g_ih, g_hh``, each ``(3H,)``, from ``vectors (12H,)``."""
    w = 3 * hidden
    return tuple(vectors[k * w : (k + 1) * w] for k in range(4))


def _normed(cache: LayerNormGRUStep, vectors: Array, *, xp: ModuleType) -> tuple[Array, ...]:
    """``x_hat, x_rstd, h_hat, h_rstd`` and ``u_n`` (N, H) of a step, recomputed from its cache."""
    hidden = cache.r.shape[1]
    _, b_hh, _, g_hh = _split(vectors, hidden)
    x_hat, x_rstd = normalise(cache.gx, xp=xp)
    h_hat, h_rstd = normalise(cache.gh, xp=xp)
    u_n = h_hat[:, 2 * hidden :] * g_hh[2 * hidden :] + b_hh[2 * hidden :]
    return x_hat, x_rstd, h_hat, h_rstd, u_n


def step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType, vectors: Array) -> Any:
    """One step ``h_prev -> h`` from raw ``gx``, ``gh`` ``(N, 3H)`` and ``vectors (12H,)``."""
    (h_prev,) = state
    hidden = h_prev.shape[1]
    b_ih, b_hh, g_ih, g_hh = _split(vectors, hidden)
    a = normalise(gx, xp=xp)[0] * g_ih + b_ih  # (N, 3H)
    u = normalise(gh, xp=xp)[0] * g_hh + b_hh
    rz = sigmoid(a[:, : 2 * hidden] + u[:, : 2 * hidden], xp=xp)
    r, z = rz[:, :hidden], rz[:, hidden:]
    n = xp.tanh(a[:, 2 * hidden :] + r * u[:, 2 * hidden :])
    return (n + z * (h_prev - n),), LayerNormGRUStep(r, z, n, gx, gh, h_prev)


def step_backward(dstate: tuple[Array], cache: LayerNormGRUStep, *, xp: ModuleType, vectors: Array) -> Any:
    """``dh -> ([dgx, da, du, da x_hat, du h_hat] (N, 15H), dgh (N, 3H), (dh * z,))``."""
    (dh,) = dstate
    r, z, n, _, _, h_prev = cache
    _, _, g_ih, g_hh = _split(vectors, h_prev.shape[1])
    x_hat, x_rstd, h_hat, h_rstd, u_n = _normed(cache, vectors, xp=xp)
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dz = dh * (h_prev - n) * z * (1.0 - z)
    dr = dn * u_n * r * (1.0 - r)
    da = xp.concat([dr, dz, dn], axis=1)
    du = xp.concat([dr, dz, dn * r], axis=1)
    dgx = normalise_backward(da, g_ih, x_hat, x_rstd, xp=xp)
    dgh = normalise_backward(du, g_hh, h_hat, h_rstd, xp=xp)
    return xp.concat([dgx, da, du, da * x_hat, du * h_hat], axis=1), dgh, (dh * z,)


def vector_gradient(dgx: Array, steps: Sequence[LayerNormGRUStep], *, xp: ModuleType) -> Array:
    """``dvectors (12H,)`` over one loop's steps: sums of ``dgx (T, N, 15H)``'s last ``12H`` columns."""
    return xp.sum(dgx[:, :, dgx.shape[2] // 5 :], axis=(0, 1))  # da, du, da x_hat, du h_hat


def row_step(
    sigmoid: Callable[[Any], Any],
    tanh: Callable[[Any], Any],
    sqrt: Callable[[Any], Any],
    compile: Callable[[Any], Any],
) -> RowStep:
    """The step on one row, for compiled kernels (see :class:`~.base.RowStep`).

    ``kept`` of a row ``(9H,)``: ``r, z, n, gx (3H), gh (3H)``. ``forward(one, eps, gx, gh, v,
    h_prev, kept, h)``; ``backward(one, eps, dh, dc, kept, h_prev, v, dg, dgh, dh_prev)`` with
    ``dg (15H,)`` as :func:`step_backward`'s first result and ``dh_prev = dh * z`` (``dc``
    unused). The equations of :func:`step` and :func:`step_backward`.
    """
    moments, means, pre = (compile(f) for f in row_helpers(sqrt))

    def forward(one: Any, eps: Any, gx: Any, gh: Any, v: Any, h_prev: Any, kept: Any, h: Any) -> None:
        hidden = h_prev.shape[0]
        w = 3 * hidden
        x_mean, x_rstd = moments(gx, 0, w, one, eps)
        h_mean, h_rstd = moments(gh, 0, w, one, eps)
        for j in range(hidden):
            r = sigmoid(pre(gx, gh, v, j, x_mean, x_rstd, h_mean, h_rstd, w))
            z = sigmoid(pre(gx, gh, v, hidden + j, x_mean, x_rstd, h_mean, h_rstd, w))
            k = 2 * hidden + j
            a_n = (gx[k] - x_mean) * x_rstd * v[2 * w + k] + v[k]
            u_n = (gh[k] - h_mean) * h_rstd * v[3 * w + k] + v[w + k]
            n = tanh(a_n + r * u_n)
            kept[j], kept[hidden + j], kept[2 * hidden + j] = r, z, n
            h[j] = n + z * (h_prev[j] - n)
        for j in range(w):
            kept[w + j], kept[2 * w + j] = gx[j], gh[j]

    def backward(
        one: Any, eps: Any, dh: Any, dc: Any, kept: Any, h_prev: Any, v: Any, dg: Any, dgh: Any, dh_prev: Any
    ) -> None:
        hidden = h_prev.shape[0]
        w = 3 * hidden
        h_mean, h_rstd = moments(kept, 2 * w, w, one, eps)
        for j in range(hidden):
            r, z, n = kept[j], kept[hidden + j], kept[2 * hidden + j]
            k = 2 * hidden + j
            u_n = (kept[2 * w + k] - h_mean) * h_rstd * v[3 * w + k] + v[w + k]
            dn = dh[j] * (one - z) * (one - n * n)
            dz = dh[j] * (h_prev[j] - n) * z * (one - z)
            dr = dn * u_n * r * (one - r)
            dg[w + j], dg[w + hidden + j], dg[w + k] = dr, dz, dn
            dg[2 * w + j], dg[2 * w + hidden + j], dg[2 * w + k] = dr, dz, dn * r
            dh_prev[j] = dh[j] * z
        x_mean, x_rstd = moments(kept, w, w, one, eps)
        mx_g, mx_ga = means(dg, w, v, 2 * w, kept, w, w, x_mean, x_rstd, one)
        mh_g, mh_ga = means(dg, 2 * w, v, 3 * w, kept, 2 * w, w, h_mean, h_rstd, one)
        for j in range(w):
            x_hat = (kept[w + j] - x_mean) * x_rstd
            h_hat = (kept[2 * w + j] - h_mean) * h_rstd
            dg[3 * w + j], dg[4 * w + j] = dg[w + j] * x_hat, dg[2 * w + j] * h_hat
            dg[j] = x_rstd * (dg[w + j] * v[2 * w + j] - mx_g - x_hat * mx_ga)
            dgh[j] = h_rstd * (dg[2 * w + j] * v[3 * w + j] - mh_g - h_hat * mh_ga)

    return RowStep(forward, backward, (1, 1, 1, 3, 3), LayerNormGRUStep)


LAYERNORM_GRU = Cell(
    "layernorm_gru",
    3,
    1,
    False,
    step,
    step_backward,
    vectors=(("bias_ih", 3), ("bias_hh", 3), ("ln_ih_weight", 3), ("ln_hh_weight", 3)),
    vector_gradient=vector_gradient,
    gradient_blocks=12,
    row_step=row_step,
    eps=EPS,
)
