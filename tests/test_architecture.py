"""The layout of the package: imports run one way, from the command down to the helpers, with no cycles.

The rule (docs/architecture.rst): every module belongs to one package of ``ORDER``, and may
import modules of its own package and of packages below it, never above. Imports are read
from the source with ``ast``, at module level and inside functions alike (an import inside a
function runs as surely as one at the top, only later), ``if TYPE_CHECKING:`` blocks included.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Mapping

import pytest

import xrnn

SRC = pathlib.Path(xrnn.__file__).parent

#: The packages of xrnn, lowest first: each may import those before it.
ORDER = (
    "_util",
    "cells",
    "engine",
    "backends",
    "nn",
    "classic",
    "torch",
    "training",
    "data",
    "io",
    "distributed",
    "cli",
)
#: Modules at the top (``xrnn`` itself, ``python -m xrnn``) re-export or start; they may import anything.
TOP = "<top>"
MAX_LINES = 400


def modules(root: pathlib.Path = SRC) -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("xrnn",) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph(mods: Mapping[str, pathlib.Path]) -> dict[str, set[str]]:
    """Module -> the modules of xrnn it imports (at module level or in a function)."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                wanted = [
                    f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names
                ]
            else:
                continue
            for target in wanted:
                while target not in mods and "." in target:
                    target = target.rpartition(".")[0]
                # a module's own ancestors run before it anyway: not an edge
                if target in mods and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def package_of(module: str) -> str:
    """The package of ``ORDER`` that holds ``module``, or ``TOP``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__", "__init__"):
        return TOP
    return parts[1]


def back_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import against ``ORDER``, and each module outside the packages of ``ORDER``."""
    rank = {p: i for i, p in enumerate(ORDER)} | {TOP: len(ORDER)}
    found = []
    for module, targets in graph.items():
        source = package_of(module)
        if source not in rank:
            found.append(f"{module} is in no package of the layout (one of {ORDER})")
            continue
        for target in sorted(targets):
            if rank.get(package_of(target), len(ORDER)) > rank[source]:
                found.append(f"{module} ({source}) imports {target} ({package_of(target)}), above it")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


GRAPH = import_graph(modules())


def test_the_package_has_no_import_cycle():
    assert cycles(GRAPH) == []


def test_imports_run_from_the_command_down_to_the_helpers():
    assert back_imports(GRAPH) == []


def test_every_package_of_the_layout_exists_and_says_what_it_holds():
    for package in ORDER:
        init = SRC / package / "__init__.py"
        assert init.is_file(), f"xrnn.{package} is missing"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 20, f"xrnn.{package} has no paragraph saying what it holds"


def test_nothing_private_sits_at_the_top_level_but_the_helpers():
    private = [p.name for p in SRC.iterdir() if p.name.startswith("_") and not p.name.startswith("__")]
    assert private == ["_util"]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_module_is_longer_than_the_limit(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_LINES
    # split, never squeezed into long lines (a type checker's trailing pragma aside)
    code = [line.split("  # type: ignore")[0] for line in lines]
    assert max(map(len, code), default=0) <= 110


# The checks themselves, on synthetic graphs: they must see what they are meant to see.


def test_a_back_import_from_the_engine_to_the_layers_is_reported():
    graph = {"xrnn.engine.scan": {"xrnn.nn.layers", "xrnn.cells.lstm"}, "xrnn.nn.layers": set()}
    assert back_imports(graph) == ["xrnn.engine.scan (engine) imports xrnn.nn.layers (nn), above it"]


def test_a_backend_that_imports_a_layer_is_reported():
    graph = {"xrnn.backends.jax.apply": {"xrnn.nn.recurrent"}}
    assert len(back_imports(graph)) == 1


def test_a_module_outside_the_layout_is_reported():
    assert back_imports({"xrnn.helpers.misc": set()}) == [
        f"xrnn.helpers.misc is in no package of the layout (one of {ORDER})"
    ]


def test_a_cycle_within_one_package_is_reported():
    graph = {"xrnn.nn.a": {"xrnn.nn.b"}, "xrnn.nn.b": {"xrnn.nn.c"}, "xrnn.nn.c": {"xrnn.nn.a"}}
    assert cycles(graph) == [["xrnn.nn.a", "xrnn.nn.b", "xrnn.nn.c"]]
    assert back_imports(graph) == []  # allowed by the order, refused as a cycle


def test_function_level_and_type_checking_imports_are_edges(tmp_path):
    root = tmp_path / "xrnn"
    (root / "engine").mkdir(parents=True)
    (root / "nn").mkdir()
    for init in (root / "__init__.py", root / "engine" / "__init__.py", root / "nn" / "__init__.py"):
        init.write_text("")
    (root / "nn" / "layers.py").write_text("")
    (root / "engine" / "scan.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..nn import layers\n"
        "def run():\n    from ..nn.layers import LSTM\n"
    )
    graph = import_graph(modules(root))
    assert graph["xrnn.engine.scan"] == {"xrnn.nn.layers"}
    assert back_imports(graph) == ["xrnn.engine.scan (engine) imports xrnn.nn.layers (nn), above it"]
