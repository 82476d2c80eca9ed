"""The LSTM with peephole connections (Gers & Schmidhuber 2000): ONNX's ``P``, TensorFlow's ``use_peepholes``.

Gates ``i, f, g, o`` in torch's order, pre-activations ``z = gx + gh`` ``(N, 4H)``, and
the per-unit peephole weights ``p = [p_i, p_f, p_o]`` ``(3H,)`` (the layer's
``weight_ch_l{k}``; input, forget and output gates in that order)::

    i = sigmoid(z_i + p_i * c_prev)      f = sigmoid(z_f + p_f * c_prev)      g = tanh(z_g)
    c = f * c_prev + i * g
    o = sigmoid(z_o + p_o * c)           h = o * tanh(c)

The output gate looks at the new cell state, the input and forget gates at the previous
one, as in ONNX's ``LSTM`` and TensorFlow. Backward, from the cached values::

    dz_o = dh * tanh(c) * o(1-o)
    dc   = dc_next + dh * o * (1 - tanh(c)^2) + dz_o * p_o
    dz_i = dc * g * i(1-i)       dz_f = dc * c_prev * f(1-f)       dz_g = dc * i * (1 - g^2)
    dc_prev = dc * f + dz_i * p_i + dz_f * p_f
    dp = [sum dz_i * c_prev, sum dz_f * c_prev, sum dz_o * c]   (over steps and rows)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.sums import sum_rows
from .._util.typing import Array
from .base import Cell, ScalarStep

__all__ = ["LSTM_PEEPHOLE", "PeepholeStep", "scalar_step"]


class PeepholeStep(NamedTuple):
    """What one peephole LSTM step keeps for backward; every field is ``(N, H)``.

    The fields of the LSTM's step (and its layout in the compiled backends); ``c = f *
    c_prev + i * g`` is recomputed where needed (one elementwise pass).
    """

    i: Array
    f: Array
    g: Array
    o: Array
    tanh_c: Array
    c_prev: Array


def _split(vectors: Array, hidden: int) -> tuple[Array, Array, Array]:
    return vectors[:hidden], vectors[hidden : 2 * hidden], vectors[2 * hidden :]


def step(gx: Array, gh: Array, state: tuple[Array, Array], *, xp: ModuleType, vectors: Array) -> Any:
    """One step ``(h_prev, c_prev) -> (h, c)`` from pre-activations ``(N, 4H)`` and ``vectors = p (3H,)``."""
    _, c_prev = state
    hidden = c_prev.shape[1]
    p_i, p_f, p_o = _split(vectors, hidden)
    z = gx + gh  # (N, 4H)
    i = sigmoid(z[:, :hidden] + p_i * c_prev, xp=xp)
    f = sigmoid(z[:, hidden : 2 * hidden] + p_f * c_prev, xp=xp)
    g = xp.tanh(z[:, 2 * hidden : 3 * hidden])
    c = f * c_prev + i * g
    o = sigmoid(z[:, 3 * hidden :] + p_o * c, xp=xp)
    tanh_c = xp.tanh(c)
    return (o * tanh_c, c), PeepholeStep(i, f, g, o, tanh_c, c_prev)


def step_backward(dstate: tuple[Array, Array], cache: PeepholeStep, *, xp: ModuleType, vectors: Array) -> Any:
    """Gradients of one step: ``(dh, dc) -> (dz (N, 4H), None, (None, dc_prev))``."""
    dh, dc_next = dstate
    i, f, g, o, tanh_c, c_prev = cache
    p_i, p_f, p_o = _split(vectors, c_prev.shape[1])
    dz_o = dh * tanh_c * o * (1.0 - o)
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c) + dz_o * p_o
    dz_i = dc * g * i * (1.0 - i)
    dz_f = dc * c_prev * f * (1.0 - f)
    dz = xp.concat([dz_i, dz_f, dc * i * (1.0 - g * g), dz_o], axis=1)
    return dz, None, (None, dc * f + dz_i * p_i + dz_f * p_f)


def vector_gradient(dgx: Array, steps: Sequence[PeepholeStep], *, xp: ModuleType) -> Array:
    """``dp (3H,)`` over the steps of one loop, from ``dgx (T, N, 4H)`` and the step caches."""
    hidden = dgx.shape[2] // 4
    c_prev = xp.stack([s.c_prev for s in steps])  # (T, N, H)
    c = xp.stack([s.f * s.c_prev + s.i * s.g for s in steps])
    dp_i = sum_rows(dgx[:, :, :hidden] * c_prev, xp=xp)
    dp_f = sum_rows(dgx[:, :, hidden : 2 * hidden] * c_prev, xp=xp)
    dp_o = sum_rows(dgx[:, :, 3 * hidden :] * c, xp=xp)
    return xp.concat([dp_i, dp_f, dp_o])


def output(cache: PeepholeStep, *, xp: ModuleType) -> Array:
    """The step's ``h = o * tanh(c)`` before any projection, ``(N, H)``, from its cache."""
    return cache.o * cache.tanh_c


def scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The step per element, for compiled kernels (see :class:`ScalarStep`).

    ``forward(one, x_i, x_f, x_g, x_o, h_i, h_f, h_g, h_o, p_i, p_f, p_o, c_prev) -> (i, f,
    g, o, tanh_c, h, c)``; ``backward(one, dh, dc, i, f, g, o, tanh_c, c_prev, p_i, p_f,
    p_o) -> (dz_i, dz_f, dz_g, dz_o, dc_prev)``. The equations of :func:`step` and
    :func:`step_backward`.
    """

    def forward(
        one: Any,
        x_i: Any,
        x_f: Any,
        x_g: Any,
        x_o: Any,
        h_i: Any,
        h_f: Any,
        h_g: Any,
        h_o: Any,
        p_i: Any,
        p_f: Any,
        p_o: Any,
        c_prev: Any,
    ) -> Any:
        i = sigmoid(x_i + h_i + p_i * c_prev)
        f = sigmoid(x_f + h_f + p_f * c_prev)
        g = tanh(x_g + h_g)
        c = f * c_prev + i * g
        o = sigmoid(x_o + h_o + p_o * c)
        tanh_c = tanh(c)
        return i, f, g, o, tanh_c, o * tanh_c, c

    def backward(
        one: Any,
        dh: Any,
        dc_next: Any,
        i: Any,
        f: Any,
        g: Any,
        o: Any,
        tanh_c: Any,
        c_prev: Any,
        p_i: Any,
        p_f: Any,
        p_o: Any,
    ) -> Any:
        dz_o = dh * tanh_c * o * (one - o)
        dc = dc_next + dh * o * (one - tanh_c * tanh_c) + dz_o * p_o
        dz_i = dc * g * i * (one - i)
        dz_f = dc * c_prev * f * (one - f)
        return dz_i, dz_f, dc * i * (one - g * g), dz_o, dc * f + dz_i * p_i + dz_f * p_f

    return ScalarStep(forward, backward)


LSTM_PEEPHOLE = Cell(
    "lstm_peephole",
    4,
    2,
    True,
    step,
    step_backward,
    output,
    vectors=(("weight_ch", 3),),
    vector_gradient=vector_gradient,
)
