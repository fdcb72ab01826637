"""The Income Tax Department's identifiers the TDS pages show: a provider's PAN (the
deductee's, masked on their own page) and the clinic's TAN (the deductor's, under which
Form 26AS lists the tax deducted)."""

import re

MASK = "•"
# Four letters, five digits, a letter: "BLRA12345E".
_TAN = re.compile(r"[A-Z]{4}[0-9]{5}[A-Z]")


def mask_pan(pan):
    """``"ABCDE1234F" -> "ABCDE••••F"``: the five letters and the check letter a provider
    recognises, the digits hidden. None for no PAN; a short or odd value (the column is
    free text) keeps only its first and last characters."""
    pan = (pan or "").strip().upper()
    if not pan:
        return None
    if len(pan) == 10:
        return pan[:5] + MASK * 4 + pan[-1]
    if len(pan) <= 2:
        return MASK * len(pan)
    return pan[0] + MASK * (len(pan) - 2) + pan[-1]


def clean_tan(text):
    """A TAN as written in the settings, upper-cased; empty stays empty (none on file).
    ``ValueError`` for anything that is not four letters, five digits and a letter."""
    tan = (text or "").strip().upper()
    if tan and not _TAN.fullmatch(tan):
        raise ValueError("expected a TAN: four letters, five digits and a letter (BLRA12345E)")
    return tan
