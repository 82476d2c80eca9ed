"""What the optimisers and ``fit`` keep is their own: detached arrays, copies, complete states.

- :func:`detached`: the arrays of a dict outside any autograd graph (torch tensors that
  require a gradient are detached), so an optimiser's update never builds a graph.
- :func:`copied`: new arrays with the values of a dict's arrays, which no later update in
  place can change (the best parameters of early stopping).
- :func:`state_problem`: what is wrong with an optimiser's state for parameters of given
  keys, namespace and dtype: a slot that holds another model's keys (another model, or
  the model's inner layer, whose keys lack the ``rnn.`` prefix), a slot filled for some
  keys but not all, or arrays of another namespace or dtype than the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from array_api_compat import array_namespace, is_torch_array

from .._util.typing import Array

__all__ = ["copied", "detached", "filled_slots", "state_problem"]


def detached(arrays: Mapping[str, Array]) -> dict[str, Array]:
    """``arrays`` with every torch tensor that requires a gradient detached (others as given).

    Parameters
    ----------
    arrays : dict of str to array
        Any shapes.

    Returns
    -------
    dict of str to array
    """
    return {k: a.detach() if is_torch_array(a) and a.requires_grad else a for k, a in arrays.items()}


def copied(arrays: Mapping[str, Array]) -> dict[str, Array]:
    """New arrays with the values of ``arrays``, detached (torch) and never views.

    Parameters
    ----------
    arrays : dict of str to array
        Any shapes, any namespaces.

    Returns
    -------
    dict of str to array
    """
    return {k: array_namespace(a).asarray(a, copy=True) for k, a in detached(arrays).items()}


def filled_slots(optimizer: Any) -> tuple[str, ...]:
    """The slots of ``optimizer``'s state that every step fills for every parameter.

    Parameters
    ----------
    optimizer : SGD or Adam
        An optimiser of :mod:`xrnn.training.optim`.

    Returns
    -------
    tuple of str
        Adam's ``m`` and ``v``; SGD's ``velocity`` when it has momentum, else none.
    """
    if optimizer.name == "sgd":
        return ("velocity",) if optimizer.momentum else ()
    return tuple(optimizer.slots)


def state_problem(optimizer: Any, params: Mapping[str, Any]) -> str | None:
    """What makes ``optimizer``'s state unfit for ``params``, in words; None if nothing.

    Parameters
    ----------
    optimizer : SGD or Adam
        The optimiser, with its ``state``.
    params : dict of str to array
        The parameters it is to update.

    Returns
    -------
    str or None
        A sentence naming the slot and the keys, or the key and the dtype or namespace.
    """
    keys = set(params)
    step = optimizer.state["step"]
    for slot in optimizer.slots:
        held = set(optimizer.state[slot])
        if held - keys:
            return (
                f"its state {slot!r} holds key(s) {sorted(held - keys)[:4]} that the model does not "
                f"have (the model's keys are {sorted(keys)[:4]}...): it is the state of another model"
            )
        must = slot in filled_slots(optimizer) and step > 0
        if (held and held != keys) or (must and not held):
            return (
                f"its state {slot!r} holds {len(held)} of the model's {len(keys)} parameters at step "
                f"{step} (missing {sorted(keys - held)[:4]}): a partial state"
            )
        for key in sorted(held):
            a, p = optimizer.state[slot][key], params[key]
            if array_namespace(a) is not array_namespace(p) or a.dtype != p.dtype:
                return (
                    f"its state {slot}[{key!r}] is {array_namespace(a).__name__} {a.dtype} but the "
                    f"parameter is {array_namespace(p).__name__} {p.dtype}"
                )
            if tuple(a.shape) != tuple(p.shape):
                return (
                    f"its state {slot}[{key!r}] has shape {tuple(a.shape)} but the parameter has "
                    f"{tuple(p.shape)}: it is the state of another model"
                )
    return None
