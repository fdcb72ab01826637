"""The window a console filter reads (``filters.window_for``): typed dates first, else a
reference's every date, else the preset's; and every date only with a reference."""

from datetime import date

import pytest

from portal.transactions.filters import FilterError, MovementFilter, window_for

TODAY = date(2026, 12, 6)


def test_typed_dates_win_even_with_a_reference():
    assert window_for(date(2026, 1, 1), None, "7d", TODAY, reference=True) == (
        date(2026, 1, 1),
        TODAY,
    )
    assert window_for(None, date(2026, 3, 2), None, TODAY, reference=False) == (
        date(2026, 3, 2),
        date(2026, 3, 2),
    )


def test_a_reference_without_dates_reads_every_date_whatever_the_period_select_says():
    assert window_for(None, None, "7d", TODAY, reference=True) == (None, None)
    assert window_for(None, None, "", TODAY, reference=True) == (None, None)


def test_without_a_reference_the_preset_or_the_last_7_days():
    assert window_for(None, None, "today", TODAY, reference=False) == (TODAY, TODAY)
    assert window_for(None, None, None, TODAY, reference=False) == (date(2026, 11, 30), TODAY)


def test_every_date_only_with_a_reference():
    assert MovementFilter(start=None, end=None, reference="pay_0kXvoDwfDiSvZV").every_date
    with pytest.raises(FilterError):
        MovementFilter(start=None, end=None)
    with pytest.raises(FilterError):
        MovementFilter(start=TODAY, end=None, reference="pay_0kXvoDwfDiSvZV")
    with pytest.raises(FilterError):  # the one-year limit still holds for typed dates
        MovementFilter(start=date(2025, 1, 1), end=TODAY, reference="pay_0kXvoDwfDiSvZV")
