"""The LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), torch gate order.

Pre-activations ``z = gx + gh`` of shape ``(N, 4H)`` split into the gates
``i, f, g, o`` in that order (as ``torch.nn.LSTM``)::

    i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_g)   o = sigmoid(z_o)
    c = f * c_prev + i * g
    h = o * tanh(c)

Backward, from the cached post-activation values only (no matmul recomputed)::

    dc  = dc_next + dh * o * (1 - tanh(c)^2)
    dz_i = dc * g * i(1-i)        dz_f = dc * c_prev * f(1-f)
    dz_g = dc * i * (1 - g^2)     dz_o = dh * tanh(c) * o(1-o)
    dc_prev = dc * f              dgx = dgh = [dz_i, dz_f, dz_g, dz_o]

With a projection (``proj_size = P > 0``, Sak et al. 2014, as ``torch.nn.LSTM``), the
state carries ``h = (o * tanh(c)) @ W_hr^T`` of shape ``(N, P)`` and ``c`` stays
``(N, H)``. The projection is a matmul, so it belongs to the loop
(:class:`~xrnn.engine.ops.Ops`), around this pointwise step: the step still returns
``o * tanh(c)`` (:func:`output` reads it back from the cache) and backward receives
``dh @ W_hr`` in place of ``dh``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array
from .base import Cell, ScalarStep

__all__ = ["LSTM_CELL", "LSTMStep", "scalar_step"]


class LSTMStep(NamedTuple):
    """What one LSTM step keeps for backward; every field is ``(N, H)``."""

    i: Array
    f: Array
    g: Array
    o: Array
    tanh_c: Array
    c_prev: Array


def step(gx: Array, gh: Array, state: tuple[Array, Array], *, xp: ModuleType) -> Any:
    """One LSTM step: ``(h_prev, c_prev) -> (h, c)`` from pre-activations ``(N, 4H)``."""
    _, c_prev = state
    hidden = c_prev.shape[1]
    z = gx + gh  # (N, 4H)
    i_f = sigmoid(z[:, : 2 * hidden], xp=xp)  # (N, 2H)
    i, f = i_f[:, :hidden], i_f[:, hidden:]
    g = xp.tanh(z[:, 2 * hidden : 3 * hidden])
    o = sigmoid(z[:, 3 * hidden :], xp=xp)
    c = f * c_prev + i * g
    tanh_c = xp.tanh(c)
    return (o * tanh_c, c), LSTMStep(i, f, g, o, tanh_c, c_prev)


def step_backward(dstate: tuple[Array, Array], cache: LSTMStep, *, xp: ModuleType) -> Any:
    """Gradients of one LSTM step: ``(dh, dc) -> (dz (N, 4H), None, (None, dc_prev))``."""
    dh, dc_next = dstate
    i, f, g, o, tanh_c, c_prev = cache
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
    dz = xp.concat(
        [
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tanh_c * o * (1.0 - o),
        ],
        axis=1,
    )
    return dz, None, (None, dc * f)


def output(cache: LSTMStep, *, xp: ModuleType) -> Array:
    """The step's ``h = o * tanh(c)`` before any projection, ``(N, H)``, from its cache."""
    return cache.o * cache.tanh_c


def scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The LSTM step per element, for compiled kernels (see :class:`ScalarStep`).

    ``forward(one, x_i, x_f, x_g, x_o, h_i, h_f, h_g, h_o, c_prev) -> (i, f, g, o, tanh_c,
    h, c)`` from the input parts ``x_*`` and the recurrent parts ``h_*`` of the four gates'
    pre-activations; ``backward(one, dh, dc, i, f, g, o, tanh_c, c_prev) -> (dz_i, dz_f,
    dz_g, dz_o, dc_prev)``. The equations of :func:`step` and :func:`step_backward`.
    """

    def forward(
        one: Any, x_i: Any, x_f: Any, x_g: Any, x_o: Any, h_i: Any, h_f: Any, h_g: Any, h_o: Any, c_prev: Any
    ) -> Any:
        i = sigmoid(x_i + h_i)
        f = sigmoid(x_f + h_f)
        g = tanh(x_g + h_g)
        o = sigmoid(x_o + h_o)
        c = f * c_prev + i * g
        tanh_c = tanh(c)
        return i, f, g, o, tanh_c, o * tanh_c, c

    def backward(
        one: Any, dh: Any, dc_next: Any, i: Any, f: Any, g: Any, o: Any, tanh_c: Any, c_prev: Any
    ) -> Any:
        dc = dc_next + dh * o * (one - tanh_c * tanh_c)
        return (
            dc * g * i * (one - i),
            dc * c_prev * f * (one - f),
            dc * i * (one - g * g),
            dh * tanh_c * o * (one - o),
            dc * f,
        )

    return ScalarStep(forward, backward)


LSTM_CELL = Cell("lstm", 4, 2, True, step, step_backward, output)
