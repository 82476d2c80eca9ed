"""A dense (fully connected) output layer applied at every time step of a sequence.

For hidden states ``h`` of shape ``(T, N, H)`` (any leading axes)::

    y = h @ W^T + b                    W (O, H), b (O,), y (T, N, O)

Backward, with the rows of every step stacked (``T*N`` rows)::

    dW = dY^T H     db = sum(dY)     dH = dY W

Gradients are sums over all rows, like the recurrent layers'; the loss decides the
normalisation (see :mod:`xrnn.training.losses`). Parameters are named as ``torch.nn.Linear``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import device as device_of

from .._util.namespaces import convert, host_rng, namespace, random_uniform, resolve_dtype, resolve_namespace
from .._util.typing import Array
from .._util.validation import check_dtypes, check_int
from .parameters import Parameters

__all__ = ["Dense", "DenseCache"]


class DenseCache(NamedTuple):
    """What :meth:`Dense.backward` needs from :meth:`Dense.forward`.

    Attributes
    ----------
    h : array, shape (..., in_features)
        The input of the forward pass.
    weight : array, shape (out_features, in_features)
        The weight the forward pass used (to refuse a cache made with other parameters).
    """

    h: Array
    weight: Array


class Dense(Parameters):
    """Affine map ``y = h @ W^T + b`` over the last axis, at every time step.

    Parameters
    ----------
    in_features : int
        Size ``H`` of the last axis of the input.
    out_features : int
        Size ``O`` of the last axis of the output.
    dtype : {None, "float32", "float64"} or dtype, default float32
        Dtype of the parameters.
    device : device, optional
        Device of the parameters (default: the namespace's default device).
    xp : str or module, optional
        Backend name or array namespace of the parameters (default: ``XRNN_BACKEND``).
    seed : int or numpy.random.Generator, optional
        Seed of the initial values, uniform in ``±1/sqrt(in_features)`` as ``torch.nn.Linear``'s.

    Attributes
    ----------
    params : dict of str to array
        ``"weight"`` of shape ``(out_features, in_features)`` and ``"bias"`` of shape
        ``(out_features,)``, the keys of ``torch.nn.Linear.state_dict()``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        dtype: Any = None,
        device: Any = None,
        xp: str | ModuleType | None = None,
        seed: Any = None,
    ) -> None:
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        namespace_ = resolve_namespace(xp)
        dtype_ = resolve_dtype(dtype, namespace_)
        bound = 1.0 / math.sqrt(in_features)
        rng = host_rng(seed)
        self.params: dict[str, Array] = {
            key: random_uniform(shape, bound, seed=rng, xp=namespace_, dtype=dtype_, device=device)
            for key, shape in self.param_shapes().items()
        }

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the parameters.

        Returns
        -------
        dict of str to tuple of int
            ``{"weight": (out_features, in_features), "bias": (out_features,)}``.
        """
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"

    def forward(self, h: Array) -> tuple[Array, DenseCache]:
        """Apply the layer at every step.

        Parameters
        ----------
        h : array, shape (..., in_features)
            Hidden states, typically ``(T, N, H)``; same namespace, device and dtype as
            the parameters.

        Returns
        -------
        y : array, shape (..., out_features)
            ``h @ W^T + b``.
        cache : DenseCache
            Input to :meth:`backward`.
        """
        w, b = self.params["weight"], self.params["bias"]
        xp = namespace(h=h, weight=w)
        check_dtypes(xp, weight=w, h=h)
        self._check_last_axis("h", h, self.in_features, "in_features")
        rows = _rows(h, xp=xp)  # (R, H)
        y = rows @ xp.matrix_transpose(w) + b  # (R, O)
        return xp.reshape(y, (*h.shape[:-1], self.out_features)), DenseCache(h, w)

    def __call__(self, h: Array) -> Array:
        """``y = dense(h)``: :meth:`forward` without the cache, as ``torch.nn.Linear``'s call.

        Parameters
        ----------
        h : array, shape (..., in_features)
            Input features.

        Returns
        -------
        array, shape (..., out_features)
            ``h @ W^T + b``.
        """
        return self.forward(h)[0]

    def backward(self, cache: DenseCache, dy: Array) -> tuple[Array, dict[str, Array]]:
        """Backpropagate through the forward pass that made ``cache``.

        Parameters
        ----------
        cache : DenseCache
            Second result of :meth:`forward` with the current parameters.
        dy : array, shape (..., out_features)
            Gradient of the loss with respect to ``y``.

        Returns
        -------
        dh : array, shape (..., in_features)
            Gradient with respect to ``h``.
        grads : dict of str to array
            ``"weight"`` ``(out_features, in_features)`` and ``"bias"`` ``(out_features,)``,
            summed over all rows.
        """
        if not isinstance(cache, DenseCache):
            raise TypeError(f"cache must be the DenseCache returned by forward, got {type(cache).__name__}")
        if cache.weight is not self.params["weight"]:
            raise ValueError(
                "cache was made with other parameters than the layer holds now: "
                "run forward again after changing the parameters"
            )
        xp = namespace(cached=cache.h, dy=dy)
        check_dtypes(xp, cached=cache.h, dy=dy)
        expected = (*cache.h.shape[:-1], self.out_features)
        if tuple(dy.shape) != expected:
            raise ValueError(f"dy must have shape {expected} like forward's y, got shape {tuple(dy.shape)}")
        dy_rows = _rows(dy, xp=xp)  # (R, O)
        grads = {
            "weight": xp.matrix_transpose(dy_rows) @ _rows(cache.h, xp=xp),  # (O, H)
            "bias": xp.sum(dy_rows, axis=0),  # (O,)
        }
        dh = xp.reshape(dy_rows @ self.params["weight"], cache.h.shape)
        return dh, grads

    def state_dict(self) -> dict[str, Array]:
        """The parameters under ``torch.nn.Linear``'s keys.

        Returns
        -------
        dict of str to array
            ``{"weight": (out_features, in_features), "bias": (out_features,)}``, a new dict
            of the parameter arrays (not copies), ready for ``Linear.load_state_dict``
            after conversion to tensors.
        """
        return dict(self.params)

    @classmethod
    def from_state_dict(
        cls,
        sd: Mapping[str, Any],
        *,
        xp: str | ModuleType | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> Dense:
        """Build a layer from a ``torch.nn.Linear``-style state dict.

        Parameters
        ----------
        sd : mapping of str to array
            ``"weight"`` ``(out_features, in_features)`` and ``"bias"`` ``(out_features,)``;
            values of any namespace (torch tensors included).
        xp : str or module, optional
            Target namespace (default: ``XRNN_BACKEND``).
        dtype : dtype, optional
            Target dtype (default: that of the values).
        device : device, optional
            Target device.

        Returns
        -------
        Dense
            A layer holding copies of the values.
        """
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        if set(sd) != {"weight", "bias"}:
            raise ValueError(f"state_dict must hold exactly 'weight' and 'bias', got keys {sorted(sd)}")
        weight, bias = sd["weight"], sd["bias"]
        if len(weight.shape) != 2:
            raise ValueError(
                "state_dict['weight'] must be 2-d (out_features, in_features), "
                f"got shape {tuple(weight.shape)}"
            )
        out_features, in_features = (int(v) for v in weight.shape)
        if tuple(bias.shape) != (out_features,):
            raise ValueError(
                f"state_dict['bias'] must have shape ({out_features},) like weight's first axis, "
                f"got {tuple(bias.shape)}"
            )
        source_dtype = str(weight.dtype).rsplit(".", 1)[-1]
        namespace_ = resolve_namespace(xp)
        dtype_ = resolve_dtype(source_dtype if dtype is None else dtype, namespace_)
        layer = cls(in_features, out_features, dtype=dtype_, device=device, xp=namespace_, seed=0)
        layer.params = {
            k: convert(sd[k], xp=namespace_, dtype=dtype_, device=device) for k in ("weight", "bias")
        }
        return layer

    @staticmethod
    def _check_last_axis(name: str, a: Array, size: int, meaning: str) -> None:
        shape = tuple(a.shape)
        if len(shape) == 0 or shape[-1] != size:
            raise ValueError(f"{name} must have shape (..., {size}) with {meaning}={size}, got shape {shape}")

    @property
    def device(self) -> Any:
        """Device of the parameters."""
        return device_of(self.params["weight"])


def _rows(a: Array, *, xp: ModuleType) -> Array:
    """``a (..., F)`` as a matrix ``(R, F)`` with every leading index a row."""
    return xp.reshape(a, (math.prod(a.shape[:-1]), a.shape[-1]))
