"""Time rules around payments and reminders (POLICY.md "Payment", "Notifications",
"Completion"). All datetimes must be timezone-aware."""

from __future__ import annotations

from datetime import datetime, timedelta

from .policy import DEFAULT_POLICY, Policy

__all__ = [
    "payment_link_expiry",
    "link_check_wait_ends",
    "needs_intervention",
    "may_retry_payment",
    "reminder_times",
    "reminder_keys",
    "offset_key",
    "is_no_show_candidate",
    "is_not_completed_candidate",
]


def _aware(*values: datetime) -> None:
    for v in values:
        if v.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")


def payment_link_expiry(
    now: datetime, first_start: datetime, policy: Policy = DEFAULT_POLICY
) -> datetime | None:
    """expiry = min(now + 24 h, first start − 2 h); ``None`` when that is less than
    15 minutes ahead (the booking cannot be left unpaid: take payment at the desk)."""
    _aware(now, first_start)
    expiry = min(now + policy.link_max_lifetime, first_start - policy.link_before_start)
    if expiry - now < policy.link_min_lifetime:
        return None
    return expiry


def link_check_wait_ends(first_start: datetime, policy: Policy = DEFAULT_POLICY) -> datetime:
    """Until when an expired payment link's visit keeps its slots while the gateway cannot
    say whether the link was paid: the first start less the link window (2 h), when no
    link could be made for it any more either. After that it lapses unchecked, and a
    capture found later is a late payment (decision, docs/booking.md)."""
    _aware(first_start)
    return first_start - policy.link_before_start


def needs_intervention(
    failed_attempts: int, link_expired: bool = False, policy: Policy = DEFAULT_POLICY
) -> bool:
    """3 failed attempts, or an expired payment link."""
    return link_expired or failed_attempts >= policy.payment_failures_for_intervention


def may_retry_payment(attempts: int, policy: Policy = DEFAULT_POLICY) -> bool:
    """The patient may start another attempt while fewer than 5 exist."""
    return attempts < policy.payment_max_attempts


def reminder_times(
    start: datetime, now: datetime, policy: Policy = DEFAULT_POLICY
) -> list[tuple[str, datetime]]:
    """``[(key, send_at), …]`` for the reminders still in the future, keyed by offset
    (e.g. ``"24h"``, ``"1h"``, ``"15m"``) so each is sent at most once."""
    _aware(start, now)
    out = []
    for offset in policy.reminder_offsets:
        send_at = start - offset
        if send_at > now:
            out.append((offset_key(offset), send_at))
    return out


def reminder_keys(policy: Policy = DEFAULT_POLICY) -> dict[str, timedelta]:
    """The policy's reminders by key: ``{"24h": 24 h, "1h": 1 h, "15m": 15 min}``."""
    return {offset_key(offset): offset for offset in policy.reminder_offsets}


def offset_key(offset: timedelta) -> str:
    """A reminder's key: its offset's whole minutes, as hours when they are whole hours.
    A booking has one reminder row per key (``notify.models.Reminder``), so two offsets
    with one key would be one reminder: the policy's offsets are whole minutes, each once
    (``policy_data.problems``)."""
    minutes = int(offset.total_seconds()) // 60
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def is_no_show_candidate(end: datetime, now: datetime, policy: Policy = DEFAULT_POLICY) -> bool:
    """A confirmed booking never started by end + 2 h is flagged for admin attention."""
    _aware(end, now)
    return now >= end + policy.no_show_grace


def is_not_completed_candidate(
    end: datetime, now: datetime, policy: Policy = DEFAULT_POLICY
) -> bool:
    """A started booking not completed by end + the same grace (2 h) is flagged too: its
    fee is never earned and its visit never closes until someone completes it."""
    _aware(end, now)
    return now >= end + policy.no_show_grace
