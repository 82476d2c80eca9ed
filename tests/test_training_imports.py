"""The array-agnostic training pieces never import NumPy (NumPy stays in data, io, cli and plot)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import xrnn

SRC = pathlib.Path(xrnn.__file__).parent
ARRAY_AGNOSTIC = ["output.py", "losses.py", "optim.py", "sampling.py", "model.py", "train.py", "tasks.py"]


@pytest.mark.parametrize("module", ARRAY_AGNOSTIC)
def test_training_piece_never_imports_numpy(module):
    tree = ast.parse((SRC / module).read_text())
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "numpy"], f"{module} imports NumPy"


def test_importing_xrnn_does_not_import_matplotlib_or_tqdm():
    code = "import sys, xrnn, xrnn.cli; print(sorted(m for m in ('matplotlib', 'tqdm') if m in sys.modules))"
    src = str(SRC.parent)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=src)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
