"""What makes a name: the one rule every name typed into a form goes through (a person's:
``accounts.service.normalise_name``; a clinic's, a service's, a specialization's, a
provider's: ``catalog.checks.clean_name``), and the key that says two names are the same
person's (``accounts.models.Dependent.name_key``)."""

import unicodedata

from portal.domain.text import N_

NAME_NEEDS_LETTER = N_("Enter a name in letters, not only numbers or a date.")


def has_letter(text):
    """True when ``text`` has a word in letters of any script: a letter (``str.isalpha``)
    and no digit of any script. "दिया", "Diya 2" and "3D Imaging" do; "12.5", "-1", "1e9"
    and "2026-12-15T99:99" do not (a letter inside a number or a date is not a word): a
    name made only of numbers, signs and dates is a value typed into the wrong field."""
    return any(
        any(ch.isalpha() for ch in word) and not any(ch.isdigit() for ch in word)
        for word in (text or "").split()
    )


def name_key(name):
    """``name`` as compared for sameness: compatibility-normalised (NFKC), case-folded and
    its spaces collapsed, so "Diya Sharma", "diya  SHARMA" and a full-width "Ｄiya" are one
    key. None for no name."""
    if not name:
        return None
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())
