"""Importing xrnn stays light: no plotting or progress-bar library until the command needs it.

Which modules may import NumPy is one rule with an allow-list, in tests/test_backends.py.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import xrnn

SRC = pathlib.Path(xrnn.__file__).parent


def test_importing_xrnn_does_not_import_matplotlib_or_tqdm():
    code = "import sys, xrnn, xrnn.cli; print(sorted(m for m in ('matplotlib', 'tqdm') if m in sys.modules))"
    src = str(SRC.parent)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=src)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
