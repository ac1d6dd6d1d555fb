"""docs/prices.md states the lookup's precedence exactly as sdk.prices.book documents it."""

from __future__ import annotations

import re
from pathlib import Path

import sdk.prices.book as book

ROOT = Path(__file__).resolve().parents[2]


def _rules(text: str) -> str:
    """The numbered rules and the paragraph after them, whitespace-normalised."""
    match = re.search(r"^1\. manual rows.*?never \$0\.", text, re.DOTALL | re.MULTILINE)
    assert match is not None, "the precedence rules are missing"
    return " ".join(match.group().split())


def test_the_docs_copy_the_books_precedence_rules() -> None:
    assert book.__doc__ is not None
    documented = _rules((ROOT / "docs" / "prices.md").read_text(encoding="utf-8"))
    assert documented == _rules(book.__doc__)


def test_the_docs_name_the_pinned_version_and_the_thresholds() -> None:
    from sdk.prices.genai import GENAI_VERSION
    from sdk.prices.model import BANDS

    text = (ROOT / "docs" / "prices.md").read_text(encoding="utf-8")
    assert f"version **{GENAI_VERSION}**" in text
    assert f"genai-prices {GENAI_VERSION}" in text
    assert "(" + ", ".join(str(b) for b in BANDS[1:]) + ")" in " ".join(text.split())
