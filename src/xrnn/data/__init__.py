"""Data: generators of classic recurrent problems, and tasks that train and score a model on them.

:mod:`.sequences` generates the adding problem and the embedded Reber grammar, :mod:`.text`
the characters of a text; :mod:`.tasks` and :mod:`.text_task` wrap each in a task with its
batches, loss and held-out metric (:class:`~xrnn.AddingTask`, :class:`~xrnn.ReberTask`,
:class:`~xrnn.TextTask`). Data is made on the host with NumPy's generators and placed in
any namespace, dtype and device. May import :mod:`xrnn.training` (the tasks' losses),
:mod:`xrnn.nn` and everything below.
"""

from .sequences import (
    REBER_SYMBOLS,
    ReberBatch,
    adding_problem,
    embedded_reber,
    reber_batch,
    reber_successors,
)
from .tasks import AddingTask, Evaluation, ReberTask
from .text import CORPUS_MAX_BYTES, CharVocab, read_corpus, text_batch, zen_of_python
from .text_task import TextTask

__all__ = [
    "CORPUS_MAX_BYTES",
    "REBER_SYMBOLS",
    "AddingTask",
    "CharVocab",
    "Evaluation",
    "ReberBatch",
    "ReberTask",
    "TextTask",
    "adding_problem",
    "embedded_reber",
    "read_corpus",
    "reber_batch",
    "reber_successors",
    "text_batch",
    "zen_of_python",
]
