"""Every public name has a numpydoc docstring and a page in the API reference."""

from __future__ import annotations

import inspect
import pathlib

import pytest

import xrnn
from xrnn import classic

API_PAGE = pathlib.Path(__file__).parents[1] / "docs" / "api.rst"
PUBLIC = [(f"xrnn.{n}", getattr(xrnn, n)) for n in xrnn.__all__ if n != "BACKENDS"]
PUBLIC += [(f"xrnn.classic.{n}", getattr(classic, n)) for n in classic.__all__]
METHODS = [
    (f"xrnn.{cls.__name__}.{m}", getattr(cls, m))
    for cls in (xrnn.RNN, xrnn.LSTM, xrnn.GRU)
    for m in ("forward", "backward", "from_state_dict", "state_dict")
]


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_name_is_listed_in_the_api_reference(name, obj):
    assert name in API_PAGE.read_text()


@pytest.mark.parametrize("name,obj", PUBLIC + METHODS, ids=[n for n, _ in PUBLIC + METHODS])
def test_public_callable_documents_its_parameters_and_returns(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    if inspect.isclass(obj):
        params = [p for p in inspect.signature(obj.__init__).parameters if p != "self"]
    for p in params:
        assert f"{p} :" in doc or f"**{p}" in doc or f"{p}," in doc, f"{name} does not document {p}"
    if not inspect.isclass(obj):
        assert "Returns\n-------" in doc or "Yields\n------" in doc, f"{name} has no Returns section"
