"""The documentation site as a reader meets it: one build command, no literal markup, a summary first."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
DOCS = ROOT / "docs"
ROLE = re.compile(r":(doc|ref|func|class|meth|mod|attr|data):`")


def _code_blocks(text):
    """The lines of each literal block of an rST page (``.. code-block::`` or ``::``)."""
    lines, inside, indent = text.splitlines(), False, 0
    for line in lines:
        if inside:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                inside = False
            else:
                yield line
                continue
        stripped = line.strip()
        literal = stripped.startswith((".. code-block::", ".. code::")) or (
            stripped.endswith("::") and not stripped.startswith("..")
        )
        if literal:
            inside, indent = True, len(line) - len(line.lstrip())


def test_the_site_builds_with_one_command_named_in_the_readme():
    script = ROOT / "ci" / "docs.sh"
    assert "sphinx -E -W" in script.read_text() and "ci/docs.sh" in (ROOT / "README.md").read_text()


def test_no_role_is_shown_as_literal_text_in_a_code_block():
    found = [
        f"{page.name}: {line.strip()}"
        for page in sorted(DOCS.glob("*.rst"))
        for line in _code_blocks(page.read_text(encoding="utf-8"))
        if ROLE.search(line)
    ]
    assert found == []


def test_no_page_or_docstring_points_at_internal_design_notes():
    sources = [*DOCS.glob("*.rst"), *DOCS.glob("*.md"), *(ROOT / "src" / "xrnn").rglob("*.py")]
    found = [str(path.relative_to(ROOT)) for path in sources if "DESIGN" in path.read_text(encoding="utf-8")]
    assert found == []


def test_the_benchmarks_page_opens_with_a_summary_table():
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    first_section = text.split("\n## ")[1]
    assert first_section.startswith("In short") and "| model" in first_section and "faster" in first_section


def test_the_text_column_is_wide_enough_for_the_code_blocks():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    css = (DOCS / "_static" / "width.css").read_text(encoding="utf-8")
    assert 'html_css_files = ["width.css"]' in conf and ".bd-article-container" in css
