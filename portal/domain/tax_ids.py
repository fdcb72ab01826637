"""The Income Tax Department's identifiers the TDS pages show: a provider's PAN (the
deductee's, masked on their own page; checked by :func:`clean_pan` wherever it is entered)
and the clinic's TAN (the deductor's, under which Form 26AS lists the tax deducted)."""

import re

from portal.domain.text import N_, Text

MASK = "•"
# Four letters, five digits, a letter: "BLRA12345E".
_TAN = re.compile(r"[A-Z]{4}[0-9]{5}[A-Z]")
# Five letters, four digits, a letter: "ABCPK1234L".
_PAN = re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]")
# A PAN's fourth character says whose it is (the Income Tax Department's holder types): a
# doctor's is P; a lab's is usually C (company) or F (firm, LLP).
PAN_HOLDER_TYPES = {
    "P": "individual",
    "C": "company",
    "H": "Hindu undivided family",
    "F": "firm or LLP",
    "A": "association of persons",
    "T": "trust",
    "B": "body of individuals",
    "L": "local authority",
    "J": "artificial juridical person",
    "G": "government",
}
MSG_PAN_FORMAT = N_(
    "Enter the PAN as on the PAN card: five letters, four digits and a letter, e.g. ABCPK1234L."
)
MSG_PAN_HOLDER = N_(
    "The fourth letter of a PAN says whose it is: P for a person, C for a company, F for a "
    "firm or LLP, H for an HUF, or A, B, G, J, L or T; never %(letter)s. Check the PAN card."
)


def normal_pan(text):
    """A PAN as written (typed, or on file: the column was free text before
    :func:`clean_pan`), trimmed and upper-cased; None for blank. The one place a PAN is
    normalised: checking, masking and keying payouts by the payee all read it so."""
    return (text or "").strip().upper() or None


def mask_pan(pan):
    """``"ABCDE1234F" -> "ABCDE••••F"``: the five letters and the check letter a provider
    recognises, the digits hidden. None for no PAN; a short or odd value (the column is
    free text) keeps only its first and last characters."""
    pan = normal_pan(pan)
    if pan is None:
        return None
    if len(pan) == 10:
        return pan[:5] + MASK * 4 + pan[-1]
    if len(pan) <= 2:
        return MASK * len(pan)
    return pan[0] + MASK * (len(pan) - 2) + pan[-1]


def clean_pan(text):
    """A PAN as typed, normalised (:func:`normal_pan`); None for nothing typed (none on file).
    ``ValueError`` with the message to show (marked for the catalogue: a ``Text`` when it
    names the letter) for anything that is not five letters, four digits and a letter
    whose fourth letter is a holder type (``PAN_HOLDER_TYPES``)."""
    pan = normal_pan(text)
    if pan is None:
        return None
    if not _PAN.fullmatch(pan):
        raise ValueError(MSG_PAN_FORMAT)
    if pan[3] not in PAN_HOLDER_TYPES:
        raise ValueError(Text(MSG_PAN_HOLDER, letter=pan[3]))
    return pan


def clean_tan(text):
    """A TAN as written in the settings, upper-cased; empty stays empty (none on file).
    ``ValueError`` for anything that is not four letters, five digits and a letter."""
    tan = (text or "").strip().upper()
    if tan and not _TAN.fullmatch(tan):
        raise ValueError("expected a TAN: four letters, five digits and a letter (BLRA12345E)")
    return tan
