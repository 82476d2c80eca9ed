"""The worked example of docs/deploy.rst runs as printed: train on digits, export, serve in ONNX Runtime."""

from __future__ import annotations

import doctest
import pathlib

import pytest

from conftest import BACKENDS

PAGE = pathlib.Path(__file__).parents[1] / "docs" / "deploy.rst"


def test_the_deploy_page_example_runs_and_onnxruntime_agrees_with_predict():
    pytest.importorskip("sklearn")
    pytest.importorskip("onnxruntime")
    if "numpy" not in BACKENDS:
        pytest.skip("the example runs on NumPy; the numpy leg runs it once")
    result = doctest.testfile(str(PAGE), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 20 and result.failed == 0
