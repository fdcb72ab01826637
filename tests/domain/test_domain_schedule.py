from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portal.domain.policy import DEFAULT_POLICY
from portal.domain.policy_data import from_data, problems, to_data, unflatten
from portal.domain.schedule import (
    is_no_show_candidate,
    is_not_completed_candidate,
    link_check_wait_ends,
    may_retry_payment,
    needs_intervention,
    payment_link_expiry,
    reminder_keys,
    reminder_times,
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


def test_an_unchecked_link_waits_until_no_link_could_be_made():
    """The wait for a gateway that cannot say whether a link was paid ends where a new
    link's expiry would: the first start less the link window."""
    start = NOW + 72 * H
    assert link_check_wait_ends(start) == start - 2 * H
    ends = link_check_wait_ends(start)
    assert payment_link_expiry(ends - 15 * M, start) == ends
    assert payment_link_expiry(ends, start) is None
    with pytest.raises(ValueError):
        link_check_wait_ends(start.replace(tzinfo=None))


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


_MINUTE_OR_ANY = st.one_of(
    st.integers(1, 30 * 24 * 60).map(lambda minutes: minutes * 60),  # whole minutes
    st.integers(1, 30 * 24 * 3600),  # any second (mostly not whole minutes)
)


@given(st.lists(_MINUTE_OR_ANY, min_size=1, max_size=5))
@example([7200, 7230])  # "120, 120.5" on the form: both were the "2h" reminder
@example([30])  # "0.5": a "0h" reminder
@example([7200, 7200])
def test_every_reminder_a_policy_may_hold_is_scheduled_under_its_own_key(offsets):
    """A reminder is kept by its key (one row per key: the second of two with one key was
    never scheduled, silently). Any offsets the policy's validation lets through each get a
    key of their own, and every one of them is scheduled."""
    data = unflatten(to_data(DEFAULT_POLICY), {"reminder_offsets": offsets})
    if problems(data):
        assert set(problems(data)) == {"reminder_offsets"}
        return
    policy = from_data(data)
    assert len(reminder_keys(policy)) == len(offsets)
    start = NOW + timedelta(days=31)
    times = reminder_times(start, NOW, policy)
    assert len({key for key, _ in times}) == len(offsets)
    assert sorted(start - at for _, at in times) == sorted(timedelta(seconds=o) for o in offsets)


def test_no_show_and_not_completed():
    end = NOW
    assert not is_no_show_candidate(end, NOW + 2 * H - M)
    assert is_no_show_candidate(end, NOW + 2 * H)
    # A started booking never completed: the same grace after its end.
    assert not is_not_completed_candidate(end, NOW + 2 * H - M)
    assert is_not_completed_candidate(end, NOW + 2 * H)
    with pytest.raises(ValueError):
        is_not_completed_candidate(end.replace(tzinfo=None), NOW)
