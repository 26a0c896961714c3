"""The documentation in docs/: its examples run, its links resolve, and the project points only to itself."""
import doctest
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = ("index", "quantities", "mathematics", "architecture", "extending", "claims")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TEXT = {".py", ".md", ".toml", ".ipynb", ".txt", ".cfg", ".sh", ".json", ".yaml", ".yml", ""}


def test_the_pages_exist():
    assert {p.stem for p in DOCS} >= set(PAGES)


@pytest.mark.parametrize("page", DOCS, ids=[p.stem for p in DOCS])
def test_examples_run(page):
    """Every ``>>>`` line of the page is a doctest: the numbers on the page are what the code computes."""
    result = doctest.testfile(str(page), module_relative=False, verbose=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=["README", *[p.stem for p in DOCS]])
def test_relative_links_resolve_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / unquote(target.split("#")[0])).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"


def tracked_text_files() -> list[Path]:
    """The repository's tracked text files (skips when this is not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in out.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in TEXT and f != Path(__file__).resolve()]


def test_no_file_names_the_internal_design_notes():
    """User-facing text points to docs/, never to the development notes that users do not have."""
    design = "DESIGN" + ".md"
    bad = [str(f.relative_to(ROOT)) for f in tracked_text_files() if design in f.read_text(errors="ignore")]
    assert not bad, f"files that mention {design} (point to the matching docs/ page instead): {bad}"


def test_nothing_points_outside_the_repository():
    """No tracked file names a folder beside the repository or a path of the development machine."""
    outside = re.compile(r"\.\./shared/|/work/(main|wt|shared)\b")
    bad = [str(f.relative_to(ROOT)) for f in tracked_text_files() if outside.search(f.read_text(errors="ignore"))]
    assert not bad, f"files that point outside the repository: {bad}"
