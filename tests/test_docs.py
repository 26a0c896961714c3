"""The documentation in docs/: its examples run, its links resolve, and the project points only to itself."""
import doctest
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = ("index", "quantities", "mathematics", "architecture", "extending", "claims")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_pages_exist():
    assert {p.stem for p in DOCS} >= set(PAGES)


@pytest.mark.parametrize("page", DOCS, ids=[p.stem for p in DOCS])
def test_examples_run(page):
    """Every ``>>>`` line of the page is a doctest: the numbers on the page are what the code computes."""
    result = doctest.testfile(str(page), module_relative=False, verbose=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("page", DOCS, ids=[p.stem for p in DOCS])
def test_relative_links_resolve_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / unquote(target.split("#")[0])).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"
