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

The cache keeps the normalised rows ``x_hat``, ``h_hat`` and their ``1/std``: backward
recomputes no statistic and no matmul. ``step_backward`` returns ``dgx`` with ``da``, ``du``,
``da * x_hat`` and ``du * h_hat`` after it (``(N, 15H)``, :attr:`~.base.Cell.gradient_blocks`
12): the gradients of the vectors per row, which :func:`vector_gradient` sums after the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.sums import sum_rows
from .._util.typing import Array
from .base import Cell, RowStep
from .layernorm import EPS, normalise, normalise_backward, row_helpers

__all__ = ["LAYERNORM_GRU", "LayerNormGRUStep", "row_step"]


class LayerNormGRUStep(NamedTuple):
    """What one LayerNorm GRU step keeps.

    ``r, z, n`` ``(N, H)``, ``x_hat, h_hat`` ``(N, 3H)`` (``gx`` and ``gh`` normalised,
    before their gains and biases), ``rstd (N, 2)`` (their ``1/std``, ``x`` then ``h``)
    and ``h_prev (N, H)``.
    """

    r: Array
    z: Array
    n: Array
    x_hat: Array
    h_hat: Array
    rstd: Array
    h_prev: Array


def _split(vectors: Array, hidden: int) -> tuple[Array, ...]:
    """``b_ih, b_hh, g_ih, g_hh``, each ``(3H,)``, from ``vectors (12H,)``."""
    w = 3 * hidden
    return tuple(vectors[k * w : (k + 1) * w] for k in range(4))


def step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType, vectors: Array) -> Any:
    """One step ``h_prev -> h`` from raw ``gx``, ``gh`` ``(N, 3H)`` and ``vectors (12H,)``."""
    (h_prev,) = state
    hidden = h_prev.shape[1]
    b_ih, b_hh, g_ih, g_hh = _split(vectors, hidden)
    x_hat, x_rstd = normalise(gx, xp=xp)
    h_hat, h_rstd = normalise(gh, xp=xp)
    a = x_hat * g_ih + b_ih  # (N, 3H)
    u = h_hat * g_hh + b_hh
    rz = sigmoid(a[:, : 2 * hidden] + u[:, : 2 * hidden], xp=xp)
    r, z = rz[:, :hidden], rz[:, hidden:]
    n = xp.tanh(a[:, 2 * hidden :] + r * u[:, 2 * hidden :])
    rstd = xp.concat([x_rstd, h_rstd], axis=1)  # (N, 2)
    return (n + z * (h_prev - n),), LayerNormGRUStep(r, z, n, x_hat, h_hat, rstd, h_prev)


def step_backward(dstate: tuple[Array], cache: LayerNormGRUStep, *, xp: ModuleType, vectors: Array) -> Any:
    """``dh -> ([dgx, da, du, da x_hat, du h_hat] (N, 15H), dgh (N, 3H), (dh * z,))``."""
    (dh,) = dstate
    r, z, n, x_hat, h_hat, rstd, h_prev = cache
    hidden = h_prev.shape[1]
    _, b_hh, g_ih, g_hh = _split(vectors, hidden)
    u_n = h_hat[:, 2 * hidden :] * g_hh[2 * hidden :] + b_hh[2 * hidden :]
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dz = dh * (h_prev - n) * z * (1.0 - z)
    dr = dn * u_n * r * (1.0 - r)
    da = xp.concat([dr, dz, dn], axis=1)
    du = xp.concat([dr, dz, dn * r], axis=1)
    dgx = normalise_backward(da, g_ih, x_hat, rstd[:, 0:1], xp=xp)
    dgh = normalise_backward(du, g_hh, h_hat, rstd[:, 1:2], xp=xp)
    return xp.concat([dgx, da, du, da * x_hat, du * h_hat], axis=1), dgh, (dh * z,)


