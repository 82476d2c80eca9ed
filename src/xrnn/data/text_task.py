"""The text task: next-character prediction on a text, scored in bits per character."""

from __future__ import annotations

import math
from collections import Counter
from types import ModuleType
from typing import Any

from .._util.typing import Array
from ..nn.model import SequenceModel
from ..training.losses import softmax_cross_entropy
from .tasks import Evaluation, Task, check_sizes, evaluated
from .text import CharVocab, text_batch

__all__ = ["TextTask"]


class TextTask(Task):
    """Next-character prediction on a text.

    Parameters
    ----------
    text : str
        The corpus, at least ``seq_len + 1`` characters.
    seq_len : int, default 64
        Steps per training window.
    batch_size : int, default 32
        Windows per batch.
    eval_size : int, default 256
        Windows scored by :meth:`evaluate`.
    xp, dtype, device, eval_seed
        As for :class:`AddingTask`.

    Attributes
    ----------
    vocab : CharVocab
        The characters of ``text``.
    """

    name = "text"
    sequence_axes = (1, 1)  # x (T, N, C), targets (T, N)

    def __init__(
        self,
        text: str,
        seq_len: int = 64,
        batch_size: int = 32,
        *,
        eval_size: int = 256,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
        eval_seed: int = 0,
    ) -> None:
        super().__init__(xp=xp, dtype=dtype, device=device, eval_seed=eval_seed)
        check_sizes(seq_len=seq_len, batch_size=batch_size, eval_size=eval_size)
        if len(text) <= seq_len:
            raise ValueError(f"text must be longer than seq_len={seq_len}, got {len(text)} characters")
        self.text, self.seq_len, self.batch_size, self.eval_size = text, seq_len, batch_size, eval_size
        self.vocab = CharVocab.from_text(text)
        self.ids = self.vocab.encode(text)
        self.input_size = self.output_size = len(self.vocab)

    def batch(self, rng: Any) -> tuple[Array, Array]:
        """Random windows of the text.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the window starts.

        Returns
        -------
        x : array, shape (T, N, C)
            One-hot characters.
        targets : int32 array, shape (T, N)
            The next character at every step.
        """
        return text_batch(
            self.ids, len(self.vocab), self.batch_size, self.seq_len, seed=rng, **self._placement()
        )

    def loss(self, z: Array, batch: tuple[Array, Array]) -> tuple[Array, Array]:
        """Cross-entropy of the next character at every step.

        Parameters
        ----------
        z : array, shape (T, N, C)
            The model's logits.
        batch : tuple (x, targets)
            From :meth:`batch`.

        Returns
        -------
        loss : array, shape ()
            Mean cross-entropy in nats.
        dz : array, shape (T, N, C)
            Its gradient.
        """
        return softmax_cross_entropy(z, batch[1])

    def evaluate(self, model: SequenceModel) -> Evaluation:
        """Bits per character on windows of the text, against its character frequencies.

        The windows are drawn from the training text itself (a corpus like the Zen of
        Python is too short to hold some out); the baseline is the entropy of the
        character frequencies, what a model without context could reach.

        Parameters
        ----------
        model : SequenceModel
            A model with ``input_size=output_size=C``.

        Returns
        -------
        Evaluation
            ``metric="bits per character"``, lower is better.
        """
        x, targets = text_batch(
            self.ids,
            len(self.vocab),
            self.eval_size,
            self.seq_len,
            seed=self._held_out_rng(),
            **self._placement(),
        )
        z = evaluated(model, x)
        nats, _ = softmax_cross_entropy(z, targets)
        counts = Counter(self.text)
        entropy = -sum(c / len(self.text) * math.log2(c / len(self.text)) for c in counts.values())
        data = f"{self.eval_size} windows of {self.seq_len} characters of the training text"
        return Evaluation(
            "bits per character", float(nats) / math.log(2), entropy, "character frequencies", data, False
        )

    def real_word_fraction(self, text: str) -> float:
        """Share of the words of ``text`` that are words of the corpus.

        Words are split at whitespace, with punctuation at their ends removed.

        Parameters
        ----------
        text : str
            E.g. a sample of the model.

        Returns
        -------
        float
            In ``[0, 1]``; 0 for a text without words.
        """
        known = set(_words(self.text))
        words = _words(text)
        return sum(w in known for w in words) / len(words) if words else 0.0


def _words(text: str) -> list[str]:
    stripped = (w.strip(_PUNCTUATION) for w in text.split())
    return [w for w in stripped if w]


_PUNCTUATION = ".,;:!?'\"()[]{}*-"
