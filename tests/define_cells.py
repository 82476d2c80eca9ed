"""The GRU, the LSTM and a coupled-input-forget-gate LSTM written through ``xrnn.cells.define``."""

from __future__ import annotations

from typing import Any


def gru(act: Any, r: Any, z: Any, n_x: Any, n_h: Any, h: Any) -> Any:
    """torch's GRU: ``n = tanh(n_x + r * n_h)``, ``h' = (1 - z) n + z h``."""
    r, z = act.sigmoid(r), act.sigmoid(z)
    n = act.tanh(n_x + r * n_h)
    return (1 - z) * n + z * h


def lstm(act: Any, i: Any, f: Any, g: Any, o: Any, h: Any, c: Any) -> Any:
    """torch's LSTM, gates ``i, f, g, o``."""
    c_next = act.sigmoid(f) * c + act.sigmoid(i) * act.tanh(g)
    return act.sigmoid(o) * act.tanh(c_next), c_next


def cifg(act: Any, f: Any, g: Any, o: Any, h: Any, c: Any) -> Any:
    """The LSTM with its input gate coupled to the forget gate, ``i = 1 - f``."""
    f = act.sigmoid(f)
    c_next = f * c + (1 - f) * act.tanh(g)
    return act.sigmoid(o) * act.tanh(c_next), c_next
