"""Ids that people type, post or carry in a link: ASCII digits within the database's ids.

``str.isdigit`` is also true for "²" and other Unicode digits, which ``int`` refuses (a
ValueError, a 500), and a number beyond the 32-bit INTEGER id columns is a database error
on PostgreSQL (a 500), not a miss."""

MAX_ID = 2**31 - 1


def is_digits(text):
    """True for a non-empty string of ASCII digits."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def parse_id(value):
    """The id ``value`` names (an int, or a string of digits), or None if it can name no
    row: anything else, 0, or a number beyond the id columns."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not is_digits(value) or len(value) > 10:
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_ID else None
