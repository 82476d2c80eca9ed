"""The GRU cell in the formulation of ``torch.nn.GRU`` (Cho et al. 2014), gates ``r, z, n``.

With ``gx = W_ih x + b_ih`` and ``gh = W_hh h_prev + b_hh``, both ``(N, 3H)``::

    r = sigmoid(gx_r + gh_r)    z = sigmoid(gx_z + gh_z)
    n = tanh(gx_n + r * gh_n)
    h = (1 - z) * n + z * h_prev

``b_hn`` sits inside ``r * (...)``, so ``b_hh`` cannot be folded into the hoisted
projection. Backward, from the cached values::

    dn = dh * (1 - z) * (1 - n^2)         dz = dh * (h_prev - n) * z(1-z)
    dr = dn * gh_n * r(1-r)               dh_prev (direct) = dh * z
    dgx = [dr, dz, dn]                    dgh = [dr, dz, dn * r]
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array
from .base import Cell, ScalarStep

__all__ = ["GRU_CELL", "GRUStep", "scalar_step"]


class GRUStep(NamedTuple):
    """What one GRU step keeps for backward; every field is ``(N, H)``."""

    r: Array
    z: Array
    n: Array
    gh_n: Array
    h_prev: Array


def step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType) -> Any:
    """One GRU step: ``h_prev -> h`` from ``gx``, ``gh`` of shape ``(N, 3H)``."""
    (h_prev,) = state
    hidden = h_prev.shape[1]
    rz = sigmoid(gx[:, : 2 * hidden] + gh[:, : 2 * hidden], xp=xp)  # (N, 2H)
    r, z = rz[:, :hidden], rz[:, hidden:]
    gh_n = gh[:, 2 * hidden :]
    n = xp.tanh(gx[:, 2 * hidden :] + r * gh_n)
    h = n + z * (h_prev - n)
    return (h,), GRUStep(r, z, n, gh_n, h_prev)


def step_backward(dstate: tuple[Array], cache: GRUStep, *, xp: ModuleType) -> Any:
    """Gradients of one GRU step: ``dh -> (dgx, dgh, (dh_prev direct,))``."""
    (dh,) = dstate
    r, z, n, gh_n, h_prev = cache
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dz = dh * (h_prev - n) * z * (1.0 - z)
    dr = dn * gh_n * r * (1.0 - r)
    dgx = xp.concat([dr, dz, dn], axis=1)
    dgh = xp.concat([dr, dz, dn * r], axis=1)
    return dgx, dgh, (dh * z,)


def scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The GRU step per element, for compiled kernels (see :class:`ScalarStep`).

    ``forward(one, x_r, x_z, x_n, h_r, h_z, h_n, h_prev) -> (r, z, n, h)`` from the input
    parts ``x_*`` and the recurrent parts ``h_*`` of the three gates' pre-activations
    (``h_n`` is the cached ``gh_n``); ``backward(one, dh, r, z, n, gh_n, h_prev) -> (dr,
    dz, dn, dn * r, dh * z)``: ``dgx = [dr, dz, dn]``, ``dgh = [dr, dz, dn * r]`` and the
    direct ``dh_prev``. The equations of :func:`step` and :func:`step_backward`.
    """

    def forward(one: Any, x_r: Any, x_z: Any, x_n: Any, h_r: Any, h_z: Any, h_n: Any, h_prev: Any) -> Any:
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)
        return r, z, n, n + z * (h_prev - n)

    def backward(one: Any, dh: Any, r: Any, z: Any, n: Any, gh_n: Any, h_prev: Any) -> Any:
        dn = dh * (one - z) * (one - n * n)
        dz = dh * (h_prev - n) * z * (one - z)
        dr = dn * gh_n * r * (one - r)
        return dr, dz, dn, dn * r, dh * z

    return ScalarStep(forward, backward)


GRU_CELL = Cell("gru", 3, 1, False, step, step_backward)
