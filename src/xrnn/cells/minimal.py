"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates of the input alone.

Both cells turn a step's pre-activations ``g = W x + b`` (no recurrent matmul) into the
coefficients of a linear recurrence ``h_t = a_t * h_{t-1} + b_t``, which the engine runs
sequentially or as a parallel scan (:mod:`xrnn.engine.min_scan`). With the paper's ``g``
activation, ``g(p) = p + 1/2`` for ``p >= 0`` and ``sigmoid(p)`` below (positive,
continuous, derivative continuous)::

    minGRU   gates z, h~   (2H):   z = sigmoid(k)           a = 1 - z        b = z * g(p)
    minLSTM  gates f, i, h~ (3H):  f' = f / (f + i), i' = i / (f + i) with f, i = sigmoid(k_f), sigmoid(k_i)
                                   a = f'                   b = i' * g(p)

Both are one form, ``a = sigmoid(-u)``, ``b = sigmoid(u) g(p)``, with ``u = k`` (minGRU) or
``u = log i - log f = softplus(-k_f) - softplus(-k_i)`` (minLSTM). The coefficients are
computed from the paper's log space, ``log(1 - z) = -softplus(u)`` and ``log z = u -
softplus(u)``, so that neither ``z`` nor ``1 - z`` is formed by a subtraction that loses
it; ``b = z g(p)`` is a product of two positive factors (the paper's ``log b = log z +
log g(p)``, which its log-space scan needs; the doubling scan takes ``b`` itself).

Backward, from the cached ``a``, ``z = sigmoid(u)``, ``g(p)`` and ``g'(p)``::

    dz = db * g(p) - da       du = dz * z * a       dp = db * z * g'(p)
    minLSTM:  dk_f = -du * sigmoid(-k_f)    dk_i = du * sigmoid(-k_i)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

from .._util.activations import sigmoid
from .._util.typing import Array

__all__ = ["MINGRU_CELL", "MINLSTM_CELL", "MinCell", "MinStep", "softplus"]


def softplus(x: Array, *, xp: ModuleType) -> Array:
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return (x + xp.abs(x)) / 2 + xp.log1p(xp.exp(-xp.abs(x)))


class MinStep(NamedTuple):
    """What the coefficients keep for backward; every field is ``(T, N, H)``."""

    a: Array  # 1 - z, the coefficient of h_{t-1}
    z: Array  # sigmoid(u)
    gp: Array  # g(p)
    dgp: Array  # g'(p)
    lstm: tuple[Array, Array] | None  # minLSTM: sigmoid(-k_f), sigmoid(-k_i); minGRU: None


def _coefficients(u: Array, p: Array, *, xp: ModuleType) -> tuple[Array, Array, Array, Array, Array]:
    """``a, b`` of the recurrence from log space, and ``z``, ``g(p)``, ``g'(p)`` for backward."""
    log_a = -softplus(u, xp=xp)  # log(1 - z)
    a, z = xp.exp(log_a), xp.exp(u + log_a)  # log z = -softplus(-u) = u - softplus(u)
    s = sigmoid(p, xp=xp)
    positive = p >= 0
    gp = xp.where(positive, p + 0.5, s)
    dgp = xp.where(positive, xp.ones_like(p), s * (1.0 - s))
    return a, z * gp, z, gp, dgp


@dataclass(frozen=True)
class MinCell:
    """A cell whose gates depend on the input alone: pre-activations to recurrence coefficients.

    Attributes
    ----------
    name : str
        ``"mingru"`` or ``"minlstm"``.
    n_gates : int
        G, the number of ``H``-wide blocks of ``W`` (2: ``z, h~``; 3: ``f, i, h~``).
    n_states : int
        1: the state is ``h`` alone.
    """

    name: str
    n_gates: int
    n_states: int = 1

    def coefficients(self, gates: Array, *, xp: ModuleType) -> tuple[Array, Array, MinStep]:
        """``a, b`` of ``h_t = a_t h_{t-1} + b_t`` from the pre-activations.

        Parameters
        ----------
        gates : array, shape (T, N, G*H)
            ``x W^T + b`` of every step, blocks in the gate order of :attr:`name`.
        xp : module
            Array namespace.

        Returns
        -------
        a, b : array, shape (T, N, H)
        cache : MinStep
        """
        hidden = gates.shape[-1] // self.n_gates
        if self.n_gates == 2:
            u, lstm = gates[..., :hidden], None
        else:
            k_f, k_i = gates[..., :hidden], gates[..., hidden : 2 * hidden]
            u = softplus(-k_f, xp=xp) - softplus(-k_i, xp=xp)
            lstm = (sigmoid(-k_f, xp=xp), sigmoid(-k_i, xp=xp))
        a, b, z, gp, dgp = _coefficients(u, gates[..., (self.n_gates - 1) * hidden :], xp=xp)
        return a, b, MinStep(a, z, gp, dgp, lstm)

    def coefficients_backward(self, da: Array, db: Array, cache: MinStep, *, xp: ModuleType) -> Array:
        """Gradient of the pre-activations from those of ``a`` and ``b``.

        Parameters
        ----------
        da, db : array, shape (T, N, H)
            Gradients of the loss with respect to ``a`` and ``b``.
        cache : MinStep
            Third result of :meth:`coefficients`.
        xp : module
            Array namespace.

        Returns
        -------
        array, shape (T, N, G*H)
            Gradient with respect to ``gates``.
        """
        dz = db * cache.gp - da
        du = dz * cache.z * cache.a
        dp = db * cache.z * cache.dgp
        if cache.lstm is None:
            return xp.concat([du, dp], axis=-1)
        s_f, s_i = cache.lstm
        return xp.concat([-du * s_f, du * s_i, dp], axis=-1)


#: minGRU, gates ``z, h~``: ``h = (1 - z) * h_prev + z * g(p)``.
MINGRU_CELL = MinCell("mingru", 2)
#: minLSTM, gates ``f, i, h~``: ``h = f' * h_prev + i' * g(p)`` with ``f' + i' = 1``.
MINLSTM_CELL = MinCell("minlstm", 3)
