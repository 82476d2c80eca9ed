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

Backward, from the cache (the gates, ``tanh(LN(c))`` and the raw ``gx``, ``gh``; the norms'
statistics recomputed per row, no matmul)::

    dcn = dh * o * (1 - tanh(LN(c))^2)                  the gradient of LN(c)
    dc  = dc_next + LN'(dcn)                            dc_prev = dc * f
    dz  = [dc * g * i(1-i), dc * c_prev * f(1-f), dc * i * (1 - g^2), dh * tanh(LN(c)) * o(1-o)]
    dgx = LN'(dz; g_ih)      dgh = LN'(dz; g_hh)

``step_backward`` returns ``dgx`` with ``dz``, ``dz * x_hat``, ``dz * h_hat``, ``dcn * c_hat``
and ``dcn`` after it (``(N, 18H)``, :attr:`~.base.Cell.gradient_blocks` 14; ``x_hat``,
``h_hat``, ``c_hat`` the normalised rows): the gradients of the vectors per row, which
:func:`vector_gradient` sums after the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array
from .base import Cell, RowStep
from .layernorm import EPS, normalise, normalise_backward, row_helpers

__all__ = ["LAYERNORM_LSTM", "LayerNormLSTMStep", "row_step"]


class LayerNormLSTMStep(NamedTuple):
    """What one LayerNorm LSTM step keeps: ``i, f, g, o, tanh_c, c_prev`` ``(N, H)``, ``gx, gh`` ``(N, 4H)``.

    ``tanh_c`` is ``tanh(LN(c))``; ``gx`` and ``gh`` are the raw pre-activations, before
    their norms.
    """

    i: Array
    f: Array
    g: Array
    o: Array
    tanh_c: Array
    gx: Array
    gh: Array
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
    x_hat, _ = normalise(gx, xp=xp)
    h_hat, _ = normalise(gh, xp=xp)
    z = x_hat * g_ih + b_ih + h_hat * g_hh + b_hh  # (N, 4H)
    i_f = sigmoid(z[:, : 2 * hidden], xp=xp)
    i, f = i_f[:, :hidden], i_f[:, hidden:]
    g = xp.tanh(z[:, 2 * hidden : 3 * hidden])
    o = sigmoid(z[:, 3 * hidden :], xp=xp)
    c = f * c_prev + i * g
    c_hat, _ = normalise(c, xp=xp)
    tanh_c = xp.tanh(c_hat * g_c + b_c)
    return (o * tanh_c, c), LayerNormLSTMStep(i, f, g, o, tanh_c, gx, gh, c_prev)


def step_backward(
    dstate: tuple[Array, Array], cache: LayerNormLSTMStep, *, xp: ModuleType, vectors: Array
) -> Any:
    """``(dh, dc) -> ([dgx, dz, dz x_hat, dz h_hat, dcn c_hat, dcn] (N, 18H), dgh, (None, dc_prev))``."""
    dh, dc_next = dstate
    i, f, g, o, tanh_c, gx, gh, c_prev = cache
    _, _, g_ih, g_hh, g_c, _ = _split(vectors, c_prev.shape[1])
    c_hat, c_rstd = normalise(f * c_prev + i * g, xp=xp)
    dcn = dh * o * (1.0 - tanh_c * tanh_c)
    dc = dc_next + normalise_backward(dcn, g_c, c_hat, c_rstd, xp=xp)
    dz = xp.concat(
        [
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tanh_c * o * (1.0 - o),
        ],
        axis=1,
    )
    x_hat, x_rstd = normalise(gx, xp=xp)
    h_hat, h_rstd = normalise(gh, xp=xp)
    dgx = normalise_backward(dz, g_ih, x_hat, x_rstd, xp=xp)
    dgh = normalise_backward(dz, g_hh, h_hat, h_rstd, xp=xp)
    products = [dz * x_hat, dz * h_hat, dcn * c_hat, dcn]
    return xp.concat([dgx, dz, *products], axis=1), dgh, (None, dc * f)


def vector_gradient(dgx: Array, steps: Sequence[LayerNormLSTMStep], *, xp: ModuleType) -> Array:
    """``dvectors (18H,)`` over one loop's steps: sums of ``dgx (T, N, 18H)``'s last ``14H`` columns."""
    hidden = dgx.shape[2] // 18
    sums = xp.sum(dgx[:, :, 4 * hidden :], axis=(0, 1))  # dz, dz x_hat, dz h_hat, dcn c_hat, dcn
    return xp.concat([sums[: 4 * hidden], sums])  # b_ih and b_hh both get sum(dz)


