"""The documentation cannot rot: every ``python`` block of each tutorial in ``docs/`` and of
the root README's tour runs, in order, as one script in an empty folder; and every link in
the READMEs, the docs and CONTRIBUTING.md points at a file inside the repository."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from commands import run

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md")),
         *sorted((ROOT / "packages").glob("*/README.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def python_blocks(page: Path) -> str:
    return "\n".join(BLOCK.findall(page.read_text()))


def test_there_is_a_tutorial_per_package():
    assert {p.stem for p in TUTORIALS} == {"ad", "nn", "xla", "hpcgan"}


@pytest.mark.parametrize("page", [ROOT / "README.md", *TUTORIALS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_of_the_page_runs(page, tmp_path):
    code = python_blocks(page)
    assert code.strip(), f"{page} has no python block"
    script = tmp_path / "page.py"  # a file: autograph and spawned workers need its source
    script.write_text(code)
    run([sys.executable, str(script)], cwd=tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_point_at_files_in_the_repository(page):
    for target in LINK.findall(page.read_text()):
        path = target.split("#", 1)[0]
        assert "://" not in target and not target.startswith("mailto:"), (
            f"{page.relative_to(ROOT)} links outside the repository: {target}")
        if path:
            assert (page.parent / path).exists(), f"{page.relative_to(ROOT)}: no {target}"
