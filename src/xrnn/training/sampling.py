"""Sampling from a character (or any next-symbol) model, one symbol at a time.

The model reads a priming sequence, then repeatedly draws the next symbol from
``softmax(z / temperature)`` and feeds it back as a one-hot input. The draw is inverse
transform sampling with uniform numbers from Python's ``random.Random(seed)``, so a
seed gives the same text on every backend (up to rounding at the boundaries).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from types import ModuleType

from array_api_compat import device as device_of

from .._util.typing import Array
from .._util.validation import check_int
from ..nn.model import SequenceModel

__all__ = ["sample"]


def sample(
    model: SequenceModel,
    prime: Iterable[int],
    length: int,
    *,
    temperature: float = 1.0,
    seed: int | None = None,
) -> list[int]:
    """Generate ``length`` symbols after ``prime``.

    Parameters
    ----------
    model : SequenceModel
        A model whose inputs are one-hot symbols and whose outputs are logits over the
        same symbols (``input_size == output_size == C``).
    prime : sequence of int, length P >= 1
        Symbols (indices in ``0..C-1``) read before generating.
    length : int
        Number of symbols to generate, ``>= 0``.
    temperature : float, default 1.0
        Divides the logits: below 1 sharper, above 1 flatter; 0 always takes the most
        likely symbol.
    seed : int, optional
        Seed of the uniform draws.

    Returns
    -------
    list of int
        The ``length`` generated symbols (without ``prime``).
    """
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a SequenceModel, got {type(model).__name__}")
    model._require_every_step("xrnn.sample")
    config = model.config
    n_symbols = config["output_size"]
    if config["input_size"] != n_symbols:
        raise ValueError(
            "model must read and predict the same symbols (input_size == output_size), got "
            f"input_size={config['input_size']}, output_size={n_symbols}"
        )
    prime = list(prime)
    if not prime or any(
        isinstance(i, bool) or not hasattr(i, "__index__") or not 0 <= i < n_symbols for i in prime
    ):
        raise ValueError(f"prime must be a non-empty sequence of ints in 0..{n_symbols - 1}, got {prime!r}")
    check_int("length", length, least=0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")

    xp, dtype = model.xp, model.dtype
    classes = xp.arange(n_symbols, device=model.device)  # (C,)

    def one_hot(ids: list[int]) -> Array:  # (len(ids), 1, C)
        rows = xp.asarray(ids, dtype=classes.dtype, device=device_of(classes))
        return xp.astype(rows[:, None, None] == classes, dtype)

    uniform = random.Random(seed)
    z, state, _ = model.forward(one_hot(prime), training=False)
    out: list[int] = []
    for _ in range(length):
        logits = z[-1, 0, :]  # (C,)
        if temperature == 0:
            nxt = int(xp.argmax(logits))
        else:
            cdf = xp.cumulative_sum(_weights(logits, temperature, xp=xp))  # (C,)
            nxt = min(int(xp.sum(xp.astype(cdf <= uniform.random() * cdf[-1], xp.int32))), n_symbols - 1)
        out.append(nxt)
        z, state, _ = model.forward(one_hot([nxt]), state, training=False)
    return out


def _weights(logits: Array, temperature: float, *, xp: ModuleType) -> Array:
    """``exp((logits - max) / temperature)``, unnormalised, for any temperature > 0.

    ``softmax(logits / temperature)`` overflows for a tiny temperature (``1e-300``: every
    ratio is infinite, and the weights NaN). Here the gaps below the maximum are scaled by
    at most what the dtype holds, so the weights stay finite: as the temperature goes to 0
    every symbol but the most likely gets weight 0 (greedy decoding), as it should.
    """
    gaps = xp.max(logits) - logits  # (C,) >= 0; infinite for a logit of -inf (weight 0)
    finite = xp.isfinite(gaps)
    zero = xp.zeros_like(gaps)
    widest = float(xp.max(xp.where(finite, gaps, zero)))
    largest = float(xp.finfo(logits.dtype).max) / (2.0 * max(widest, 1.0))  # half: no rounding past max
    scale = 1.0 / temperature if temperature * largest >= 1.0 else largest
    return xp.where(finite, xp.exp(-(xp.where(finite, gaps, zero) * scale)), zero)
