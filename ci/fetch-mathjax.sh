#!/usr/bin/env bash
# Put MathJax 3 (tex-svg.js, from the npm registry) into docs/_static/mathjax so the built
# pages render their equations without reaching a CDN. Best effort: without npm the docs
# fall back to the CDN address.
set -uo pipefail
cd "$(dirname "$0")/.."
target=docs/_static/mathjax/tex-svg.js
[ -f "$target" ] && exit 0
command -v npm >/dev/null || { echo "npm not found: the docs will load MathJax from its CDN"; exit 0; }
tmp=$(mktemp -d)
if (cd "$tmp" && npm pack --silent mathjax@3 >/dev/null 2>&1 && tar xzf mathjax-*.tgz); then
  mkdir -p "$(dirname "$target")" && cp "$tmp/package/es5/tex-svg.js" "$target"
else
  echo "could not fetch MathJax: the docs will load it from its CDN"
fi
rm -rf "$tmp"
