"""What :func:`~xrnn.fit` measured: :class:`History`, one entry per epoch, printable and plottable."""

from __future__ import annotations

import dataclasses
import os

__all__ = ["History"]


@dataclasses.dataclass
class History:
    """What :func:`fit` measured, one entry per epoch run.

    Parameters
    ----------
    loss : list of float
        Training loss of each epoch: the mean of its batches' losses, each weighted by
        the positions it counts (for a callable ``loss``, by its sequences).
    val_loss : list of float
        Loss on the validation data after each epoch (empty without validation).
    val_accuracy : list of float
        Fraction of validation positions whose largest output is the target class
        (``loss="cross_entropy"`` only; empty otherwise).
    seconds : list of float
        Wall time of each epoch, validation included.
    best_epoch : int or None
        Epoch (from 1) of the lowest validation loss, whose parameters the model holds
        at the end when ``patience`` is given; None without validation.
    stopped_early : bool
        Whether ``patience`` ended training before ``epochs``.
    metrics : dict of str to list of float
        The ``metrics=`` of :func:`fit` per epoch, under their names (``"mae"``,
        ``"rmse"``, ``"accuracy"``, a function's ``__name__``) for the training batches and
        ``"val_"`` + name for the validation data, as Keras's ``History.history``.
    lr : list of float
        The optimiser's learning rate at the start of each epoch.
    stopped_on_nan : bool
        Whether a loss that was not finite stopped training (``stop_on_nan=True``).
    """

    loss: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_accuracy: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    metrics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    lr: list[float] = dataclasses.field(default_factory=list)
    stopped_on_nan: bool = False

    @property
    def epochs(self) -> list[int]:
        """The epochs run, from 1."""
        return list(range(1, len(self.loss) + 1))

    def __len__(self) -> int:
        return len(self.loss)

    def plot(self, path: str | os.PathLike[str], *, title: str = "Training history") -> None:
        """Write the losses per epoch (and the validation accuracy) as a PNG.

        Parameters
        ----------
        path : str or path
            The PNG file to write.
        title : str, default "Training history"
            Title of the figure.

        Raises
        ------
        xrnn.training.plots.PlottingUnavailable
            If matplotlib is not installed.
        """
        from .plots import plot_history

        plot_history(self, path, title=title)

    def summary(self, epoch: int) -> str:
        """One line of the figures of ``epoch`` (from 1).

        Parameters
        ----------
        epoch : int
            An epoch that was run.

        Returns
        -------
        str
            E.g. ``"loss 0.1234, val_loss 0.2345, val_accuracy 95.0% (1.2 s)"``.
        """
        i = epoch - 1
        parts = [f"loss {self.loss[i]:.4g}"]
        if self.val_loss:
            parts.append(f"val_loss {self.val_loss[i]:.4g}")
        if self.val_accuracy and "val_accuracy" not in self.metrics:
            parts.append(f"val_accuracy {self.val_accuracy[i]:.1%}")
        for name, values in self.metrics.items():
            if len(values) > i:
                shown = f"{values[i]:.1%}" if name.endswith("accuracy") else f"{values[i]:.4g}"
                parts.append(f"{name} {shown}")
        return ", ".join(parts) + f" ({self.seconds[i]:.1f} s)"
