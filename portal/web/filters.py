"""What pages show a value as: clinic times, status badges and labels (registered as Jinja
filters once, in ``portal.templating``; views use them for flash messages and choices)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext
from markupsafe import Markup, escape

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

# ``t`` and ``day_names`` are the pages' names for what notices say a message with too.
from portal.i18n import N_, current_language, day_names
from portal.i18n import translate as translate
from portal.notify.models import DeliveryStatus
from portal.payments.models import DESK, LINK, ORDER, WALLET
from portal.policies import store as policy_store

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
# Deliveries (the jobs page): failing ones a warning, given up bad, withdrawn (never to be
# sent, nothing wrong) plain.
STATUS_BADGES.update(
    {
        str(DeliveryStatus.QUEUED): "warn",
        str(DeliveryStatus.RETRYING): "warn",
        str(DeliveryStatus.FAILED): "bad",
    }
)


def _reading_hindi():
    return current_language() == "hi"  # "en" outside a request


def clinic_time(value, tz=None, fmt="%a %d %b %Y, %H:%M %Z"):
    """An aware datetime in the clinic's zone with its abbreviation: "Mon 02 Mar 2026,
    10:00 IST"."""
    if value is None:
        return "—"
    return day_names(value.astimezone(ZoneInfo(tz or DEFAULT_TIMEZONE)).strftime(fmt))


def clinic_time_short(value, tz=None):
    """``clinic_time`` without the date when it falls today at the clinic: "21:34 IST";
    another day keeps it ("Sun 06 Dec 2026, 21:34 IST"), so a time up to a day away (a
    payment link's hold) does not read as today's."""
    if value is None:
        return "—"
    zone = ZoneInfo(tz or DEFAULT_TIMEZONE)
    today = value.astimezone(zone).date() == utcnow().astimezone(zone).date()
    return clinic_time(value, tz, "%H:%M %Z") if today else clinic_time(value, tz)


def status_badge(status):
    return STATUS_BADGES.get(str(status), "")


# Every status a patient or doctor can see, for the catalogue (status_label translates).
STATUS_LABELS = (
    N_("Scheduled"), N_("Confirmed"), N_("Started"), N_("Completed"), N_("Cancelled"),
    N_("Expired"), N_("Pending"), N_("Partially cancelled"), N_("Successful"), N_("Failed"),
    N_("Processed"), N_("Queued"), N_("Processing"), N_("Reversed"), N_("Draft"),
    N_("Pending payment"), N_("Done"), N_("Approved"), N_("Rejected"), N_("Validated"),
    N_("Pending approval"), N_("Applied"), N_("Sending"), N_("Open"), N_("Withdrawn"),
)  # fmt: skip


# What a receipt calls a payment, by its kind (``payments.models``' kinds).
PAYMENT_KINDS = {
    ORDER: N_("Paid online"),
    LINK: N_("Paid by payment link"),
    DESK: N_("Paid at the clinic"),
    WALLET: N_("From your wallet"),
}


# Razorpay's payment methods as a patient reads them (its codes otherwise: "upi").
PAYMENT_METHODS = {
    "upi": N_("UPI"),
    "card": N_("card"),
    "netbanking": N_("net banking"),
    "wallet": N_("a payment app wallet"),
    "emi": N_("EMI"),
    "cardless_emi": N_("cardless EMI"),
    "paylater": N_("pay later"),
}


def payment_method(method, kind=None):
    """How a payment was made, in words, or None when its kind says it already (at the
    desk, from the portal's wallet) or the method is unknown."""
    if kind in (DESK, WALLET):
        return None
    label = PAYMENT_METHODS.get(str(method or ""))
    if label is None:
        return None
    return gettext(label) if _reading_hindi() else label


def payment_kind(kind):
    """A payment's kind as a patient reads it, in the reader's language."""
    label = PAYMENT_KINDS.get(str(kind))
    if label is None:
        return status_label(kind)
    return gettext(label) if _reading_hindi() else label


def status_label(status):
    """``PARTIALLY_CANCELLED`` → "Partially cancelled" (in the reader's language)."""
    label = str(status or "").replace("_", " ").capitalize()
    if label and _reading_hindi():
        return gettext(label)
    return label


def badge(status):
    """A status as a badge: ``<span class="badge ok">Confirmed</span>`` (a filter, not a
    macro: a list calls it once a row, and a macro call costs three of these)."""
    return Markup(
        f'<span class="badge {escape(status_badge(status))}">{escape(status_label(status))}</span>'
    )


def attempts_badge(attempts, max_attempts):
    """An outbox item's attempts on the jobs page: none plain, some a warning, all of them
    (given up, ``max_attempts``) bad."""
    if not attempts:
        return Markup("0")
    kind = "bad" if attempts >= max_attempts else "warn"
    return Markup(f'<span class="badge {kind}">{int(attempts)}</span>')


def late_booking_notice(start_at):
    """The "cannot be cancelled or moved once paid" warning for a slot this close, or None:
    for a slot not booked yet, so judged by the policy in force (what it would be priced under)."""
    return cancellation.late_booking_notice(start_at - utcnow(), policy())


def late_item_notice(item):
    """The same warning for an item already held: judged by the policy version it was priced
    under (``policies.store.for_booking``), the one its cancellation and move will meet once
    paid, not the one in force (docs/policy.md "A booking keeps its version")."""
    return cancellation.late_booking_notice(
        item.start_at - utcnow(), policy_store.for_booking(item)
    )


def unix_clinic_time(value, tz=None):
    """Unix seconds (a gateway's time) shown like ``clinic_time``."""
    if value is None:
        return "—"
    return clinic_time(datetime.fromtimestamp(int(value), UTC), tz)
