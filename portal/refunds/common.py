"""What the refunds use cases share: the error they raise and its messages, the settings
(attempts, back-off, straggler age), who may act, and the row locks."""

import uuid
from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import ADMIN
from portal.booking import claims
from portal.booking.errors import BookingError, NotFound, PermissionDenied
from portal.booking.models import IndividualBooking
from portal.config import setting
from portal.extensions import db
from portal.i18n import N_
from portal.refunds.models import Refund

MSG_ALREADY = N_("This appointment is already cancelled")
MSG_NOT_CONFIRMED = N_("Only confirmed appointments can be cancelled")
MSG_STARTED = N_("This appointment has already started")
MSG_NO_ITEMS = N_("Choose at least one appointment to cancel")
# The refund shown when the patient chose is no longer the one due (a tier's boundary
# passed while the page was open): nothing is cancelled until they confirm the new one.
MSG_REFUND_CHANGED = N_(
    "The refund is now %(now)s, not the %(was)s shown: the appointment is closer to its "
    "start. Check the new amount and confirm again."
)
# A patient's cancellation asked without the refund its page showed (or with it unreadable)
# is asked again: a refund is applied only against a figure the patient saw
# (``cancel.cancel_items_as_patient``'s required ``expected_refund``).
MSG_REFUND_UNSHOWN = N_("Check the refund below, then confirm to cancel.")
# The administrator's, likewise (``cancel.cancel_as_admin``'s required ``expected_refund``;
# admin pages are English only): also a refund shown for another mode or override.
MSG_ADMIN_REFUND_UNSHOWN = "Check the refund for what you chose, then confirm."
MSG_REASON = N_("Give a reason for the cancellation")
MSG_SECOND_ADMIN = N_("A different administrator must approve this refund")
MSG_DECIDED = N_("This request has already been decided")
MSG_NOTHING_LEFT = N_("Nothing is left to refund for this appointment")
MSG_NOT_FAILED = N_("Only a failed refund can be retried or sent to the wallet")
MSG_AT_GATEWAY = N_(
    "Razorpay has this refund after all and will pay it: it was not sent to the wallet"
)
# Admin pages are English: not translated. Said of a failed refund sent to the wallet and
# of a further refund whose money would go there (``money._planned``).
MSG_CLOSED_ACCOUNT = (
    "This patient has closed their account: the refund cannot go to their wallet, where "
    "nobody could spend it or be paid it. Send it back through Razorpay, or pay the "
    "patient by other means and record it in the note."
)
MSG_GATEWAY_UNKNOWN = N_(
    "Razorpay could not be asked whether it has this refund: try again in a few minutes"
)
MSG_MODE = N_("Choose who the cancellation is for")
MSG_PENALTY_PROVIDER = N_("Choose the provider who cancelled")
MSG_FURTHER_NOT_CANCELLED = N_("A further refund is only for a cancelled appointment")
MSG_FURTHER_AMOUNT = N_("Enter an amount above ₹0")
MSG_FURTHER_TOO_MUCH = N_("Refund amount cannot exceed what is left to refund: %(left)s")
MSG_FURTHER_PENDING = N_("A further refund for this appointment already awaits approval")

GATEWAY_MINIMUM = 100  # Razorpay refunds at least ₹1; a smaller gateway part goes to the wallet
ADMIN_MODES = {"patient": "admin", "clinic": "clinic", "provider": "provider"}


class CancellationError(BookingError):
    """A cancellation or refund rule was broken; ``message`` for the person."""


def whole_paise(value):
    """A figure a page showed, as the use case was given it: a whole number of paise
    (not a bool, a float or text). Anything else is no figure shown."""
    return isinstance(value, int) and not isinstance(value, bool)


# --- settings ------------------------------------------------------------------------------


def _config(name, default):
    return setting(name)  # the default lives in portal.config


def max_attempts():
    """Gateway attempts per refund (network errors) and refunds per chain (refund.failed)."""
    return int(_config("REFUND_MAX_ATTEMPTS", 3))


def retry_delay(attempt):
    """Back-off before the next attempt after ``attempt`` failed ones: 30 s, 2 min, 8 min…

    Stored as ``next_retry_at`` and read by the poll across jobs, not an in-process retry
    loop, so tenacity's wait functions (which need a retry call state) do not fit here."""
    base = int(_config("REFUND_RETRY_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(attempt - 1, 0))


def straggler_age():
    """A gateway refund still pending after this long is fetched from Razorpay by the poll."""
    return timedelta(minutes=int(_config("REFUND_STRAGGLER_MINUTES", 10)))


# --- who may act, and the locks ------------------------------------------------------------


def role(actor):
    return getattr(actor, "role", None)


def require_admin(actor):
    if role(actor) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


def lock_query(query):
    query = query.execution_options(populate_existing=True)
    if claims.is_postgres():
        query = query.with_for_update()
    return query


def lock_items(visit_id):
    """Every item of the visit, row-locked (PostgreSQL) and freshly read, by id."""
    rows = db.session.scalars(
        lock_query(
            sa.select(IndividualBooking)
            .where(IndividualBooking.master_id == visit_id)
            .order_by(IndividualBooking.id)
        )
    ).all()
    return {item.id: item for item in rows}


def lock_refund(refund_id):
    return db.session.scalar(lock_query(sa.select(Refund).where(Refund.id == refund_id)))


def item_for_admin_or_provider(item_id):
    item = db.session.get(IndividualBooking, item_id) if item_id is not None else None
    if item is None:
        raise NotFound("booking")
    return item


def new_idempotency_key():
    return f"rfnd-{uuid.uuid4().hex}"


def replacement(refund, actor, amount=None, **fields):
    """A new refund row (a new idempotency key) standing in for ``refund``, which stays as
    it is and is marked superseded. ``fields``: where the new one goes and its status;
    ``amount``: a part of it (a settlement's, ``refunds.outside``), else all of it. The
    payment it gives back stays named (``payment_id``), so a visit's money still knows it
    for that payment's refund (a closed account's captured-after refund left out)."""
    fields.setdefault("payment_id", refund.payment_id)
    refund.superseded = True
    db.session.flush()  # the old row leaves the totals before the new one is counted
    row = Refund(
        booking_id=refund.booking_id,
        visit_id=refund.visit_id,
        patient_id=refund.patient_id,
        cancellation_id=refund.cancellation_id,
        approval_id=refund.approval_id,
        reschedule_id=refund.reschedule_id,
        amount=refund.amount if amount is None else amount,
        idempotency_key=new_idempotency_key(),
        retry_of_id=refund.id,
        created_by_id=getattr(actor, "id", None),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def hours(item, now):
    return item.start_at - now
