"""Optimisers and gradient clipping over a dict of parameters of any namespace.

Nothing is updated in place (JAX arrays are immutable): :meth:`SGD.step` and
:meth:`Adam.step` return a new dict of new arrays, and keep their own state as new arrays.

SGD with momentum ``mu`` (``torch.optim.SGD`` without dampening)::

    v = mu * v + g        (v = g at the first step)
    p = p - lr * v

Adam (Kingma & Ba 2015, the bias-corrected form of ``torch.optim.Adam``), step ``t = 1, 2, ...``::

    m = b1 * m + (1 - b1) * g          v = b2 * v + (1 - b2) * g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._util.namespaces import namespace
from .._util.typing import Array
from .state_checks import detached, state_problem

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm"]

Params = Mapping[str, Array]


def clip_grad_norm(grads: Params, max_norm: float) -> tuple[dict[str, Array], Array]:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    grads : dict of str to array
        Gradients of any shapes, one namespace and device.
    max_norm : float
        Largest allowed norm, positive.

    Returns
    -------
    clipped : dict of str to array
        New arrays, shapes like ``grads``: ``grads * min(1, max_norm / (norm + 1e-6))``
        (the rule of ``torch.nn.utils.clip_grad_norm_``).
    norm : array, shape ()
        The global norm ``sqrt(sum_k sum(g_k^2))`` before clipping.
    """
    xp = _namespace_of("grads", grads)
    if not (isinstance(max_norm, (int, float)) and not isinstance(max_norm, bool) and max_norm > 0):
        raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
    norm = xp.sqrt(sum(xp.sum(g * g) for g in grads.values()))
    scale = xp.minimum(max_norm / (norm + 1e-6), xp.ones_like(norm))
    return {key: g * scale for key, g in grads.items()}, norm


