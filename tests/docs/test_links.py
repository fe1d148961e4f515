"""Every relative link of the hand-written documentation leads somewhere: the file exists and, with a
#fragment, the heading does (GitHub's anchors). The generated runbooks are checked where they are made."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / ".github" / "README.md",
        *(path for path in (ROOT / "docs").rglob("*.md") if "runbooks" not in path.parts),
    ]
)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [a or b for a, b in _LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for link in links(page):
        if re.match(r"^[a-z]+:", link):
            continue  # http(s), mailto: not checked offline
        target, _, fragment = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.relative_to(ROOT)}: {link} does not exist"
        if fragment and path.suffix == ".md":
            assert fragment in anchors(path.read_text()), f"{page.relative_to(ROOT)}: no heading for {link}"


def test_the_checker_sees_links() -> None:
    operations = ROOT / "docs" / "operations.md"
    assert "#rolling-back" in links(operations)
    assert "rolling-back" in anchors(operations.read_text())
    assert sum(len(links(page)) for page in PAGES) > 30
