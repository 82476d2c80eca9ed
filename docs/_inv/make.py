"""Write the small intersphinx inventories the docs link through (run: python docs/_inv/make.py).

The build machines reach no documentation site, so the inventories live in the
repository. Each lists only the names these docs refer to, with their real addresses.
"""

from __future__ import annotations

import pathlib
import zlib

INVENTORIES = {
    "python": (
        "Python",
        "3",
        [
            ("contextlib.contextmanager", "py:function", "library/contextlib.html#$"),
            ("int", "py:class", "library/functions.html#int"),
            ("str", "py:class", "library/stdtypes.html#str"),
            ("dict", "py:class", "library/stdtypes.html#dict"),
            ("this", "py:module", "library/this.html#module-$"),
        ],
    ),
    "numpy": (
        "NumPy",
        "2",
        [
            ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$"),
            ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
            ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$"),
            ("numpy.savez", "py:function", "reference/generated/numpy.savez.html#$"),
        ],
    ),
    "cupy": (
        "CuPy",
        "13",
        [
            ("cupy.ndarray", "py:class", "reference/generated/cupy.ndarray.html#$"),
            ("cupy.ElementwiseKernel", "py:class", "reference/generated/cupy.ElementwiseKernel.html#$"),
        ],
    ),
    "array-api": (
        "Python array API standard",
        "2024.12",
        [
            ("purpose_and_scope", "std:doc", "purpose_and_scope.html", "Purpose and scope"),
            ("API_specification/index", "std:doc", "API_specification/index.html", "API specification"),
            (
                "API_specification/array_object",
                "std:doc",
                "API_specification/array_object.html",
                "Array object",
            ),
        ],
    ),
}


def write(name: str, project: str, version: str, entries: list[tuple[str, ...]]) -> None:
    lines = []
    for entry in entries:
        target, role, uri = entry[:3]
        display = entry[3] if len(entry) > 3 else "-"
        lines.append(f"{target} {role} 1 {uri} {display}")
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(lines) + "\n").encode())
    (pathlib.Path(__file__).parent / f"{name}.inv").write_bytes(header.encode() + body)


if __name__ == "__main__":
    for key, (project, version, entries) in INVENTORIES.items():
        write(key, project, version, entries)
