"""The LayerNorm LSTM of haste (LMNT, ``haste_pytorch.LayerNormLSTM``; Ba et al. 2016), torch's gate order.

Layer normalisation of the input pre-activations ``gx = W_ih x`` and of the recurrent ones
``gh = W_hh h_prev`` separately, each over all four gates' units together ``(N, 4H)``, and
of the cell state before its ``tanh``::

    z = LN(gx; g_ih, b_ih) + LN(gh; g_hh, b_hh)             (N, 4H), gates i, f, g, o
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)       g = tanh(z_g)
    c = f * c_prev + i * g
    h = o * tanh(LN(c; g_c, b_c))

with ``LN`` of :mod:`.layernorm`. These are haste's equations (its ``LayerNormLSTMScript``):
haste's ``gamma[0]``, ``gamma[1]`` are ``g_ih``, ``g_hh``, its ``gamma_h``, ``beta_h`` are
``g_c``, ``b_c``, and its one ``bias`` is ``b_ih + b_hh`` (torch's two biases, here the norms'
own biases); haste orders the gates ``i, g, f, o``. The state carries ``c`` unnormalised.

The per-unit vectors (:attr:`~.base.Cell.vectors`), concatenated ``(18H,)``: ``bias_ih``,
``bias_hh``, ``ln_ih_weight``, ``ln_hh_weight`` (each ``4H``), ``ln_c_weight``, ``ln_c_bias``
(each ``H``). The biases are not the loop's (the loop adds none): they enter after the norms.

Backward, from the cache (the gates, ``tanh(LN(c))``, the normalised rows ``c_hat``,
``x_hat``, ``h_hat`` and their ``1/std``: no statistic recomputed, no matmul)::

    dcn = dh * o * (1 - tanh(LN(c))^2)                  the gradient of LN(c)
    dc  = dc_next + LN'(dcn)                            dc_prev = dc * f
    dz  = [dc * g * i(1-i), dc * c_prev * f(1-f), dc * i * (1 - g^2), dh * tanh(LN(c)) * o(1-o)]
    dgx = LN'(dz; g_ih)      dgh = LN'(dz; g_hh)

``step_backward`` returns ``dgx`` with ``dz``, ``dz * x_hat``, ``dz * h_hat``, ``dcn * c_hat``
and ``dcn`` after it (``(N, 18H)``, :attr:`~.base.Cell.gradient_blocks` 14): the gradients of
the vectors per row, which :func:`vector_gradient` sums after the loop.
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

__all__ = ["LAYERNORM_LSTM", "LayerNormLSTMStep", "row_step"]


class LayerNormLSTMStep(NamedTuple):
    """What one LayerNorm LSTM step keeps.

    ``i, f, g, o, tanh_c, c_hat`` ``(N, H)``, ``x_hat, h_hat`` ``(N, 4H)``, ``rstd (N, 3)``
    and ``c_prev (N, H)``: ``tanh_c`` is ``tanh(LN(c))``; ``c_hat``, ``x_hat`` and ``h_hat``
    are ``c``, ``gx`` and ``gh`` normalised (before their gains and biases), and ``rstd``
    holds their ``1/std``, in the order ``x, h, c``.
    """

    i: Array
    f: Array
    g: Array
    o: Array
    tanh_c: Array
    c_hat: Array
    x_hat: Array
    h_hat: Array
    rstd: Array
    c_prev: Array


def _split(vectors: Array, hidden: int) -> tuple[Array, ...]:
    """``b_ih, b_hh, g_ih, g_hh`` ``(4H,)`` and ``g_c, b_c`` ``(H,)`` from ``vectors (18H,)``."""
    w = 4 * hidden
    return (
        *(vectors[k * w : (k + 1) * w] for k in range(4)),
        vectors[4 * w : 4 * w + hidden],
        vectors[4 * w + hidden :],
    )


def step(gx: Array, gh: Array, state: tuple[Array, Array], *, xp: ModuleType, vectors: Array) -> Any:
    """One step ``(h_prev, c_prev) -> (h, c)`` from raw ``gx``, ``gh`` ``(N, 4H)`` and ``vectors (18H,)``."""
    _, c_prev = state
    hidden = c_prev.shape[1]
    b_ih, b_hh, g_ih, g_hh, g_c, b_c = _split(vectors, hidden)
    x_hat, x_rstd = normalise(gx, xp=xp)
    h_hat, h_rstd = normalise(gh, xp=xp)
    z = x_hat * g_ih + b_ih + (h_hat * g_hh + b_hh)  # (N, 4H)
    i_f = sigmoid(z[:, : 2 * hidden], xp=xp)
    i, f = i_f[:, :hidden], i_f[:, hidden:]
    g = xp.tanh(z[:, 2 * hidden : 3 * hidden])
    o = sigmoid(z[:, 3 * hidden :], xp=xp)
    c = f * c_prev + i * g
    c_hat, c_rstd = normalise(c, xp=xp)
    tanh_c = xp.tanh(c_hat * g_c + b_c)
    rstd = xp.concat([x_rstd, h_rstd, c_rstd], axis=1)  # (N, 3)
    return (o * tanh_c, c), LayerNormLSTMStep(i, f, g, o, tanh_c, c_hat, x_hat, h_hat, rstd, c_prev)


def step_backward(
    dstate: tuple[Array, Array], cache: LayerNormLSTMStep, *, xp: ModuleType, vectors: Array
) -> Any:
    """``(dh, dc) -> ([dgx, dz, dz x_hat, dz h_hat, dcn c_hat, dcn] (N, 18H), dgh, (None, dc_prev))``."""
    dh, dc_next = dstate
    i, f, g, o, tanh_c, c_hat, x_hat, h_hat, rstd, c_prev = cache
    _, _, g_ih, g_hh, g_c, _ = _split(vectors, c_prev.shape[1])
    dcn = dh * o * (1.0 - tanh_c * tanh_c)
    dc = dc_next + normalise_backward(dcn, g_c, c_hat, rstd[:, 2:3], xp=xp)
    dz = xp.concat(
        [
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tanh_c * o * (1.0 - o),
        ],
        axis=1,
    )
    dgx = normalise_backward(dz, g_ih, x_hat, rstd[:, 0:1], xp=xp)
    dgh = normalise_backward(dz, g_hh, h_hat, rstd[:, 1:2], xp=xp)
    products = [dz * x_hat, dz * h_hat, dcn * c_hat, dcn]
    return xp.concat([dgx, dz, *products], axis=1), dgh, (None, dc * f)


def vector_gradient(dgx: Array, steps: Sequence[LayerNormLSTMStep], *, xp: ModuleType) -> Array:
    """``dvectors (18H,)`` over one loop's steps: sums of ``dgx (T, N, 18H)``'s last ``14H`` columns."""
    hidden = dgx.shape[2] // 18
    sums = sum_rows(dgx[:, :, 4 * hidden :], xp=xp)  # dz, dz x_hat, dz h_hat, dcn c_hat, dcn
    return xp.concat([sums[: 4 * hidden], sums])  # b_ih and b_hh both get sum(dz)


def row_step(
    sigmoid: Callable[[Any], Any],
    tanh: Callable[[Any], Any],
    sqrt: Callable[[Any], Any],
    compile: Callable[[Any], Any],
) -> RowStep:
    """The step on one row, for compiled kernels (see :class:`~.base.RowStep`).

    ``kept`` of a row ``(14H + 3 + H,)``: ``i, f, g, o, tanh_c, c_hat, x_hat (4H), h_hat
    (4H)``, ``rstd (3)`` (the fields of :class:`LayerNormLSTMStep` but ``c_prev``), then the
    new ``c``. ``forward(one, eps, gx, gh, v, c_prev, kept, h)``; ``backward(one, eps, dh,
    dc, kept, c_prev, v, dg, dgh, dc_prev)`` with ``dg (18H,)`` as :func:`step_backward`'s
    first result. The equations of :func:`step` and :func:`step_backward`, each pass over
    a row a loop of its own over 1-d views (so that compilers vectorise it).
    """
    moments, means = (compile(f) for f in row_helpers(sqrt))

    def forward(one: Any, eps: Any, gx: Any, gh: Any, v: Any, c_prev: Any, kept: Any, h: Any) -> None:
        hidden = c_prev.shape[0]
        w = 4 * hidden
        b_ih, b_hh, g_ih, g_hh = v[:w], v[w : 2 * w], v[2 * w : 3 * w], v[3 * w : 4 * w]
        g_c, b_c = v[4 * w : 4 * w + hidden], v[4 * w + hidden : 4 * w + 2 * hidden]
        z, tanh_c, c_hat = kept[:w], kept[w : w + hidden], kept[w + hidden : w + 2 * hidden]
        x_hat, h_hat = kept[6 * hidden : 10 * hidden], kept[10 * hidden : 14 * hidden]
        c = kept[14 * hidden + 3 : 15 * hidden + 3]
        x_mean, x_rstd = moments(gx, one, eps)
        h_mean, h_rstd = moments(gh, one, eps)
        for k in range(w):
            x_hat[k] = (gx[k] - x_mean) * x_rstd
        for k in range(w):
            h_hat[k] = (gh[k] - h_mean) * h_rstd
        for k in range(w):  # the gates' pre-activations, then the gates in place
            z[k] = x_hat[k] * g_ih[k] + b_ih[k] + (h_hat[k] * g_hh[k] + b_hh[k])
        i, f, g, o = (
            kept[:hidden],
            kept[hidden : 2 * hidden],
            kept[2 * hidden : 3 * hidden],
            kept[3 * hidden : w],
        )
        for j in range(hidden):
            i_j, f_j, g_j = sigmoid(i[j]), sigmoid(f[j]), tanh(g[j])
            i[j], f[j], g[j], o[j] = i_j, f_j, g_j, sigmoid(o[j])
            c[j] = f_j * c_prev[j] + i_j * g_j
        c_mean, c_rstd = moments(c, one, eps)
        for j in range(hidden):
            c_hat[j] = (c[j] - c_mean) * c_rstd
        for j in range(hidden):
            t = tanh(c_hat[j] * g_c[j] + b_c[j])
            tanh_c[j] = t
            h[j] = o[j] * t
        kept[14 * hidden], kept[14 * hidden + 1], kept[14 * hidden + 2] = x_rstd, h_rstd, c_rstd

    def backward(
        one: Any,
        eps: Any,
        dh: Any,
        dc_next: Any,
        kept: Any,
        c_prev: Any,
        v: Any,
        dg: Any,
        dgh: Any,
        dc_prev: Any,
    ) -> None:
        hidden = c_prev.shape[0]
        w = 4 * hidden
        g_ih, g_hh, g_c = v[2 * w : 3 * w], v[3 * w : 4 * w], v[4 * w : 4 * w + hidden]
        i, f, g, o = (
            kept[:hidden],
            kept[hidden : 2 * hidden],
            kept[2 * hidden : 3 * hidden],
            kept[3 * hidden : w],
        )
        tanh_c, c_hat = kept[w : w + hidden], kept[w + hidden : w + 2 * hidden]
        x_hat, h_hat = kept[6 * hidden : 10 * hidden], kept[10 * hidden : 14 * hidden]
        x_rstd, h_rstd, c_rstd = kept[14 * hidden], kept[14 * hidden + 1], kept[14 * hidden + 2]
        dgx, dz, dz_x, dz_h = dg[:w], dg[w : 2 * w], dg[2 * w : 3 * w], dg[3 * w : 4 * w]
        dcn_c, dcn = dg[4 * w : 4 * w + hidden], dg[4 * w + hidden : 4 * w + 2 * hidden]
        for j in range(hidden):
            dcn[j] = dh[j] * o[j] * (one - tanh_c[j] * tanh_c[j])
        for j in range(hidden):
            dcn_c[j] = dcn[j] * c_hat[j]
        m_g, m_ga = means(dcn, g_c, c_hat, one)
        dz_i, dz_f, dz_g, dz_o = (
            dz[:hidden],
            dz[hidden : 2 * hidden],
            dz[2 * hidden : 3 * hidden],
            dz[3 * hidden :],
        )
        for j in range(hidden):
            i_j, f_j, g_j, o_j = i[j], f[j], g[j], o[j]
            dc = dc_next[j] + c_rstd * (dcn[j] * g_c[j] - m_g - c_hat[j] * m_ga)
            dz_i[j] = dc * g_j * i_j * (one - i_j)
            dz_f[j] = dc * c_prev[j] * f_j * (one - f_j)
            dz_g[j] = dc * i_j * (one - g_j * g_j)
            dz_o[j] = dh[j] * tanh_c[j] * o_j * (one - o_j)
            dc_prev[j] = dc * f_j
        for k in range(w):
            dz_x[k] = dz[k] * x_hat[k]
        for k in range(w):
            dz_h[k] = dz[k] * h_hat[k]
        mx_g, mx_ga = means(dz, g_ih, x_hat, one)
        mh_g, mh_ga = means(dz, g_hh, h_hat, one)
        for k in range(w):
            dgx[k] = x_rstd * (dz[k] * g_ih[k] - mx_g - x_hat[k] * mx_ga)
        for k in range(w):
            dgh[k] = h_rstd * (dz[k] * g_hh[k] - mh_g - h_hat[k] * mh_ga)

    return RowStep(forward, backward, (1, 1, 1, 1, 1, 1, 4, 4), LayerNormLSTMStep, 3)


LAYERNORM_LSTM = Cell(
    "layernorm_lstm",
    4,
    2,
    False,
    step,
    step_backward,
    vectors=(
        ("bias_ih", 4),
        ("bias_hh", 4),
        ("ln_ih_weight", 4),
        ("ln_hh_weight", 4),
        ("ln_c_weight", 1),
        ("ln_c_bias", 1),
    ),
    vector_gradient=vector_gradient,
    gradient_blocks=14,
    row_step=row_step,
    eps=EPS,
)
