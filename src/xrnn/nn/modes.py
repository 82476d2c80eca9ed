"""What the recurrent layers take beyond their sizes, as torch: bias, dropout, projection, and the mode.

``training`` (True after construction, as ``torch.nn.Module``) switches the dropout between
layers on; :meth:`Modes.eval` switches it off. A call may also name its own mode
(``forward(..., training=False)``) without changing the layer's: the inference paths of
the library (``predict``, the tasks' ``evaluate``, sampling, ``distributed.predict``) do,
so they never apply dropout and are safe to run from several threads at once. The masks
come from the layer's own generator, so a ``seed`` gives the same masks on every backend.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, TypeVar

from .._util.namespaces import convert
from .._util.typing import Array

__all__ = ["Modes", "check_options"]

#: Options of the layer classes that ``repr`` shows when not at their defaults, in this order.
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("nonlinearity", "tanh"),
    ("bias", True),
    ("dropout", 0.0),
    ("proj_size", 0),
    ("weight_drop", 0.0),
    ("reset_after", True),
    ("peepholes", False),
    ("zoneout", 0.0),
)


_Self = TypeVar("_Self", bound="Modes")


def check_options(hidden_size: int, num_layers: int, dropout: Any, proj_size: Any) -> None:
    """Check ``dropout`` and ``proj_size`` as ``torch.nn.RNNBase`` does, with messages that name them.

    Parameters
    ----------
    hidden_size, num_layers : int
        The layer's sizes (already checked).
    dropout : float
        Probability of zeroing an element between layers, in ``[0, 1)``.
    proj_size : int
        Size of the LSTM's projection, ``0 <= proj_size < hidden_size`` (0: none).

    Warns
    -----
    UserWarning
        ``dropout > 0`` with one layer, where it changes nothing (torch warns the same).
    """
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= float(dropout) < 1:
        raise ValueError(
            f"dropout must be a number in [0, 1), the probability of zeroing an element, got {dropout!r}"
        )
    if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or int(proj_size) < 0:
        raise ValueError(f"proj_size must be an int >= 0 (0: no projection), got {proj_size!r}")
    if int(proj_size) >= hidden_size:
        raise ValueError(
            "proj_size must be smaller than hidden_size, "
            f"got proj_size={proj_size}, hidden_size={hidden_size}"
        )
    if float(dropout) > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
            f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
            UserWarning,
            stacklevel=4,
        )


class Modes:
    """Training and evaluation modes, and the dropout masks of the training mode."""

    dropout: float
    training: bool
    xp: Any
    dtype: Any
    generator: Any

    def train(self: _Self, mode: bool = True) -> _Self:
        """Set training mode (dropout between layers on) or, with ``mode=False``, evaluation mode.

        Parameters
        ----------
        mode : bool, default True
            True for training, False for evaluation.

        Returns
        -------
        layer
            The layer itself, as ``torch.nn.Module.train``.
        """
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be True or False, got {mode!r}")
        self.training = mode
        return self

    def eval(self: _Self) -> _Self:
        """Set evaluation mode: no dropout, the output is deterministic (``train(False)``).

        Returns
        -------
        layer
            The layer itself, as ``torch.nn.Module.eval``.
        """
        return self.train(False)

    def _drops(self, training: bool | None) -> bool:
        """Whether a call in mode ``training`` (None: the layer's own) draws dropout masks."""
        if training is not None and not isinstance(training, bool):
            raise TypeError(f"training must be True, False or None (the layer's mode), got {training!r}")
        return (self.training if training is None else training) and self.dropout > 0

    def _dropout_mask(self, shape: tuple[int, ...], device: Any) -> Array:
        """A fresh mask ``keep / (1 - p)`` of ``shape``, drawn only where :meth:`_drops` says so.

        Drawn in float64 on the host from the layer's generator (as the initial values),
        so a seed gives the same masks on every backend and dtype. The booleans go to the
        layer's namespace and dtype and are scaled there: the values of ``keep / (1 - p)``
        converted, without a float64 array of the mask's size (6.7 against 0.4 ms at
        ``(100, 64, 256)``, float32).
        """
        keep = self.generator.random(shape) >= self.dropout
        return convert(keep, xp=self.xp, dtype=self.dtype, device=device) * (1.0 / (1.0 - self.dropout))

    def _options_beyond_defaults(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of the layer options that differ from their defaults, for ``repr``."""
        found = [(name, getattr(self, name, default)) for name, default in _DEFAULTS]
        return [(name, value) for (name, value), (_, default) in zip(found, _DEFAULTS) if value != default]
