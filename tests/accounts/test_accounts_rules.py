"""The account rules as plain functions: phone, email, name, password, date of birth."""

from datetime import date

import pytest

from portal.accounts import service


@pytest.mark.parametrize(
    "raw",
    [
        "+91 98123 45678",
        "+919812345678",
        "09812345678",
        "9812345678",
        "98123 45678",
        "+91-98123-45678",
        "919812345678",
        "0091 98123 45678",
        "(+91) 98123.45678",
        " 9812345678 ",
    ],
)
def test_indian_mobile_numbers_are_normalised(raw):
    assert service.normalise_phone(raw) == "+919812345678"


@pytest.mark.parametrize("first_digit", "6789")
def test_mobile_numbers_start_with_6_to_9(first_digit):
    assert service.normalise_phone(first_digit + "123456789") == f"+91{first_digit}123456789"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        None,
        "12345",
        "5812345678",
        "0812345678",
        "981234567",
        "98123456789",
        "+1 9812345678",
        "+44 7911 123456",
        "+91 98123 4567",
        "98123-4567x",
        "abcdefghij",
        "१२३४५६७८९०",  # Devanagari digits are not accepted as ASCII digits
    ],
)
def test_other_numbers_are_refused(raw):
    with pytest.raises(ValueError, match="10-digit Indian mobile number"):
        service.normalise_phone(raw)


def test_email_is_lower_cased():
    assert service.normalise_email("  Asha.Rao@Example.COM ") == "asha.rao@example.com"


@pytest.mark.parametrize(
    "raw", ["", "asha", "asha@", "@example.com", "asha@@example.com", "asha rao@example.com"]
)
def test_bad_emails_are_refused(raw):
    with pytest.raises(ValueError):
        service.normalise_email(raw)


def test_names_are_trimmed_and_required():
    assert service.normalise_name("  Asha   Rao ") == "Asha Rao"
    with pytest.raises(ValueError, match="Enter your name"):
        service.normalise_name("   ")
    with pytest.raises(ValueError, match="at most 120"):
        service.normalise_name("x" * 121)


def test_passwords_need_ten_characters():
    with pytest.raises(ValueError, match="at least 10 characters"):
        service.check_password("k7#pq2w9z")
    assert service.check_password("k7#pq2w9zm") == "k7#pq2w9zm"
    with pytest.raises(ValueError, match="at most 128"):
        service.check_password("x" * 129)


def test_date_of_birth_cannot_be_in_the_future():
    today = date(2025, 6, 1)
    assert service.check_date_of_birth(date(2020, 1, 1), today=today) == date(2020, 1, 1)
    assert service.check_date_of_birth(today, today=today) == today
    assert service.check_date_of_birth(None, today=today) is None
    with pytest.raises(ValueError, match="future"):
        service.check_date_of_birth(date(2025, 6, 2), today=today)
    with pytest.raises(ValueError):
        service.check_date_of_birth(date(1850, 1, 1), today=today)