class Optimizer:
    """Base of the optimisers: a step counter and per-parameter state arrays.

    A subclass sets :attr:`name` and :attr:`slots` (the names of its per-parameter state,
    each a dict of arrays keyed like the parameters) and defines :meth:`hyperparameters`
    and ``_update``; checking the arguments of :meth:`step` and the checkpoint format of
    the state are here, once.

    Attributes
    ----------
    state : dict
        ``{"step": int, slot: {key: array}, ...}``, empty slots before the first step.
    """

    name = ""
    slots: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"step": 0, **{slot: {} for slot in self.slots}}

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            Keyword arguments that rebuild this optimiser.
        """
        raise NotImplementedError

    def step(self, params: Params, grads: Params) -> dict[str, Array]:
        """One update.

        Parameters
        ----------
        params : dict of str to array
            Current parameters, any shapes, one namespace and device.
        grads : dict of str to array
            Their gradients, same keys and shapes.

        Returns
        -------
        dict of str to array
            The updated parameters, new arrays under the same keys (torch tensors are
            detached first: no update builds an autograd graph).

        Raises
        ------
        ValueError
            If the state does not fit ``params``: another model's keys, a slot filled for
            some keys only, or arrays of another namespace, dtype or shape.
        """
        xp = _check_pair(params, grads)
        params, grads = detached(params), detached(grads)  # never an autograd graph (torch)
        problem = state_problem(self, params)
        if problem is not None:
            raise ValueError(f"optimizer cannot update these params: {problem}")
        return self._update(params, grads, xp=xp)

    def _update(self, params: Params, grads: Params, *, xp: ModuleType) -> dict[str, Array]:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, Array]:
        """The state's arrays under flat names, for checkpoints.

        Returns
        -------
        dict of str to array
            ``"<slot>.<key>"`` for each slot and parameter key (empty before the first step).
        """
        return {f"{slot}.{key}": a for slot in self.slots for key, a in self.state[slot].items()}

    def load_state(self, step: int, arrays: Mapping[str, Array]) -> None:
        """Restore the state written by :meth:`state_arrays`.

        Parameters
        ----------
        step : int
            Number of steps taken.
        arrays : dict of str to array
            As returned by :meth:`state_arrays`.
        """
        slots = _unflatten(detached(arrays), self.slots)
        held = {slot: set(part) for slot, part in slots.items() if part}
        if len({frozenset(keys) for keys in held.values()}) > 1:
            sizes = {slot: len(keys) for slot, keys in held.items()}
            raise ValueError(f"optimizer state is partial: its slots hold different keys ({sizes} arrays)")
        self.state = {"step": int(step), **slots}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    Parameters
    ----------
    lr : float
        Learning rate, positive.
    momentum : float, default 0.0
        Momentum factor ``mu`` in ``[0, 1)``.

    Attributes
    ----------
    state : dict
        ``{"step": int, "velocity": {key: array}}``, empty velocity before the first step
        or without momentum.
    """

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        _check_positive("lr", lr)
        _check_unit("momentum", momentum)
        self.lr, self.momentum = float(lr), float(momentum)
        super().__init__()

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict of str to float
            ``{"lr": ..., "momentum": ...}``.
        """
        return {"lr": self.lr, "momentum": self.momentum}

    def _update(self, params: Params, grads: Params, *, xp: ModuleType) -> dict[str, Array]:
        velocity: dict[str, Array] = {}
        if self.momentum:
            old = self.state["velocity"]
            velocity = {k: g if k not in old else self.momentum * old[k] + g for k, g in grads.items()}
        direction = velocity or grads
        self.state = {"step": self.state["step"] + 1, "velocity": velocity}
        return {k: p - self.lr * direction[k] for k, p in params.items()}


class Adam(Optimizer):
    """Adam with bias correction, ``eps`` outside the square root (as ``torch.optim.Adam``).

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, positive.
    betas : tuple of float, default (0.9, 0.999)
        Decay rates ``b1, b2`` of the first and second moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to ``sqrt(v_hat)`` in the denominator, positive.

    Attributes
    ----------
    state : dict
        ``{"step": t, "m": {key: array}, "v": {key: array}}``; ``t`` sets the bias correction.
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(
        self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        _check_positive("lr", lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair (b1, b2), got {betas!r}")
        _check_unit("betas[0]", betas[0])
        _check_unit("betas[1]", betas[1])
        _check_positive("eps", eps)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        super().__init__()

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"lr": ..., "betas": [b1, b2], "eps": ...}``.
        """
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps}

    def _update(self, params: Params, grads: Params, *, xp: ModuleType) -> dict[str, Array]:
        b1, b2 = self.betas
        t = self.state["step"] + 1
        m_old, v_old = self.state["m"], self.state["v"]
        m = {
            k: (1.0 - b1) * g if k not in m_old else b1 * m_old[k] + (1.0 - b1) * g for k, g in grads.items()
        }
        v = {
            k: (1.0 - b2) * g * g if k not in v_old else b2 * v_old[k] + (1.0 - b2) * g * g
            for k, g in grads.items()
        }
        correction1, correction2 = 1.0 - b1**t, 1.0 - b2**t
        self.state = {"step": t, "m": m, "v": v}
        return {
            k: p - self.lr * (m[k] / correction1) / (xp.sqrt(v[k] / correction2) + self.eps)
            for k, p in params.items()
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    Each step first shrinks every parameter, ``p = p * (1 - lr * weight_decay)``, then takes
    :class:`Adam`'s step; the decay never enters the moment estimates.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, positive.
    betas : tuple of float, default (0.9, 0.999)
        Decay rates of the moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to ``sqrt(v_hat)`` in the denominator, positive.
    weight_decay : float, default 0.01
        Decay per unit of learning rate, ``>= 0`` (torch's default).

    Attributes
    ----------
    state : dict
        As :class:`Adam`'s.
    """

    name = "adamw"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, (int, float))
            or not (0 <= weight_decay < math.inf)
        ):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        super().__init__(lr, betas, eps)
        self.weight_decay = float(weight_decay)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"lr": ..., "betas": [b1, b2], "eps": ..., "weight_decay": ...}``.
        """
        return super().hyperparameters() | {"weight_decay": self.weight_decay}

    def _update(self, params: Params, grads: Params, *, xp: ModuleType) -> dict[str, Array]:
        shrink = 1.0 - self.lr * self.weight_decay
        return super()._update({k: p * shrink for k, p in params.items()}, grads, xp=xp)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def _namespace_of(name: str, arrays: Params) -> ModuleType:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"{name} must be a dict of arrays, got {type(arrays).__name__}")
    if not arrays:
        raise ValueError(f"{name} must hold at least one array, got an empty dict")
    return namespace(**{f"{name}[{key!r}]": a for key, a in arrays.items()})


def _check_pair(params: Params, grads: Params) -> ModuleType:
    """Check that ``grads`` matches ``params`` key for key and shape for shape; return the namespace."""
    xp = _namespace_of("params", params)
    if not isinstance(grads, Mapping):
        raise TypeError(f"grads must be a dict of arrays, got {type(grads).__name__}")
    if set(grads) != set(params):
        raise ValueError(f"grads must have the keys of params {sorted(params)}, got {sorted(grads)}")
    both = {f"params[{k!r}]": p for k, p in params.items()} | {f"grads[{k!r}]": g for k, g in grads.items()}
    namespace(**both)
    for key, p in params.items():
        if tuple(grads[key].shape) != tuple(p.shape):
            raise ValueError(
                f"grads[{key!r}] must have shape {tuple(p.shape)} like params[{key!r}], "
                f"got shape {tuple(grads[key].shape)}"
            )
    return xp


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _unflatten(arrays: Mapping[str, Array], parts: tuple[str, ...]) -> dict[str, dict[str, Array]]:
    """Split ``{"m.key": a}`` into ``{"m": {"key": a}}``, refusing unknown prefixes."""
    out: dict[str, dict[str, Array]] = {part: {} for part in parts}
    for name, a in arrays.items():
        part, sep, key = name.partition(".")
        if not sep or part not in out:
            raise ValueError(
                f"optimizer state has an unexpected entry {name!r}; expected names like "
                + ", ".join(f"'{p}.<param>'" for p in parts)
            )
        out[part][key] = a
    return out
