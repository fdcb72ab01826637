"""PAN masking (a provider's own TDS page and its CSV) and the TAN setting's format."""

import pytest

from portal.domain.tax_ids import clean_tan, mask_pan


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
