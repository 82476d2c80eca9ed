"""Zoneout on the recurrent state (Krueger et al. 2017), with haste's semantics: the masks of a layer.

``zoneout=p`` (or a pair ``(p_h, p_c)`` for a cell with state ``(h, c)``): in training mode
each forward pass draws, per layer, direction, state part, step, sequence and unit, a
mask ``m`` that is 1 with probability ``p``, and each step's state is
``m * s_prev + (1 - m) * s_new``: the unit keeps its previous value where ``m`` is 1. In
evaluation mode ``m`` is ``p`` itself, the expectation. The masks come from the layer's
generator (as the dropout masks) and stay in the cache, so backward is exact; the loops
take them (:mod:`xrnn.engine.zoneout`), so every cell with any number of state parts
takes the option with nothing of its own.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from .._util.namespaces import convert
from .._util.typing import Array

__all__ = ["ZONEOUT_DOC", "Zoneout", "check_zoneout"]

#: The option in the layers' docstrings.
ZONEOUT_DOC = (
    "    zoneout : float or tuple of float, default 0\n        Zoneout on the state (Krueger et al. "
    "2017, haste's semantics): in training mode\n        each unit keeps its previous value with this "
    "probability, per step and sequence\n        (``h = m * h_prev + (1 - m) * h_new``); in evaluation "
    "mode ``h = p * h_prev + (1 - p) * h_new``.\n        In ``[0, 1)``; a pair ``(p_h, p_c)`` for the "
    "LSTM (:mod:`xrnn.nn.zoneout`).\n"
)


def _probability(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and 0 <= float(value) < 1


def check_zoneout(zoneout: Any, n_states: int, proj_size: int = 0) -> float | tuple[float, ...]:
    """``zoneout`` as a float, or a tuple of one float per state part; else a clear ``ValueError``.

    Parameters
    ----------
    zoneout : float or sequence of float
        The probability of keeping a unit's previous value, in ``[0, 1)``: one for every
        state part, or one per part (``(p_h, p_c)`` for the LSTM).
    n_states : int
        The cell's state parts.
    proj_size : int, default 0
        The LSTM's projection, which zoneout does not take.

    Returns
    -------
    float or tuple of float
        A float when every part has the same probability, else one per part.
    """
    parts = "(p_h, p_c)" if n_states == 2 else "(p_h,)"
    if isinstance(zoneout, (list, tuple)):
        if len(zoneout) != n_states or not all(_probability(p) for p in zoneout):
            raise ValueError(
                f"zoneout must be a number in [0, 1) or {n_states} of them {parts}, one per state part, "
                f"got {zoneout!r}"
            )
        values = tuple(float(p) for p in zoneout)
    elif _probability(zoneout):
        values = (float(zoneout),) * n_states
    else:
        raise ValueError(
            f"zoneout must be a number in [0, 1), the probability that a unit keeps its previous value "
            f"(or {n_states} of them {parts}), got {zoneout!r}"
        )
    if proj_size and any(values):
        raise ValueError(
            f"zoneout is not supported with a projection (proj_size={proj_size}); got {zoneout!r}"
        )
    return values[0] if len(set(values)) == 1 else values


class Zoneout:
    """The zoneout masks of one forward pass, for the layer classes (a base)."""

    zoneout: float | tuple[float, ...] = 0.0
    training: bool
    xp: Any
    dtype: Any
    generator: Any

    def _zoneout_masks(
        self, shape: tuple[int, int, int], sizes: Sequence[int], device: Any, training: bool | None = None
    ) -> list[tuple[Array | None, ...]] | None:
        """One tuple of masks per state part, for each of ``shape[0]`` loops (layers times directions).

        Parameters
        ----------
        shape : tuple (L*D, T, N)
            Loops, steps and sequences.
        sizes : sequence of int
            The width of each state part (``H``).
        device : device
            Where the masks go.
        training : bool, optional
            The mode of this call; None follows :attr:`training`.

        Returns
        -------
        list of tuples of arrays (T, N, H), (T, 1, 1) in evaluation mode, or None
            A part with probability 0 has None; None when no part has zoneout.
        """
        probabilities = self.zoneout if isinstance(self.zoneout, tuple) else (self.zoneout,) * len(sizes)
        if not any(probabilities):
            return None
        loops, t_steps, n = shape
        where = {"dtype": self.dtype, "device": device}
        if not (self.training if training is None else training):  # the expectation, the same every step
            expected = tuple(
                None if p == 0 else self.xp.full((t_steps, 1, 1), p, **where) for p in probabilities
            )
            return [expected] * loops
        return [
            tuple(
                None
                if p == 0
                else convert(self.generator.random((t_steps, n, size)) < p, xp=self.xp, **where)
                for p, size in zip(probabilities, sizes, strict=True)
            )
            for _ in range(loops)
        ]
