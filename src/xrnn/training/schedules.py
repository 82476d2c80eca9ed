"""Learning-rate schedules: a function of the epoch (or of the update) that :func:`xrnn.fit` follows.

``fit(..., lr_schedule=f)`` sets ``optimizer.lr = f(t)`` before epoch ``t`` (from 0), or
before update ``t`` with ``schedule_by="step"``; ``f`` may be any function of an int.
Two are built in, each the closed form of its torch scheduler (the cosine up to ``steps``,
after which it holds ``final``, as Keras's ``CosineDecay``)::

    StepDecay(lr, step_size, gamma)(t)  = lr * gamma ** (t // step_size)                (StepLR)
    CosineDecay(lr, steps, final)(t)    = final + (lr - final) * (1 + cos(pi * t' / steps)) / 2,
                                          t' = min(t, steps)                  (CosineAnnealingLR)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CosineDecay", "StepDecay"]


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < math.inf:
        what = "a positive int" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _count(t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"t must be an int >= 0 (the epoch or update, from 0), got {t!r}")
    return t


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (or updates).

    Parameters
    ----------
    lr : float
        The learning rate at ``t = 0``, positive.
    step_size : int
        Epochs (or updates) between decays, positive.
    gamma : float, default 0.1
        Factor of each decay, positive.

    Examples
    --------
    >>> import xrnn
    >>> [round(xrnn.StepDecay(0.1, 2, gamma=0.5)(t), 4) for t in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        _positive("lr", lr)
        _positive("step_size", step_size, integer=True)
        _positive("gamma", gamma)
        self.lr, self.step_size, self.gamma = float(lr), step_size, float(gamma)

    def __call__(self, t: int) -> float:
        """The learning rate at epoch (or update) ``t``, from 0.

        Parameters
        ----------
        t : int
            Epochs (or updates) done.

        Returns
        -------
        float
        """
        return self.lr * self.gamma ** (_count(t) // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay({self.lr}, {self.step_size}, gamma={self.gamma})"


class CosineDecay:
    """Lower the learning rate from ``lr`` to ``final`` along half a cosine over ``steps``.

    Parameters
    ----------
    lr : float
        The learning rate at ``t = 0``, positive.
    steps : int
        Epochs (or updates) until ``final``, which holds after them; positive.
    final : float, default 0.0
        The learning rate at ``t >= steps``, ``0 <= final <= lr``.

    Examples
    --------
    >>> import xrnn
    >>> [round(xrnn.CosineDecay(0.1, 4)(t), 4) for t in range(6)]
    [0.1, 0.0854, 0.05, 0.0146, 0.0, 0.0]
    """

    def __init__(self, lr: float, steps: int, final: float = 0.0) -> None:
        _positive("lr", lr)
        _positive("steps", steps, integer=True)
        if isinstance(final, bool) or not isinstance(final, (int, float)) or not 0 <= final <= lr:
            raise ValueError(f"final must be a number in [0, lr={lr}], got {final!r}")
        self.lr, self.steps, self.final = float(lr), steps, float(final)

    def __call__(self, t: int) -> float:
        """The learning rate at epoch (or update) ``t``, from 0.

        Parameters
        ----------
        t : int
            Epochs (or updates) done.

        Returns
        -------
        float
        """
        done = min(_count(t), self.steps)
        return self.final + (self.lr - self.final) * (1.0 + math.cos(math.pi * done / self.steps)) / 2.0

    def __repr__(self) -> str:
        return f"CosineDecay({self.lr}, {self.steps}, final={self.final})"
