"""Sphinx configuration of the xrnn documentation."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src")))
os.environ.setdefault("XRNN_BACKEND", "numpy")

import xrnn  # noqa: E402

project = "xrnn"
author = "the xrnn developers"
copyright = "2026, the xrnn developers"
release = version = xrnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = {"PR01", "PR02", "RT01", "GL08"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.count$", r"\.index$"}
# the torch modules' methods inherited from torch.nn.Module keep torch's own docstrings
numpydoc_validation_exclude |= {
    r"^xrnn\.torch\.\w+\.(?!forward$|reset_parameters$|flatten_parameters$|extra_repr$)"
}
nitpicky = False

# Inventories are kept in the repository (docs/_inv, made by docs/_inv/make.py): the build
# machines reach no documentation site, and the links still point at the real pages.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inv/python.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "_inv/numpy.inv"),
    "cupy": ("https://docs.cupy.dev/en/stable/", "_inv/cupy.inv"),
    "array-api": ("https://data-apis.org/array-api/latest/", "_inv/array-api.inv"),
}

doctest_global_setup = """
import numpy as np
import xrnn
"""

html_theme = "pydata_sphinx_theme"
html_title = "xrnn"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = ["_static"]
html_css_files = ["width.css"]  # a column wide enough for the code blocks and the equations
html_sidebars = {"**": []}  # no left column: the pages are one level deep (the top bar lists them)
# MathJax from a local copy when ci/fetch-mathjax.sh has put one there (pages then render
# their equations offline); otherwise Sphinx's default CDN address.
if os.path.exists(os.path.join(os.path.dirname(__file__), "_static", "mathjax", "tex-svg.js")):
    mathjax_path = "mathjax/tex-svg.js"
myst_enable_extensions = ["dollarmath"]
