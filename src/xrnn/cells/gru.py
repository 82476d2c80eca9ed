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

from types import ModuleType
from typing import Any, NamedTuple

from .._activations import sigmoid
from .._typing import Array
from .base import Cell

__all__ = ["GRU_CELL", "GRUStep"]


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


GRU_CELL = Cell("gru", 3, 1, False, step, step_backward)
