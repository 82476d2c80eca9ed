#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (warnings are errors) and run the doctests
# of the pages. Run from anywhere, in an environment with the docs extra installed
# (pip install -e ".[docs]"); open docs/_build/html/index.html afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
bash ci/fetch-mathjax.sh
XRNN_BACKEND=numpy python -m sphinx -E -W --keep-going -q -b html docs docs/_build/html || status=$?
XRNN_BACKEND=numpy python -m sphinx -E -W -b doctest docs docs/_build/doctest | tail -n 8 || status=$?
[ "$status" -eq 0 ] && echo "the site is in docs/_build/html (open index.html)"
exit $status
