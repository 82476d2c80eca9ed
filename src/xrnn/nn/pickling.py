"""Pickling and copying objects that hold an array namespace: the namespace goes by its name.

A module object cannot be pickled (``TypeError: cannot pickle 'module' object``), and
``copy.deepcopy`` pickles. A layer or cell layer keeps its namespace as ``self.xp``;
:class:`NamespaceByName` stores it as the backend's name (``"torch"``, ``"jax"``, ... of
:data:`~xrnn._util.namespaces.BACKENDS`, or the module's import name for any other
namespace) and resolves it again when the object is loaded, so that best-model
snapshots, ``torch.save``, joblib and multiprocessing take xrnn's objects. The arrays
pickle as their own library pickles them (a torch tensor as a tensor, a JAX array as a
JAX array).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from .._util.namespaces import BACKENDS, resolve_namespace

__all__ = ["NamespaceByName", "namespace_name"]


def namespace_name(xp: ModuleType) -> str:
    """The backend name of namespace ``xp``, else its import name.

    Parameters
    ----------
    xp : module
        An array namespace.

    Returns
    -------
    str
        A key of ``BACKENDS`` (for the namespaces xrnn resolves itself), else
        ``xp.__name__``.
    """
    return next((name for name, module in BACKENDS.items() if module == xp.__name__), xp.__name__)


def _namespace_named(name: str) -> ModuleType:
    return resolve_namespace(name) if name in BACKENDS else importlib.import_module(name)


class NamespaceByName:
    """Mixin: pickles and deep-copies the attribute ``xp`` (a module) by its name."""

    xp: ModuleType

    def __getstate__(self) -> dict[str, Any]:
        """The instance's attributes, with the namespace as its name."""
        state = dict(self.__dict__)
        if isinstance(state.get("xp"), ModuleType):
            state["xp"] = namespace_name(state["xp"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the attributes, the namespace imported again from its name."""
        state = dict(state)
        if isinstance(state.get("xp"), str):
            state["xp"] = _namespace_named(state["xp"])
        self.__dict__.update(state)
