from datetime import UTC, datetime, timedelta

import pytest

from portal.domain.schedule import (
    is_no_show_candidate,
    is_not_completed_candidate,
    may_retry_payment,
    needs_intervention,
    payment_link_expiry,
    reminder_times,
    within_tolerance,
)

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_link_expiry_24h_when_start_far():
    assert payment_link_expiry(NOW, NOW + 72 * H) == NOW + 24 * H


def test_link_expiry_two_hours_before_start():
    assert payment_link_expiry(NOW, NOW + 10 * H) == NOW + 8 * H
    assert payment_link_expiry(NOW, NOW + 26 * H) == NOW + 24 * H


def test_link_expiry_at_least_15_minutes():
    assert payment_link_expiry(NOW, NOW + 2 * H + 15 * M) == NOW + 15 * M
    assert payment_link_expiry(NOW, NOW + 2 * H + 14 * M) is None
    assert payment_link_expiry(NOW, NOW + H) is None


def test_link_expiry_needs_aware():
    with pytest.raises(ValueError):
        payment_link_expiry(NOW.replace(tzinfo=None), NOW)


def test_intervention_and_retry():
    assert not needs_intervention(2)
    assert needs_intervention(3)
    assert needs_intervention(0, link_expired=True)
    assert may_retry_payment(4) and not may_retry_payment(5)


def test_reminders_only_future():
    start = NOW + 2 * H
    assert reminder_times(start, NOW) == [("1h", start - H), ("15m", start - 15 * M)]
    assert [k for k, _ in reminder_times(NOW + 48 * H, NOW)] == ["24h", "1h", "15m"]
    assert reminder_times(NOW + 15 * M, NOW) == []


def test_no_show_and_tolerance():
    end = NOW
    assert not is_no_show_candidate(end, NOW + 2 * H - M)
    assert is_no_show_candidate(end, NOW + 2 * H)
    # A started booking never completed: the same grace after its end.
    assert not is_not_completed_candidate(end, NOW + 2 * H - M)
    assert is_not_completed_candidate(end, NOW + 2 * H)
    with pytest.raises(ValueError):
        is_not_completed_candidate(end.replace(tzinfo=None), NOW)
    assert within_tolerance(NOW, NOW + 60 * timedelta(seconds=1))
    assert not within_tolerance(NOW, NOW - 61 * timedelta(seconds=1))