def vector_gradient(dgx: Array, steps: Sequence[LayerNormGRUStep], *, xp: ModuleType) -> Array:
    """``dvectors (12H,)`` over one loop's steps: sums of ``dgx (T, N, 15H)``'s last ``12H`` columns."""
    return sum_rows(dgx[:, :, dgx.shape[2] // 5 :], xp=xp)  # da, du, da x_hat, du h_hat


def row_step(
    sigmoid: Callable[[Any], Any],
    tanh: Callable[[Any], Any],
    sqrt: Callable[[Any], Any],
    compile: Callable[[Any], Any],
) -> RowStep:
    """The step on one row, for compiled kernels (see :class:`~.base.RowStep`).

    ``kept`` of a row ``(9H + 2,)``: ``r, z, n, x_hat (3H), h_hat (3H), rstd (2)`` (the
    fields of :class:`LayerNormGRUStep` but ``h_prev``). ``forward(one, eps, gx, gh, v,
    h_prev, kept, h)``; ``backward(one, eps, dh, dc, kept, h_prev, v, dg, dgh, dh_prev)``
    with ``dg (15H,)`` as :func:`step_backward`'s first result and ``dh_prev = dh * z``
    (``dc`` unused). The equations of :func:`step` and :func:`step_backward`, each pass
    over a row a loop of its own over 1-d views (so that compilers vectorise it).
    """
    moments, means = (compile(f) for f in row_helpers(sqrt))

    def forward(one: Any, eps: Any, gx: Any, gh: Any, v: Any, h_prev: Any, kept: Any, h: Any) -> None:
        hidden = h_prev.shape[0]
        w, two = 3 * hidden, 2 * hidden
        b_ih, b_hh, g_ih, g_hh = v[:w], v[w : 2 * w], v[2 * w : 3 * w], v[3 * w : 4 * w]
        rz, n = kept[:two], kept[two:w]
        x_hat, h_hat = kept[w : 2 * w], kept[2 * w : 3 * w]
        x_mean, x_rstd = moments(gx, one, eps)
        h_mean, h_rstd = moments(gh, one, eps)
        for k in range(w):
            x_hat[k] = (gx[k] - x_mean) * x_rstd
        for k in range(w):
            h_hat[k] = (gh[k] - h_mean) * h_rstd
        for k in range(two):
            rz[k] = sigmoid(x_hat[k] * g_ih[k] + b_ih[k] + (h_hat[k] * g_hh[k] + b_hh[k]))
        r, z = kept[:hidden], kept[hidden:two]
        x_n, h_n = x_hat[two:], h_hat[two:]
        g_xn, b_xn, g_hn, b_hn = g_ih[two:], b_ih[two:], g_hh[two:], b_hh[two:]
        for j in range(hidden):
            n_j = tanh(x_n[j] * g_xn[j] + b_xn[j] + r[j] * (h_n[j] * g_hn[j] + b_hn[j]))
            n[j] = n_j
            h[j] = n_j + z[j] * (h_prev[j] - n_j)
        kept[3 * w], kept[3 * w + 1] = x_rstd, h_rstd

    def backward(
        one: Any, eps: Any, dh: Any, dc: Any, kept: Any, h_prev: Any, v: Any, dg: Any, dgh: Any, dh_prev: Any
    ) -> None:
        hidden = h_prev.shape[0]
        w, two = 3 * hidden, 2 * hidden
        b_hn, g_ih, g_hh = v[w + two : 2 * w], v[2 * w : 3 * w], v[3 * w : 4 * w]
        r, z, n = kept[:hidden], kept[hidden:two], kept[two:w]
        x_hat, h_hat = kept[w : 2 * w], kept[2 * w : 3 * w]
        x_rstd, h_rstd = kept[3 * w], kept[3 * w + 1]
        dgx, da, du, da_x, du_h = dg[:w], dg[w : 2 * w], dg[2 * w : 3 * w], dg[3 * w : 4 * w], dg[4 * w :]
        da_r, da_z, da_n = da[:hidden], da[hidden:two], da[two:]
        h_n, g_hn = h_hat[two:], g_hh[two:]
        for j in range(hidden):
            z_j, n_j = z[j], n[j]
            dn = dh[j] * (one - z_j) * (one - n_j * n_j)
            da_z[j] = dh[j] * (h_prev[j] - n_j) * z_j * (one - z_j)
            da_r[j] = dn * (h_n[j] * g_hn[j] + b_hn[j]) * r[j] * (one - r[j])
            da_n[j] = dn
            dh_prev[j] = dh[j] * z_j
        for k in range(two):
            du[k] = da[k]
        du_n = du[two:]
        for j in range(hidden):
            du_n[j] = da_n[j] * r[j]
        for k in range(w):
            da_x[k] = da[k] * x_hat[k]
        for k in range(w):
            du_h[k] = du[k] * h_hat[k]
        mx_g, mx_ga = means(da, g_ih, x_hat, one)
        mh_g, mh_ga = means(du, g_hh, h_hat, one)
        for k in range(w):
            dgx[k] = x_rstd * (da[k] * g_ih[k] - mx_g - x_hat[k] * mx_ga)
        for k in range(w):
            dgh[k] = h_rstd * (du[k] * g_hh[k] - mh_g - h_hat[k] * mh_ga)

    return RowStep(forward, backward, (1, 1, 1, 3, 3), LayerNormGRUStep, 2)


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
