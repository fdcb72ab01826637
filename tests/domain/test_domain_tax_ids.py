"""PAN masking (a provider's own TDS page and its CSV), the PAN's check (wherever one is
entered) and the TAN setting's format."""

import string

import pytest

from portal.domain.tax_ids import (
    MSG_PAN_FORMAT,
    MSG_PAN_HOLDER,
    PAN_HOLDER_TYPES,
    clean_pan,
    clean_tan,
    mask_pan,
)
from portal.domain.text import Text


@pytest.mark.parametrize(
    "pan, shown",
    [
        ("ABCDE1234F", "ABCDE••••F"),
        (" abcde1234f ", "ABCDE••••F"),  # as typed: trimmed, upper-cased
        ("ABC12", "A•••2"),  # not a PAN's length: only its ends
        ("AB", "••"),
        ("", None),
        (None, None),
    ],
)
def test_a_pan_is_shown_masked(pan, shown):
    assert mask_pan(pan) == shown


def test_a_tan_is_four_letters_five_digits_and_a_letter():
    assert clean_tan(" blra12345e ") == "BLRA12345E"
    assert clean_tan("") == "" and clean_tan(None) == ""
    for bad in ("BLRA1234E", "BLRA123456", "ABCDE1234F", "BLRA12345EE", "BLR-12345E"):
        with pytest.raises(ValueError, match="expected a TAN"):
            clean_tan(bad)


# --- clean_pan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, kept",
    [
        ("ABCPK1234L", "ABCPK1234L"),  # a person's (a doctor's)
        (" abcpk1234l\t", "ABCPK1234L"),  # as typed: trimmed, upper-cased
        ("AABCL1234K", "AABCL1234K"),  # a company's (a lab's)
        *[(f"AAA{t}B0001C", f"AAA{t}B0001C") for t in "PCHFATBLJG"],  # every holder type
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_a_pan_is_kept_trimmed_and_upper_cased(typed, kept):
    assert clean_pan(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "ABCPK1234",  # nine characters
        "ABCPK12345L",  # eleven
        "ABCP11234L",  # a digit among the letters
        "ABCPKX234L",  # a letter among the digits
        "ABCPK12349",  # a digit last
        "ABCPK 1234L",  # a space inside: only the ends are trimmed
        "ABCPK-1234L",
        "ABCPK1234L;",
        "ＡＢＣＰＫ１２３４Ｌ",  # full-width look-alikes
        "29ABCPK1234L1Z5",  # a GSTIN, which holds a PAN
    ],
)
def test_what_is_not_five_letters_four_digits_and_a_letter_is_refused(typed):
    with pytest.raises(ValueError) as refused:
        clean_pan(typed)
    assert str(refused.value) == MSG_PAN_FORMAT
    assert "ABCPK1234L" in MSG_PAN_FORMAT  # the message shows what a PAN looks like


@pytest.mark.parametrize("letter", sorted(set(string.ascii_uppercase) - set("PCHFATBLJG")))
def test_a_fourth_letter_that_is_no_holder_type_is_refused_naming_it(letter):
    with pytest.raises(ValueError) as refused:
        clean_pan(f"ABC{letter}K1234L")
    message = refused.value.args[0]
    assert isinstance(message, Text) and message.template == MSG_PAN_HOLDER
    assert f"never {letter}." in str(message) and "P for a person" in str(message)


def test_the_holder_types_are_the_income_tax_departments_ten():
    assert set(PAN_HOLDER_TYPES) == set("PCHFATBLJG")


# --- one normalisation of a PAN ------------------------------------------------------------


def test_every_reading_of_a_pan_normalises_it_by_normal_pan_alone(monkeypatch):
    """Checking a PAN typed (``clean_pan``, and the catalog's ``check_pan`` comparing it
    with the one on file), masking one (``mask_pan``) and keying payouts by it for TDS
    (``payouts.common.payee_key``) all ask ``tax_ids.normal_pan`` what a PAN as written
    is: were that rule to change (here: also dropping a hyphen inside), every one of them
    follows, none keeps a trim-and-upper-case of its own."""
    from portal.catalog.pan import check_pan
    from portal.domain import tax_ids
    from portal.payouts.common import payee_key

    assert tax_ids.normal_pan(" abcpk1234l\t") == "ABCPK1234L"
    assert tax_ids.normal_pan(" ") is None and tax_ids.normal_pan(None) is None
    monkeypatch.setattr(
        tax_ids,
        "normal_pan",
        lambda text: (text or "").replace("-", "").strip().upper() or None,
        raising=False,
    )
    typed = " abcpk-1234l "
    assert clean_pan(typed) == "ABCPK1234L"
    assert mask_pan(typed) == "ABCPK••••L"
    assert payee_key(typed) == "ABCPK1234L"
    errors = {}
    assert check_pan("abcpk-1234l", "ABCPK1234L", errors) == "ABCPK1234L" and errors == {}


# A PAN as a form, a paste or an import brings it: checked (``clean_pan``), shown masked
# (``mask_pan``) and keyed as the payee whose TDS counts together (``payee_key``: the
# payouts' advisory lock ``payout-pan:<PAN>``). Were one to read it otherwise, one payee's
# threshold would be counted under two keys.
MESSY = [
    " abcpk1234l ",
    "abcpk1234l",
    "AbCpK1234l",
    "\tABCPK1234L\n",
    "ABCPK1234L\u00a0",
    "\u2003abcpk1234l\r\n",
]
# A space or a hyphen inside is not trimmed: no PAN, refused where it is entered, so never
# stored, and none of the three takes it for the PAN without it.
INSIDE = ["ABCPK 1234L", " abcpk 1234l ", "ABCPK\t1234L", "abcpk-1234l"]


@pytest.mark.parametrize("typed", MESSY)
def test_checking_masking_and_keying_a_pan_read_messy_input_alike(typed):
    from portal.payouts.common import payee_key

    assert clean_pan(typed) == payee_key(typed) == "ABCPK1234L"
    assert mask_pan(typed) == mask_pan("ABCPK1234L") == "ABCPK••••L"


@pytest.mark.parametrize("typed", INSIDE)
def test_a_pan_with_anything_inside_is_no_pan_to_any_of_the_three(typed):
    from portal.payouts.common import payee_key

    with pytest.raises(ValueError):
        clean_pan(typed)
    assert payee_key(typed) != "ABCPK1234L"
    assert mask_pan(typed) != "ABCPK••••L"
