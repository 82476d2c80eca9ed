"""Every public name has a numpydoc docstring and a page in the API reference."""

from __future__ import annotations

import inspect
import pathlib

import pytest

import xrnn
from xrnn import classic, distributed

API_PAGE = pathlib.Path(__file__).parents[1] / "docs" / "api.rst"
PUBLIC = [(f"xrnn.{n}", getattr(xrnn, n)) for n in xrnn.__all__ if n != "BACKENDS"]
PUBLIC += [(f"xrnn.classic.{n}", getattr(classic, n)) for n in classic.__all__]
PUBLIC += [(f"xrnn.distributed.{n}", getattr(distributed, n)) for n in distributed.__all__]
METHODS = [
    (f"xrnn.{cls.__name__}.{m}", getattr(cls, m))
    for cls in (xrnn.RNN, xrnn.LSTM, xrnn.GRU)
    for m in ("forward", "backward", "apply", "from_state_dict", "state_dict")
]


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_name_is_listed_in_the_api_reference(name, obj):
    assert name in API_PAGE.read_text()


def _documented_names(doc: str) -> set[str]:
    """Names of the parameter entries of a numpydoc docstring ("x : type" or "x, y, z")."""
    names: set[str] = set()
    for line in doc.splitlines():
        if line and not line.startswith(" "):
            head = line.split(" : ")[0]
            names |= {part.strip().lstrip("*") for part in head.split(",")}
    return names


@pytest.mark.parametrize("name,obj", PUBLIC + METHODS, ids=[n for n, _ in PUBLIC + METHODS])
def test_public_callable_documents_its_parameters_and_returns(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    if inspect.isclass(obj) and issubclass(obj, Exception):
        return
    signature = inspect.signature(obj)
    params = [p for p in signature.parameters if p not in ("self", "cls")]
    missing = set(params) - _documented_names(doc)
    assert not missing, f"{name} does not document {sorted(missing)}"
    returns_something = signature.return_annotation not in (None, "None")
    if not inspect.isclass(obj) and returns_something:
        assert "Returns\n-------" in doc or "Yields\n------" in doc, f"{name} has no Returns section"
