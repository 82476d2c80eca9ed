"""Losses over sequences, each returning the loss and its gradient with respect to the prediction.

Softmax cross-entropy over classes, averaged over the steps a mask keeps::

    p = softmax(z)          loss = -sum_k m_k log p_k[t_k] / sum_k m_k
    dz_k = m_k (p_k - onehot(t_k)) / sum_k m_k

Positions whose target is ``ignore_index`` (-100, as torch) have ``m_k = 0``.

Mean squared error, averaged over every element (of the positions a mask keeps)::

    loss = mean((y - t)^2)   dy = 2 (y - t) / size

:func:`softmax` itself, public here as :func:`xrnn.softmax`, lives with the activations
(:mod:`xrnn._util.activations`), below the network and the losses that both use it.
"""

from __future__ import annotations

import math
from types import ModuleType

from array_api_compat import device as device_of

from .._util.activations import softmax
from .._util.namespaces import namespace, on_host
from .._util.typing import Array
from .._util.validation import check_dtypes

__all__ = ["mse", "softmax", "softmax_cross_entropy"]


def softmax_cross_entropy(
    logits: Array, targets: Array, mask: Array | None = None, *, ignore_index: int | None = -100
) -> tuple[Array, Array]:
    """Mean cross-entropy of softmax(``logits``) against class indices, and its gradient.

    Parameters
    ----------
    logits : array, shape (..., C)
        Unnormalised scores, e.g. ``(T, N, C)``; real floating dtype.
    targets : integer array, shape (...)
        Class index in ``0..C-1`` at every position, e.g. ``(T, N)``.
    mask : array, shape (...), optional
        Bool (True keeps a position) or real floating weights, e.g. False at padded steps.
        The loss is the weighted mean over positions; all positions count when omitted.
        If every weight is zero the loss and the gradient are zero.
    ignore_index : int or None, default -100
        A target value that marks a position to leave out (weight zero), as torch's
        ``ignore_index``: padded targets. None: every target must be a class.

    Returns
    -------
    loss : array, shape ()
        The mean cross-entropy in nats, dtype of ``logits``.
    dlogits : array, shape (..., C)
        Gradient of ``loss`` with respect to ``logits``; zero at masked positions.

    Raises
    ------
    ValueError
        If a target lies outside ``0..C-1`` (and is not ``ignore_index``), for arrays on
        the host (NumPy, array-api-strict, torch on the CPU). On a device (CuPy, torch on a
        GPU, JAX) reading the check would wait for the device at every call: there an
        out-of-range target makes the loss and its gradient at that position NaN instead.

    Notes
    -----
    ``log softmax`` is computed shifted by each position's maximum, so any finite logits
    give a finite loss.
    """
    xp = namespace(logits=logits, targets=targets, mask=mask)
    check_dtypes(xp, logits=logits)
    if len(logits.shape) == 0:
        raise ValueError("logits must have at least 1 dimension (..., C), got shape ()")
    n_classes = logits.shape[-1]
    if math.prod(logits.shape) == 0:  # a mean over nothing: no loss to report, no step to take
        raise ValueError(
            f"logits must hold at least one position of at least one class (..., C), got shape "
            f"{tuple(logits.shape)}"
        )
    if not xp.isdtype(targets.dtype, "integral"):
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:-1])} (logits' shape without the class axis), "
            f"got shape {tuple(targets.shape)}"
        )
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    weights = _weights(mask, targets.shape, like=logits, xp=xp)  # (...)
    if ignore_index is not None:
        weights = weights * xp.astype(targets != ignore_index, logits.dtype)
    # a position left out (by the mask or ignore_index) may hold any padding value
    outside = ((targets < 0) | (targets >= n_classes)) & (weights != 0)
    if on_host(targets) and bool(xp.any(outside)):  # elsewhere: no wait for the device, a NaN
        also = "" if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(f"targets must lie in 0..{n_classes - 1} (C={n_classes} classes){also}")

    shifted = logits - xp.max(logits, axis=-1, keepdims=True)  # (..., C)
    exp = xp.exp(shifted)
    total = xp.sum(exp, axis=-1, keepdims=True)
    log_probs = shifted - xp.log(total)  # (..., C)
    classes = xp.arange(n_classes, dtype=targets.dtype, device=device_of(targets))
    onehot = xp.astype(targets[..., None] == classes, logits.dtype)  # (..., C)
    count = xp.maximum(xp.sum(weights), xp.asarray(1e-30, dtype=logits.dtype, device=device_of(logits)))
    loss = -xp.sum(weights * xp.sum(onehot * log_probs, axis=-1)) / count
    dlogits = (exp / total - onehot) * (weights / count)[..., None]
    if not on_host(targets):
        nan = xp.asarray(xp.nan, dtype=logits.dtype, device=device_of(logits))
        loss = xp.where(xp.any(outside), nan, loss)
        dlogits = xp.where(outside[..., None], nan, dlogits)
    return loss, dlogits


