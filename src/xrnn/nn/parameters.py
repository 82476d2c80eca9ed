"""``params``, ``param_shapes`` and ``set_params``, alike on every layer, cell layer and model.

After training elsewhere (a JAX or torch loop over ``apply``), the new values go back with
``layer.set_params(new)``, as into :meth:`xrnn.SequenceModel.set_params`: the keys and
shapes are checked, so that a dict of the wrong layer or of a stale copy is an error, not
untrained weights kept silently.
"""

from __future__ import annotations

from collections.abc import Mapping

from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .._util.typing import Array
from . import inference
from .ownership import owned

__all__ = ["Parameters"]


class Parameters:
    """What a layer with a ``params`` dict offers around it (a base of the layer classes)."""

    params: dict[str, Array]

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every parameter under its key.

        Returns
        -------
        dict of str to tuple of int
            The keys of :attr:`params` (those of the matching ``torch.nn`` module).
        """
        return self._param_shapes()

    def set_params(self, params: Mapping[str, Array]) -> None:
        """Replace every parameter (e.g. with an optimiser's result, or values trained by JAX).

        Parameters
        ----------
        params : dict of str to array
            Exactly the keys of :attr:`params`, each of its shape, in the layer's namespace,
            dtype and device (a torch tensor that requires a gradient is detached).
        """
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        shapes = self.param_shapes()
        if set(params) != set(shapes):
            missing, unexpected = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
            raise ValueError(
                f"params must have the keys of this {type(self).__name__}; "
                f"missing {missing[:8]}, unexpected {unexpected[:8]}"
            )
        first = self.params[next(iter(shapes))]
        xp, device = array_namespace(first), device_of(first)
        checked = {}
        for key, shape in shapes.items():  # the model's own checks: namespace, dtype, device, detached
            value = owned(f"params[{key!r}]", params[key], xp=xp, dtype=first.dtype, device=device)
            if tuple(value.shape) != shape:
                raise ValueError(f"params[{key!r}] must have shape {shape}, got {tuple(value.shape)}")
            checked[key] = value
        self.params = checked
        inference.forget(self)  # prepared weights: made again on use, even of the same arrays
