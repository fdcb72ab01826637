"""What pages show a value as: clinic times, status badges and labels (registered as Jinja
filters once, in ``portal.templating``; views use them for flash messages and choices)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from portal.catalog.models import DEFAULT_TIMEZONE
from portal.config import policy
from portal.db import utcnow
from portal.domain import cancellation
from portal.domain.states import (
    ApprovalStatus,
    BookingStatus,
    FundAccountStatus,
    PaymentStatus,
    PayoutStatus,
    ReconCaseStatus,
    ReconRunStatus,
    RefundStatus,
    RescheduleStatus,
    VisitStatus,
)

# The badge class (ok / warn / bad) for a status of any machine; StrEnum members are their
# stored strings, so one table serves bookings, visits, payments, refunds and payouts.
_B, _V, _P, _R = BookingStatus, VisitStatus, PaymentStatus, RefundStatus
STATUS_BADGES = {
    **dict.fromkeys(
        (
            _B.CONFIRMED,
            _B.COMPLETED,
            _B.STARTED,
            _P.SUCCESSFUL,
            _R.PROCESSED,
            FundAccountStatus.VALIDATED,
            RescheduleStatus.DONE,
        ),
        "ok",
    ),
    **dict.fromkeys(
        (
            _V.PENDING_PAYMENT,
            _P.PENDING,
            _B.SCHEDULED,
            _V.DRAFT,
            _V.PARTIALLY_CANCELLED,
            PayoutStatus.QUEUED,
            PayoutStatus.PROCESSING,
        ),
        "warn",
    ),
    **dict.fromkeys(
        (_P.FAILED, PayoutStatus.REVERSED, _B.CANCELLED, _B.EXPIRED, ApprovalStatus.REJECTED),
        "bad",
    ),
}
# Reconciliation (lower-case values: no clash with the keys above).
STATUS_BADGES.update(
    {
        str(ReconCaseStatus.MATCHED): "ok",
        str(ReconCaseStatus.RESOLVED): "ok",
        str(ReconCaseStatus.PENDING): "warn",
        str(ReconCaseStatus.DISCREPANCY): "bad",
        str(ReconRunStatus.FINISHED): "ok",
        str(ReconRunStatus.RUNNING): "warn",
        str(ReconRunStatus.FAILED): "bad",
    }
)


def clinic_time(value, tz=None, fmt="%a %d %b %Y, %H:%M %Z"):
    """An aware datetime in the clinic's zone with its abbreviation: "Mon 02 Mar 2026,
    10:00 IST"."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(tz or DEFAULT_TIMEZONE)).strftime(fmt)


def status_badge(status):
    return STATUS_BADGES.get(str(status), "")


def status_label(status):
    """``PARTIALLY_CANCELLED`` → "Partially cancelled"."""
    return str(status or "").replace("_", " ").capitalize()


def late_booking_notice(start_at):
    """The "cannot be cancelled or moved once paid" warning for a slot this close, or None."""
    return cancellation.late_booking_notice(start_at - utcnow(), policy())


def unix_clinic_time(value, tz=None):
    """Unix seconds (a gateway's time) shown like ``clinic_time``."""
    if value is None:
        return "—"
    return clinic_time(datetime.fromtimestamp(int(value), UTC), tz)
