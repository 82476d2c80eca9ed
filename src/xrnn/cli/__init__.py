"""``python -m xrnn``: the command (:mod:`.command`) and its arguments (:mod:`.args`).

The command trains a demo model on a task, samples from a checkpoint, or compares the
gradient flow of an RNN and an LSTM, with a progress bar and plots. It sits at the top:
it may import every other package of xrnn, and none imports it.
"""

from .command import DEMO_DEFAULTS, main

__all__ = ["DEMO_DEFAULTS", "main"]
