"""Losses over sequences, each returning the loss and its gradient with respect to the prediction.

Softmax cross-entropy over classes, averaged over the steps a mask keeps::

    p = softmax(z)          loss = -sum_k m_k log p_k[t_k] / sum_k m_k
    dz_k = m_k (p_k - onehot(t_k)) / sum_k m_k

Mean squared error, averaged over every element::

    loss = mean((y - t)^2)   dy = 2 (y - t) / size
"""

from __future__ import annotations

import math
from types import ModuleType

from array_api_compat import device as device_of

from ._backend import namespace, on_host
from ._typing import Array
from ._validation import check_dtypes

__all__ = ["mse", "softmax_cross_entropy"]


def softmax_cross_entropy(logits: Array, targets: Array, mask: Array | None = None) -> tuple[Array, Array]:
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

    Returns
    -------
    loss : array, shape ()
        The mean cross-entropy in nats, dtype of ``logits``.
    dlogits : array, shape (..., C)
        Gradient of ``loss`` with respect to ``logits``; zero at masked positions.

    Raises
    ------
    ValueError
        If a target lies outside ``0..C-1``, for arrays on the host (NumPy, array-api-strict,
        torch on the CPU). On a device (CuPy, torch on a GPU, JAX) reading the check would
        wait for the device at every call: there an out-of-range target makes the loss and
        its gradient at that position NaN instead.

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
    if not xp.isdtype(targets.dtype, "integral"):
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:-1])} (logits' shape without the class axis), "
            f"got shape {tuple(targets.shape)}"
        )
    out_of_range = (targets < 0) | (targets >= n_classes)
    if on_host(targets) and bool(xp.any(out_of_range)):  # elsewhere: no wait for the device, a NaN
        raise ValueError(f"targets must lie in 0..{n_classes - 1} (C={n_classes} classes)")
    weights = _weights(mask, targets.shape, like=logits, xp=xp)  # (...)

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
        loss = xp.where(xp.any(out_of_range), nan, loss)
        dlogits = xp.where(out_of_range[..., None], nan, dlogits)
    return loss, dlogits


def mse(prediction: Array, target: Array) -> tuple[Array, Array]:
    """Mean squared error over every element, and its gradient.

    Parameters
    ----------
    prediction : array, any shape
        Predicted values; real floating dtype.
    target : array, shape like ``prediction``
        True values, same dtype.

    Returns
    -------
    loss : array, shape ()
        ``mean((prediction - target)**2)``.
    dprediction : array, shape like ``prediction``
        Gradient of ``loss`` with respect to ``prediction``.
    """
    xp = namespace(prediction=prediction, target=target)
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
    return xp.sum(diff * diff) / size, diff * (2.0 / size)


def _weights(mask: Array | None, shape: tuple[int, ...], *, like: Array, xp: ModuleType) -> Array:
    """The mask as weights in ``like``'s dtype (ones when there is no mask)."""
    if mask is None:
        return xp.ones(shape, dtype=like.dtype, device=device_of(like))
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have shape {tuple(shape)} like targets, got shape {tuple(mask.shape)}")
    if mask.dtype == xp.bool or xp.isdtype(mask.dtype, "real floating"):
        return xp.astype(mask, like.dtype)
    raise TypeError(f"mask must be bool or real floating, got dtype {mask.dtype}")
