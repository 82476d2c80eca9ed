"""PNG figures: a training loss curve, the gradient reaching each step, and a fit's history.

Matplotlib is an optional dependency (``pip install matplotlib``, or the ``cli`` extra).
It is imported only when a figure is drawn, through its object-oriented API with the Agg
renderer, so no window opens and no global pyplot state changes. Without it,
:class:`PlottingUnavailable` says what to install.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["PlottingUnavailable", "plot_gradient_flow", "plot_history", "plot_loss_curve"]

#: Line colour of each cell, the same in every figure.
COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
LABELS = {"rnn": "vanilla RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}


class PlottingUnavailable(RuntimeError):
    """Matplotlib, needed to write a figure, is not installed."""


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable("writing a PNG needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over the last ``window`` values (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_loss_curve(
    losses: Sequence[float],
    path: str | os.PathLike[str],
    *,
    title: str,
    ylabel: str = "training loss",
    baseline: tuple[float, str] | None = None,
) -> None:
    """Write the training loss per step (raw and smoothed, log scale) as a PNG.

    Parameters
    ----------
    losses : sequence of float, shape (steps,)
        The loss of every step.
    path : str or path
        The PNG file to write.
    title : str
        Title of the figure.
    ylabel : str, default "training loss"
        Label of the loss axis.
    baseline : tuple (float, str), optional
        A horizontal reference line and its label (e.g. a trivial predictor's loss).
    """
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"losses must be a non-empty sequence of numbers, got shape {values.shape}")
    steps = np.arange(1, values.size + 1)
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.8, label="per step")
    ax.plot(steps, _smooth(values, max(1, values.size // 50)), color="tab:blue", label="running mean")
    if baseline is not None:
        ax.axhline(baseline[0], color="gray", linestyle="--", linewidth=1, label=baseline[1])
    if np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    fig.savefig(path)


def plot_gradient_flow(
    norms: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str,
) -> None:
    """Write the gradient reaching each time step, one line per cell, log scale, as a PNG.

    Parameters
    ----------
    norms : dict of str to sequence of float, each of shape (T,)
        For each cell name (``"rnn"``, ``"lstm"``, ``"gru"``), the gradient norm at steps
        ``1..T`` (see :func:`xrnn.train.gradient_by_step`).
    path : str or path
        The PNG file to write.
    title : str
        Title of the figure.
    """
    if not norms:
        raise ValueError("norms must hold at least one cell's values, got an empty dict")
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot()
    for cell, values in norms.items():
        v = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, v.size + 1), v, color=COLORS.get(cell), label=LABELS.get(cell, cell), marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the output is read at the last step)")
    ax.set_ylabel("mean ||d output / d x_t||")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path)


def plot_history(history: Any, path: str | os.PathLike[str], *, title: str) -> None:
    """Write the losses of a :func:`xrnn.fit` per epoch, and its validation accuracy, as a PNG.

    Parameters
    ----------
    history : xrnn.History
        What :func:`xrnn.fit` returned (at least one epoch).
    path : str or path
        The PNG file to write.
    title : str
        Title of the figure.
    """
    if not len(history):
        raise ValueError("history must hold at least one epoch, got none")
    epochs = np.asarray(history.epochs)
    panels = 2 if history.val_accuracy else 1
    fig = _figure(6.4, 3.2 * panels)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(epochs, history.loss, color="tab:blue", marker=".", label="training loss")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, color="tab:orange", marker=".", label="validation loss")
    values = np.asarray(history.loss + history.val_loss, dtype=float)
    if np.all(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if panels == 2:
        axes[1].plot(epochs, 100 * np.asarray(history.val_accuracy), color="tab:green", marker=".")
        axes[1].set_ylabel("validation accuracy (%)")
    for a in axes:
        if history.best_epoch is not None:
            a.axvline(history.best_epoch, color="gray", linestyle="--", linewidth=1)
        a.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("epoch")
    ax.legend(loc="upper right", fontsize="small")
    fig.savefig(path)
