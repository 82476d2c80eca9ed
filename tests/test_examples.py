"""The worked examples of the README and docs/training.rst run as they are printed there."""

from __future__ import annotations

import pathlib
import re
import time

import pytest

from conftest import BACKENDS

ROOT = pathlib.Path(__file__).parents[1]


def readme_example(word):
    """The README's Python code block that mentions ``word``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if word in b]
    return block


def shown_in_the_docs(code):
    """Whether docs/training.rst shows ``code`` as a code block (indented by three spaces)."""
    indented = "".join(("   " + line if line.strip() else "") + "\n" for line in code.splitlines())
    return indented in (ROOT / "docs" / "training.rst").read_text(encoding="utf-8")


def run(code, folder, monkeypatch):
    if "numpy" not in BACKENDS:
        pytest.skip("the examples run on NumPy; the numpy leg runs them once")
    monkeypatch.chdir(folder)
    namespace = {}
    start = time.perf_counter()
    exec(compile(code, "README example", "exec"), namespace)
    print(f"example ran in {time.perf_counter() - start:.1f} s")
    return namespace


def test_the_digits_classifier_reaches_97_percent_test_accuracy(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    code = readme_example("load_digits")
    assert shown_in_the_docs(code) and len(code.splitlines()) < 25
    done = run(code, tmp_path, monkeypatch)
    assert done["accuracy"] >= 0.97
    assert type(done["model"]).__name__ == "SequenceModel" and done["model"].config["bidirectional"]
    assert done["probabilities"].shape == (5, 10)


def test_the_sunspot_regression_beats_the_persistence_forecast(tmp_path, monkeypatch):
    pytest.importorskip("statsmodels")
    code = readme_example("sunspots")
    assert shown_in_the_docs(code) and len(code.splitlines()) < 25
    done = run(code, tmp_path, monkeypatch)
    assert done["mae"] < 0.85 * done["persistence"]
