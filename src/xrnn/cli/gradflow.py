"""How much gradient reaches each step: the measurement behind ``python -m xrnn gradflow``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._util.namespaces import convert, to_host
from ..nn import SequenceModel
from ..training import gradient_by_step

__all__ = ["compare_flows", "flow_ratio", "gradient_flow"]


def gradient_flow(model: SequenceModel, x: Any) -> list[float]:
    """:func:`gradient_by_step` of ``model`` on ``x``, measured in float64 with NumPy.

    A trained vanilla RNN can pass back 1e-40 of the gradient over 50 steps, or less: in
    float32 that is zero or a subnormal number, so the measurement is made on a float64
    copy of the model, whatever its backend and dtype (the copy is small: one layer).
    """

    def host64(a: Any) -> Any:
        return convert(to_host(a), xp=np, dtype=np.float64)  # one explicit copy from the device

    copy = SequenceModel(**model.config, xp="numpy", dtype="float64")
    copy.set_params({k: host64(v) for k, v in model.params.items()})
    return [float(g) for g in gradient_by_step(copy, host64(x))]


def flow_ratio(norms: Sequence[float]) -> tuple[float | None, str]:
    """The gradient at the first step over that at the last, and how to print it.

    None where the ratio is undefined (no gradient at the last step, or not a number).
    """
    first, last = norms[0], norms[-1]
    if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
        return None, f"undefined (gradient {first:.2g} at step 1, {last:.2g} at step {len(norms)})"
    if first == 0:
        return 0.0, "0 (no gradient reaches step 1, even in float64)"
    ratio = first / last
    return ratio, f"{ratio:.2g}"


def compare_flows(lstm: float | None, rnn: float | None) -> str:
    """The closing line of ``gradflow``: how much more gradient the LSTM carries back."""
    if lstm is None or rnn is None:
        return "the LSTM and the vanilla RNN cannot be compared: a ratio above is undefined"
    if rnn == 0:
        return f"none of the vanilla RNN's gradient reaches step 1, while the LSTM's ratio is {lstm:.2g}"
    times = lstm / rnn
    amount = f"{times:.2g} times" if math.isfinite(times) else "more than 1e+308 times"
    return f"the LSTM keeps {amount} more of the gradient across the sequence than the vanilla RNN"