def mse(prediction: Array, target: Array, mask: Array | None = None) -> tuple[Array, Array]:
    """Mean squared error over every element, and its gradient.

    Parameters
    ----------
    prediction : array, any shape
        Predicted values, e.g. ``(T, N, O)``; real floating dtype.
    target : array, shape like ``prediction``
        True values, same dtype.
    mask : array, shape of leading axes of ``prediction``, optional
        Bool or real floating weights of positions, e.g. ``(T, N)`` False at padded
        steps: the loss is the mean over the elements of the positions kept (weighted).
        If every weight is zero the loss and the gradient are zero.

    Returns
    -------
    loss : array, shape ()
        ``mean((prediction - target)**2)`` over the positions kept.
    dprediction : array, shape like ``prediction``
        Gradient of ``loss`` with respect to ``prediction``; zero at masked positions.
    """
    xp = namespace(prediction=prediction, target=target, mask=mask)
    check_dtypes(xp, prediction=prediction, target=target)
    if tuple(target.shape) != tuple(prediction.shape):
        raise ValueError(
            f"target must have shape {tuple(prediction.shape)} like prediction, "
            f"got shape {tuple(target.shape)}"
        )
    size = math.prod(prediction.shape)
    if size == 0:
        raise ValueError(f"prediction must hold at least one value, got shape {tuple(prediction.shape)}")
    diff = prediction - target
    if mask is None:
        return xp.sum(diff * diff) / size, diff * (2.0 / size)
    ndim = len(mask.shape)
    if ndim > len(prediction.shape):
        raise ValueError(
            f"mask must have the shape of leading axes of prediction {tuple(prediction.shape)}, "
            f"got shape {tuple(mask.shape)}"
        )
    weights = _weights(
        mask, tuple(prediction.shape[:ndim]), like=prediction, xp=xp, name="the leading axes of prediction"
    )
    per_position = math.prod(prediction.shape[ndim:])
    weights = xp.reshape(weights, (*weights.shape, *(1,) * (len(prediction.shape) - ndim)))
    tiny = xp.asarray(1e-30, dtype=prediction.dtype, device=device_of(prediction))
    count = xp.maximum(xp.sum(weights) * per_position, tiny)
    # a position left out reaches nothing, whatever it holds (NaN padding of targets included)
    diff = xp.where(weights != 0, diff, xp.zeros_like(diff))
    return xp.sum(weights * diff * diff) / count, weights * diff * (2.0 / count)


def _weights(
    mask: Array | None, shape: tuple[int, ...], *, like: Array, xp: ModuleType, name: str = "targets"
) -> Array:
    """The mask as weights in ``like``'s dtype (ones when there is no mask)."""
    if mask is None:
        return xp.ones(shape, dtype=like.dtype, device=device_of(like))
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have shape {tuple(shape)} like {name}, got shape {tuple(mask.shape)}")
    if mask.dtype == xp.bool or xp.isdtype(mask.dtype, "real floating"):
        return xp.astype(mask, like.dtype)
    raise TypeError(f"mask must be bool or real floating, got dtype {mask.dtype}")
