"""DropConnect on the recurrent weights (Wan et al. 2013; AWD-LSTM's weight drop, Merity et al. 2018).

In training mode each forward pass draws one mask per layer and direction over ``W_hh``
(the same for every step and sequence of the batch), from the layer's generator as the
dropout masks, and runs the recurrence with ``W_hh * mask / (1 - p)``; the masks stay in
the cache, so backward is exact: ``dW_hh = dW_hh_dropped * mask / (1 - p)``. In
evaluation mode the weights are used as they are (their expectation). Being a change of
the weights the loop is given, it runs on every backend and kernel unchanged.
"""

from __future__ import annotations

import numbers
from typing import Any

from .._util.namespaces import convert
from .._util.typing import Array

__all__ = ["WeightDrop", "check_weight_drop"]


def check_weight_drop(weight_drop: Any) -> float:
    """``weight_drop`` as a float in ``[0, 1)``, else a ``ValueError`` that names it."""
    if (
        isinstance(weight_drop, bool)
        or not isinstance(weight_drop, numbers.Real)
        or not 0 <= float(weight_drop) < 1
    ):
        raise ValueError(
            f"weight_drop must be a number in [0, 1), the probability of zeroing a weight of W_hh, "
            f"got {weight_drop!r}"
        )
    return float(weight_drop)


class WeightDrop:
    """The masks of DropConnect on ``weight_hh_l{k}``, for the layer classes (a base)."""

    weight_drop: float = 0.0
    training: bool
    xp: Any
    dtype: Any
    generator: Any

    def _drop_weights(
        self, params: dict[str, Array], device: Any, training: bool | None = None
    ) -> tuple[dict[str, Array], dict[str, Array]]:
        """``params`` with every ``weight_hh`` masked and scaled, and the masks by key (none in eval mode).

        Parameters
        ----------
        params : dict of str to array
            The parameters; ``weight_hh_*`` of shape ``(G*H, H)``.
        device : device
            Where the masks go.
        training : bool, optional
            The mode of this call; None follows :attr:`training`.
        """
        if not (self.training if training is None else training) or self.weight_drop == 0:
            return params, {}
        masks = {}
        for key, w in params.items():
            if key.startswith("weight_hh"):
                keep = self.generator.random(tuple(w.shape)) >= self.weight_drop
                scale = 1.0 / (1.0 - self.weight_drop)  # in the target dtype, as the dropout masks
                masks[key] = convert(keep, xp=self.xp, dtype=self.dtype, device=device) * scale
        return {k: (v * masks[k] if k in masks else v) for k, v in params.items()}, masks

    @staticmethod
    def _undrop_gradients(grads: dict[str, Array], masks: dict[str, Array]) -> dict[str, Array]:
        """The gradients of the unmasked weights: ``dW_hh * mask / (1 - p)`` where masks were drawn."""
        return {k: (g * masks[k] if k in masks else g) for k, g in grads.items()}
