"""Every file and section the README and docs/ point at exists (no drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MENTION = re.compile(r"`((?:docs|examples|schemas|registry|benchmarks|demo|scripts)/[\w./-]+)`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {slug(heading) for heading in headings}


def references(doc: Path, repo: Path = REPO) -> list[tuple[Path, str]]:
    """(base directory, reference): markdown links are relative to their file,
    `docs/…`-style mentions in code spans to the repository."""
    text = doc.read_text(encoding="utf-8")
    links = [m for m in LINK.findall(text) if not re.match(r"[a-z]+:", m)]
    return [(doc.parent, link) for link in links] + [(repo, m) for m in MENTION.findall(text)]


def broken_references(doc: Path, repo: Path = REPO) -> list[str]:
    """The references of `doc` whose file or section does not exist."""
    broken = []
    for base, reference in references(doc, repo):
        target, _, anchor = reference.partition("#")
        path = (base / target).resolve() if target else doc
        if not path.exists():
            broken.append(f"{reference}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{reference}: no such section")
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_reference_resolves(doc: Path) -> None:
    assert broken_references(doc) == []


def test_a_missing_file_or_section_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A title\n\n## The `serve` options\n")
    doc = tmp_path / "README.md"
    doc.write_text(
        "[ok](docs/a.md#the-serve-options) [gone](docs/b.md) [no](docs/a.md#nope)"
        " see `docs/c.md` and [self](#a)\n# A\n"
    )
    assert broken_references(doc, tmp_path) == [
        "docs/b.md: no such file",
        "docs/a.md#nope: no such section",
        "docs/c.md: no such file",
    ]


def test_no_document_cites_a_contract_users_do_not_have() -> None:
    for path in [*DOCS, *(REPO / "aivault_ops").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "DESIGN §" not in text, path
