"""The GRU with the reset gate before the recurrent matmul: Keras's ``reset_after=False``, ONNX's default.

Gates ``r, z, n`` in torch's order and layout (``W_hh = [U_r; U_z; U_n]``, ``(3H, H)``),
with ``gx = W_ih x + b_ih + b_hh`` (every bias outside the reset, as Keras and ONNX's
``linear_before_reset=0``: ``b_hh`` folds into the hoisted projection)::

    r = sigmoid(gx_r + U_r h_prev)     z = sigmoid(gx_z + U_z h_prev)
    n = tanh(gx_n + U_n (r * h_prev))
    h = (1 - z) * n + z * h_prev

``U_n (r * h_prev)`` is a second recurrent matmul after the gate ``r``
(:class:`~xrnn.cells.base.LateMatmul`): the loop computes ``gh_r, gh_z`` from ``h_prev``,
then ``m = r * h_prev``, then ``gh_n = m @ U_n^T``. Backward, from the cached values::

    dn = dh * (1 - z) * (1 - n^2)      dz = dh * (h_prev - n) * z(1-z)
    dm = dn @ U_n                       (the loop's second matmul back)
    dr = dm * h_prev * r(1-r)           dh_prev (direct) = dh * z + dm * r
    dgx = dgh = [dr, dz, dn]            dU_n = sum_t dn_t^T m_t
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array
from .base import Cell, LateMatmul, ScalarStep

__all__ = ["GRU_RESET_BEFORE", "GRUResetBeforeStep", "late_scalar_step", "scalar_step"]


class GRUResetBeforeStep(NamedTuple):
    """What one reset-before GRU step keeps for backward; every field is ``(N, H)``."""

    r: Array
    z: Array
    n: Array
    h_prev: Array


def late_input(gx: Array, gh_early: Array, state: tuple[Array], *, xp: ModuleType) -> Array:
    """``m = r * h_prev`` (N, H), the input of ``U_n``, from ``gx (N, 3H)`` and ``gh_early (N, 2H)``."""
    (h_prev,) = state
    hidden = h_prev.shape[1]
    return sigmoid(gx[:, :hidden] + gh_early[:, :hidden], xp=xp) * h_prev


def late_kept(cache: GRUResetBeforeStep, *, xp: ModuleType) -> Array:
    """The step's ``m = r * h_prev`` (N, H) from its cache."""
    return cache.r * cache.h_prev


def step(gx: Array, gh: Array, state: tuple[Array], *, xp: ModuleType) -> Any:
    """One step ``h_prev -> h`` from ``gx`` and ``gh = [U_r h, U_z h, U_n (r * h)]``, both ``(N, 3H)``."""
    (h_prev,) = state
    hidden = h_prev.shape[1]
    rz = sigmoid(gx[:, : 2 * hidden] + gh[:, : 2 * hidden], xp=xp)  # (N, 2H)
    r, z = rz[:, :hidden], rz[:, hidden:]
    n = xp.tanh(gx[:, 2 * hidden :] + gh[:, 2 * hidden :])
    h = n + z * (h_prev - n)
    return (h,), GRUResetBeforeStep(r, z, n, h_prev)


def step_backward(dstate: tuple[Array], cache: GRUResetBeforeStep, *, xp: ModuleType) -> Any:
    """``dh -> ([0, dz, dn], None, (dh * z,))``: the gradients but the path through ``m``."""
    (dh,) = dstate
    r, z, n, h_prev = cache
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dz = dh * (h_prev - n) * z * (1.0 - z)
    return xp.concat([xp.zeros_like(dz), dz, dn], axis=1), None, (dh * z,)


def late_backward(dm: Array, cache: GRUResetBeforeStep, grads: Any, *, xp: ModuleType) -> Any:
    """Complete :func:`step_backward`'s gradients with ``dm = dn @ U_n`` (N, H)."""
    dgx, _, (direct,) = grads
    r, _, _, h_prev = cache
    hidden = r.shape[1]
    dr = dm * h_prev * r * (1.0 - r)
    return xp.concat([dr, dgx[:, hidden:]], axis=1), None, (direct + dm * r,)


def scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The step per element once ``gh_n = U_n (r * h_prev)`` is known (see :class:`ScalarStep`).

    ``forward(one, x_r, x_z, x_n, h_r, h_z, h_n, h_prev) -> (r, z, n, h)``;
    ``backward(one, dh, r, z, n, h_prev) -> (dz, dn, dh * z)`` (``r`` enters only through
    :func:`late_scalar_step`). The equations of
    :func:`step` and :func:`step_backward`; :func:`late_scalar_step` has the rest.
    """

    def forward(one: Any, x_r: Any, x_z: Any, x_n: Any, h_r: Any, h_z: Any, h_n: Any, h_prev: Any) -> Any:
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + h_n)
        return r, z, n, n + z * (h_prev - n)

    def backward(one: Any, dh: Any, r: Any, z: Any, n: Any, h_prev: Any) -> Any:
        return dh * (h_prev - n) * z * (one - z), dh * (one - z) * (one - n * n), dh * z

    return ScalarStep(forward, backward)


def late_scalar_step(sigmoid: Callable[[Any], Any], tanh: Callable[[Any], Any]) -> ScalarStep:
    """The path through ``m = r * h_prev`` per element, for compiled kernels.

    ``forward(one, x_r, h_r, h_prev) -> m``; ``backward(one, dm, r, h_prev, direct) ->
    (dr, direct + dm * r)``: :func:`late_input` and :func:`late_backward`.
    """

    def forward(one: Any, x_r: Any, h_r: Any, h_prev: Any) -> Any:
        return sigmoid(x_r + h_r) * h_prev

    def backward(one: Any, dm: Any, r: Any, h_prev: Any, direct: Any) -> Any:
        return dm * h_prev * r * (one - r), direct + dm * r

    return ScalarStep(forward, backward)


GRU_RESET_BEFORE = Cell(
    "gru_reset_before",
    3,
    1,
    True,
    step,
    step_backward,
    late=LateMatmul(1, late_input, late_kept, late_backward),
)
