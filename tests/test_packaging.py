"""The distribution: its name, how the README installs it, and Numba where it has wheels."""

from __future__ import annotations

import pathlib
import re

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
TEXTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.rst")),
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "src").rglob("*.py")),
    *sorted((ROOT / "ci").glob("*.sh")),
]


def test_the_distribution_is_not_named_like_the_unrelated_xrnn_on_the_package_index():
    # "xrnn" on the public index is another project (1.1.1): pip would install it instead.
    assert PROJECT["name"] == "xrnn-bptt"
    assert (ROOT / "src" / "xrnn" / "__init__.py").exists()  # the import name stays xrnn


@pytest.mark.parametrize("path", TEXTS, ids=[str(p.relative_to(ROOT)) for p in TEXTS])
def test_no_install_hint_fetches_xrnn_from_the_package_index(path):
    # pip install xrnn, "xrnn[cli]", -U xrnn ...: each would fetch the unrelated project.
    hint = re.compile(r"pip install(\s+-\S+)*\s+['\"]?xrnn(?![\w-])")
    assert not hint.findall(path.read_text(encoding="utf-8"))


def test_the_readme_sets_up_with_two_commands_from_the_checkout():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("  #")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert len(commands) == 2
    install, test = commands
    assert re.search(r"pip install \S*\"\.\[cli\]\"", install)  # this checkout, with the command's extras
    assert install.endswith("-m xrnn demo")
    assert test == "ci/test.sh"
    assert "installed from its source" in readme


def _numba_requirement():
    found = [Requirement(d) for d in PROJECT["dependencies"] if Requirement(d).name == "numba"]
    assert len(found) == 1, "numba must be a regular dependency"
    return found[0]


def _platform(system, machine, python="3.12", implementation="CPython"):
    return {
        "sys_platform": system,
        "platform_machine": machine,
        "python_version": python,
        "python_full_version": python + ".0",
        "platform_python_implementation": implementation,
        "implementation_name": implementation.lower(),
        "os_name": "nt" if system == "win32" else "posix",
        "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[system],
    }


# Where numba 0.68.1 publishes wheels (and llvmlite 0.50 beside it), and where it does not.
WITH_WHEELS = {
    "linux_x86_64_3.10": _platform("linux", "x86_64", "3.10"),
    "linux_x86_64_3.15": _platform("linux", "x86_64", "3.15"),
    "linux_aarch64": _platform("linux", "aarch64"),
    "macos_arm64": _platform("darwin", "arm64", "3.11"),
    "windows_amd64": _platform("win32", "AMD64", "3.10"),
    "windows_arm64_3.12": _platform("win32", "ARM64", "3.12"),
}
WITHOUT_WHEELS = {
    "macos_x86_64": _platform("darwin", "x86_64"),  # the last wheels were numba 0.62
    "windows_arm64_3.11": _platform("win32", "ARM64", "3.11"),
    "linux_ppc64le": _platform("linux", "ppc64le"),
    "linux_i686": _platform("linux", "i686"),
    "pypy": _platform("linux", "x86_64", "3.11", "PyPy"),
    "python_3.16": _platform("linux", "x86_64", "3.16"),
}


@pytest.mark.parametrize("case", list(WITH_WHEELS))
def test_numba_comes_with_the_plain_install_where_it_has_wheels(case):
    assert _numba_requirement().marker.evaluate(WITH_WHEELS[case])


@pytest.mark.parametrize("case", list(WITHOUT_WHEELS))
def test_numba_is_not_required_where_it_would_build_from_source(case):
    assert not _numba_requirement().marker.evaluate(WITHOUT_WHEELS[case])


def test_the_fast_extra_still_asks_for_numba():
    assert [Requirement(r).name for r in PROJECT["optional-dependencies"]["fast"]] == ["numba"]
