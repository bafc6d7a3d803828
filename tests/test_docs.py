"""The documents cite only files the repository has."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = [
    "README.md",
    *(os.path.join("docs", n) for n in os.listdir(os.path.join(REPO, "docs"))),
]


def cited_files(text: str) -> set[str]:
    """Markdown link targets that are paths, and repository documents named in backticks
    (`BENCHMARKS.md`, `docs/evaluation.md`; lower-case names such as `trials.md` are files
    the commands write, not documents)."""
    links = {t for t in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in t}
    documents = set(re.findall(r"`((?:docs/)?[A-Z][A-Z_]*\.md|docs/[a-z_]+\.md)`", text))
    return links | documents


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_cited_document_exists(document):
    with open(os.path.join(REPO, document), encoding="utf-8") as f:
        text = f.read()
    for cited in cited_files(text):
        beside = os.path.join(REPO, os.path.dirname(document), cited)
        assert os.path.exists(beside) or os.path.exists(os.path.join(REPO, cited)), (
            f"{document} cites {cited}, which the repository does not have"
        )


def test_the_evaluation_document_is_cited():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        assert "docs/evaluation.md" in f.read()
