"""The sequential linear recurrence ``h_t = a_t h_{t-1} + b_t`` compiled: minGRU's and minLSTM's loop.

One pass over memory, in place of the generic loop's ``T`` Python steps
(:class:`xrnn.engine.linear_scan.LinearOps`); the parallel doubling scan needs no backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...engine.linear_scan import LinearOps
from .compile import jit

__all__ = ["NumbaLinearOps"]


def _sequential(a: Any, b: Any, out: Any) -> None:  # pragma: no cover (compiled)
    t_steps, m = a.shape
    for j in range(m):
        out[0, j] = b[0, j]
    for t in range(1, t_steps):
        for j in range(m):
            out[t, j] = a[t, j] * out[t - 1, j] + b[t, j]


_SEQUENTIAL = jit(_sequential)


class NumbaLinearOps(LinearOps):
    """:class:`~xrnn.engine.linear_scan.LinearOps` with the loop compiled by Numba (NumPy arrays).

    Parameters
    ----------
    xp : module
        A NumPy namespace.
    """

    name = "numba"

    def sequential(self, a: Any, b: Any) -> Any:
        """Run the recurrence step by step, compiled (see :meth:`LinearOps.sequential`).

        Parameters
        ----------
        a, b : array, shape (T, ...)
            Coefficients of every step; float32 or float64, one dtype.

        Returns
        -------
        array, shape (T, ...)
        """
        shape = a.shape
        a2 = np.ascontiguousarray(a).reshape(shape[0], -1)
        b2 = np.ascontiguousarray(b).reshape(shape[0], -1)
        out = np.empty_like(a2)
        _SEQUENTIAL(a2, b2, out)
        return out.reshape(shape)
