"""What :func:`xrnn.fit` says while it runs: a progress bar or a line per epoch, and why it stopped."""

from __future__ import annotations

from collections.abc import Callable

from .history import History

__all__ = ["Reporter"]


class Reporter:
    """Report each epoch (tqdm's bar where installed, else one line) and one-line notices.

    Parameters
    ----------
    epochs : int
        Epochs planned.
    verbose : bool
        False: say nothing.
    """

    def __init__(self, epochs: int, verbose: bool) -> None:
        self.epochs, self.verbose = epochs, verbose
        self._bar = None
        self._write: Callable[[str], None] = lambda text: print(text, flush=True)
        if verbose:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=epochs, unit="epoch", desc="fit")
            self._write = tqdm.write

    def epoch(self, epoch: int, history: History) -> None:
        """Report ``epoch`` (from 1) of ``history``.

        Parameters
        ----------
        epoch : int
            The epoch just run.
        history : History
            What fit measured so far.
        """
        if not self.verbose:
            return
        if self._bar is None:
            self._write(f"epoch {epoch}/{self.epochs}: {history.summary(epoch)}")
            return
        self._bar.set_postfix_str(history.summary(epoch), refresh=False)
        self._bar.update(1)

    def say(self, text: str) -> None:
        """Print one line (above the bar, if any).

        Parameters
        ----------
        text : str
            The line.
        """
        if self.verbose:
            self._write(text)

    def close(self) -> None:
        """Close the bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
