"""The audit note's length is a policy value (``note_min_length``, POLICY.md's 10 its
floor): a page's hint says the policy's number, never a typed one. Review finding: the
cancel and payout pages still said "at least 10 characters" after it became editable."""

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TYPED = re.compile(r"(?i)at least 10 characters")


def test_no_page_types_the_audit_notes_length():
    typed = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if TYPED.search(path.read_text(encoding="utf-8"))
    ]
    assert typed == []
