"""What the command prints and draws while it trains: progress, metrics and figures."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

from ..training.plots import PlottingUnavailable

__all__ = ["format_metric", "progress", "say_compiling", "version", "write_figure"]


def format_metric(metric: str, value: float) -> str:
    """A metric's value as printed: accuracies in percent, others to 4 significant digits."""
    return f"{value:.2%}" if metric == "accuracy" else f"{value:.4g}"


def write_figure(draw: Callable[[pathlib.Path], None], path: pathlib.Path) -> None:
    """Draw a figure to ``path`` and say so, or say why it was skipped (no matplotlib)."""
    try:
        draw(path)
    except PlottingUnavailable as exc:
        print(f"skipped {path}: {exc}")
        return
    print(f"wrote figure {path}")


class progress:
    """A tqdm bar with the running loss, or without tqdm a text line every tenth of the run."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None
        self.running: float | None = None
        self.started = time.perf_counter()
        self.every = max(1, total // 10)

    def __enter__(self) -> Callable[[int, float], None]:
        try:
            from tqdm import tqdm
        except ImportError:
            return self._print
        self.bar = tqdm(total=self.total, desc=self.label, unit="step", dynamic_ncols=True)
        return self._advance

    def _smooth(self, loss: float) -> float:
        """Exponential running mean of the loss over roughly the last 20 steps."""
        self.running = loss if self.running is None else 0.95 * self.running + 0.05 * loss
        return self.running

    def _advance(self, step: int, loss: float) -> None:
        self.bar.set_postfix(loss=f"{self._smooth(loss):.4f}", refresh=False)
        self.bar.update(1)

    def _print(self, step: int, loss: float) -> None:
        running = self._smooth(loss)
        if step % self.every == 0 or step == self.total:
            seconds = time.perf_counter() - self.started
            print(
                f"{self.label}: step {step}/{self.total}  loss {running:.4f}  ({seconds:.0f} s)", flush=True
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def version() -> str:
    """The installed version of xrnn (its distribution ``xrnn-bptt``), for ``--version``."""
    try:
        return metadata.version("xrnn-bptt")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@contextlib.contextmanager
def say_compiling() -> Iterator[None]:
    """Print the record of the first compilation (logger ``"xrnn.compile"``) as one line on stderr."""
    logger = logging.getLogger("xrnn.compile")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("xrnn: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
