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
(:class:`~xrnn._engine.ops.Ops`), around this pointwise step: the step still returns
``o * tanh(c)`` (:func:`output` reads it back from the cache) and backward receives
``dh @ W_hr`` in place of ``dh``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._activations import sigmoid
from .._typing import Array
from .base import Cell

__all__ = ["LSTM_CELL", "LSTMStep"]


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


LSTM_CELL = Cell("lstm", 4, 2, True, step, step_backward, output)