def row_step(
    sigmoid: Callable[[Any], Any],
    tanh: Callable[[Any], Any],
    sqrt: Callable[[Any], Any],
    compile: Callable[[Any], Any],
) -> RowStep:
    """The step on one row, for compiled kernels (see :class:`~.base.RowStep`).

    ``kept`` of a row ``(14H,)``: ``i, f, g, o, tanh_c, gx (4H), gh (4H), c`` (the fields of
    :class:`LayerNormLSTMStep` but ``c_prev``, then the new ``c``). ``forward(one, eps, gx, gh,
    v, c_prev, kept, h)``; ``backward(one, eps, dh, dc, kept, c_prev, v, dg, dgh, dc_prev)``
    with ``dg (18H,)`` as :func:`step_backward`'s first result. The equations of
    :func:`step` and :func:`step_backward`.
    """
    moments, means, pre = (compile(f) for f in row_helpers(sqrt))

    def forward(one: Any, eps: Any, gx: Any, gh: Any, v: Any, c_prev: Any, kept: Any, h: Any) -> None:
        hidden = c_prev.shape[0]
        w = 4 * hidden
        x_mean, x_rstd = moments(gx, 0, w, one, eps)
        h_mean, h_rstd = moments(gh, 0, w, one, eps)
        for j in range(hidden):
            z_i = pre(gx, gh, v, j, x_mean, x_rstd, h_mean, h_rstd, w)
            z_f = pre(gx, gh, v, hidden + j, x_mean, x_rstd, h_mean, h_rstd, w)
            z_g = pre(gx, gh, v, 2 * hidden + j, x_mean, x_rstd, h_mean, h_rstd, w)
            z_o = pre(gx, gh, v, 3 * hidden + j, x_mean, x_rstd, h_mean, h_rstd, w)
            i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
            kept[j], kept[hidden + j], kept[2 * hidden + j], kept[3 * hidden + j] = i, f, g, o
            kept[13 * hidden + j] = f * c_prev[j] + i * g
        for j in range(w):
            kept[5 * hidden + j], kept[9 * hidden + j] = gx[j], gh[j]
        c_mean, c_rstd = moments(kept, 13 * hidden, hidden, one, eps)
        for j in range(hidden):
            tanh_c = tanh((kept[13 * hidden + j] - c_mean) * c_rstd * v[4 * w + j] + v[4 * w + hidden + j])
            kept[4 * hidden + j] = tanh_c
            h[j] = kept[3 * hidden + j] * tanh_c

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
        c_mean, c_rstd = moments(kept, 13 * hidden, hidden, one, eps)
        for j in range(hidden):  # dcn into dg's last block
            o, tanh_c = kept[3 * hidden + j], kept[4 * hidden + j]
            dg[17 * hidden + j] = dh[j] * o * (one - tanh_c * tanh_c)
        m_g, m_ga = means(dg, 17 * hidden, v, 4 * w, kept, 13 * hidden, hidden, c_mean, c_rstd, one)
        for j in range(hidden):
            i, f, g, o = kept[j], kept[hidden + j], kept[2 * hidden + j], kept[3 * hidden + j]
            tanh_c = kept[4 * hidden + j]
            c_hat = (kept[13 * hidden + j] - c_mean) * c_rstd
            dcn = dg[17 * hidden + j]
            dg[16 * hidden + j] = dcn * c_hat
            dc = dc_next[j] + c_rstd * (dcn * v[4 * w + j] - m_g - c_hat * m_ga)
            dg[w + j] = dc * g * i * (one - i)
            dg[w + hidden + j] = dc * c_prev[j] * f * (one - f)
            dg[w + 2 * hidden + j] = dc * i * (one - g * g)
            dg[w + 3 * hidden + j] = dh[j] * tanh_c * o * (one - o)
            dc_prev[j] = dc * f
        x_mean, x_rstd = moments(kept, 5 * hidden, w, one, eps)
        h_mean, h_rstd = moments(kept, 9 * hidden, w, one, eps)
        mx_g, mx_ga = means(dg, w, v, 2 * w, kept, 5 * hidden, w, x_mean, x_rstd, one)
        mh_g, mh_ga = means(dg, w, v, 3 * w, kept, 9 * hidden, w, h_mean, h_rstd, one)
        for j in range(w):
            dz = dg[w + j]
            x_hat = (kept[5 * hidden + j] - x_mean) * x_rstd
            h_hat = (kept[9 * hidden + j] - h_mean) * h_rstd
            dg[2 * w + j], dg[3 * w + j] = dz * x_hat, dz * h_hat
            dg[j] = x_rstd * (dz * v[2 * w + j] - mx_g - x_hat * mx_ga)
            dgh[j] = h_rstd * (dz * v[3 * w + j] - mh_g - h_hat * mh_ga)

    return RowStep(forward, backward, (1, 1, 1, 1, 1, 4, 4), LayerNormLSTMStep)


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
