"""Payment links for visits an admin made: creating one, sending it again, and what
happens when one expires unpaid — a new link while the first start is far enough ahead
(the hold kept), else the visit lapses.

Why here and not in ``portal.payments``: a link pays for a visit, and issuing or
replacing one fixes the visit's price, abandons its checkout and extends or ends its hold
— booking decisions. ``portal.payments`` keeps the payment records this module writes.

* ``booking.expire_payment_links`` (every 60 s) finds PENDING links whose ``expires_at``
  passed, and Razorpay's ``payment_link.expired`` webhook (``expired_at_gateway``)
  reports one; either queues the link's one ``booking.payment_link_expired`` job
  (``queue_expiry``: dedupe key per payment), so whichever comes first handles the
  expiry and the other changes nothing.
* The job first asks Razorpay what became of the link (``link_checks.settle``): a link
  paid, its webhooks lost, is captured as ``payment_link.paid`` would capture it and
  nothing expires; one still payable there is cancelled. A gateway that cannot say is
  asked again with the outbox's backoff (the slots held meanwhile) until the visit's first
  start less the link window or the outbox's last attempt, then the link ends unchecked.
  A link another hand ended while the job waited (a desk payment, the patient's checkout)
  is not this job's to expire: the retry changes nothing (``_ended_by_expiry``).
  Else the job marks the link EXPIRED (timeline ``link.expired``), flags the visit for
  admins (LINK_EXPIRED), and either keeps the hold and issues a new link through
  ``create_payment_link`` or expires the visit. The patient hears each step
  (``portal.events.payment_link_*``). A job whose last attempt fails all the same (an
  error no retry changes) ends the link there (``_give_up``): the visit lapses, flagged
  LINK_EXPIRY_FAILED."""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa

from portal import events, jobs
from portal.accounts.models import ADMIN, User
from portal.audit.service import record
from portal.booking import lifecycle, link_checks, prices
from portal.booking.access import get, require_admin
from portal.booking.checkout import MSG_GATEWAY_DOWN, MSG_NOTHING_TO_PAY, paying
from portal.booking.errors import BookingError, PaymentError
from portal.booking.models import (
    ATTENTION_LINK_EXPIRED,
    ATTENTION_LINK_EXPIRY_FAILED,
    MasterBooking,
)
from portal.config import policy, public_url_for
from portal.db import unit_of_work, utcnow
from portal.domain import schedule
from portal.domain.states import BookingStatus, PaymentStatus
from portal.extensions import db
from portal.gateway import AuthenticationFailed, BadRequest, GatewayError, get_payin
from portal.i18n import N_
from portal.payments import records
from portal.payments.models import LINK, Payment, PaymentAttempt

log = logging.getLogger("portal.booking.links")

MSG_LINK_TOO_LATE = N_(
    "The appointment is too soon for a payment link; take the payment at the desk"
)
# Admin pages are English (no N_): the admin's answer to a second click.
MSG_LINK_PENDING = (
    "This visit already has a payment link waiting to be paid, sent to the patient; no "
    "second link was made. To send the same link again, use 'Resend to the patient'."
)
MSG_RESEND_EXPIRED = (
    "This payment link has expired, so it was not sent again. The portal replaces it with "
    "a new link while the appointment is far enough ahead; reload the page in a minute."
)
MSG_RESEND_REFUSED = (
    "This payment link can no longer be sent (paid or expired at Razorpay); nothing was "
    "sent. Reload the page in a minute to see what became of it."
)
EXPIRE_LINKS = "booking.expire_payment_links"
LINK_EXPIRED = "booking.payment_link_expired"
LINK_ENDED = "link.expired"  # the timeline event of a link its expiry job ended
LINK_GAVE_UP = "link.expiry_gave_up"  # ... of a link ended when that job gave up


def create_payment_link(admin, visit_id, *, renewing=False):
    """A Razorpay payment link for an admin-made visit. Expiry = min(now + 24 h, first start
    − 2 h), at least 15 min ahead (else BookingError: take the payment at the desk). The
    hold lasts until the link expires. ``renewing``: the expiry job's new link, a new offer,
    so a coupon that lapsed meanwhile leaves the visit (``coupons.detach_lapsed``) where
    the admin's own click is refused with its reason (the admin removes it on the page).
    A link already sent that can still be paid at this price is not replaced: LinkPending
    (the page offers to send it again, ``resend_payment_link``)."""
    require_admin(admin)
    with paying(admin, visit_id) as (visit, session):
        now = utcnow()
        pending = _usable_link(visit, now)
        if pending is not None:
            raise LinkPending(pending)
        expiry = schedule.payment_link_expiry(now, visit.first_start, policy())
        if expiry is None:
            raise BookingError(MSG_LINK_TOO_LATE)
        lifecycle.abandon_checkout(visit, "payment link created", admin)
        q, _ = prices.fix_price(visit, 0, detach_lapsed_by=admin if renewing else None)
        if q.amount_due == 0:
            raise BookingError(MSG_NOTHING_TO_PAY)
        patient = visit.patient
        customer = {"name": patient.name, "email": patient.email}
        if patient.phone:
            customer["contact"] = patient.phone
        payin = get_payin()
        # Each pass past a stale link records it, so the next asks under a new reference
        # and gets a fresh link; three passes bound it against a gateway that misbehaves.
        for _ in range(3):
            payment = Payment(
                kind=LINK,
                amount=q.amount_due,
                status=PaymentStatus.PENDING,
                expires_at=expiry,
                created_by_id=admin.id,
            )
            visit.payments.append(payment)
            session.flush()
            try:
                link = payin.create_payment_link(
                    q.amount_due,
                    reference_id=link_reference(visit),
                    expire_by=expiry,
                    description=f"Clinic visit {visit.number}",
                    customer=customer,
                    notify={"sms": bool(patient.phone), "email": True},
                    notes={"visit": visit.number, "portal_payment": str(payment.id)},
                    callback_url=link_return_url(),
                )
            except BadRequest as exc:
                if exc.field == "expire_by":
                    # Razorpay's clock says under 15 minutes ahead (ours said enough, a
                    # moment earlier): the desk, as the portal's own rule would say.
                    raise BookingError(MSG_LINK_TOO_LATE) from exc
                raise PaymentError(MSG_GATEWAY_DOWN) from exc
            except GatewayError as exc:
                raise PaymentError(MSG_GATEWAY_DOWN) from exc
            payment.razorpay_link_id, payment.link_url = link["id"], link.get("short_url")
            if _reusable(link, q.amount_due, expiry, now + policy().link_min_lifetime):
                break
            _record_stale(payment, link)
        else:
            raise PaymentError(MSG_GATEWAY_DOWN)
        if int(link.get("expire_by") or 0) not in (0, int(expiry.timestamp())):
            expiry = payment.expires_at = _when(link["expire_by"])  # an earlier try's link
        records.add_attempt(
            payment,
            "link.created",
            PaymentStatus.PENDING,
            detail={"link": link["id"], "expire_by": expiry.isoformat()},
        )
        visit.hold_expires_at = expiry
        lifecycle.refresh_status(visit)
        record(
            admin,
            "payment.link_created",
            "visit",
            visit.id,
            after={
                "payment_id": payment.id,
                "amount": payment.amount,
                "link": link["id"],
                "expires_at": expiry.isoformat(),
            },
        )
    return payment


class LinkPending(BookingError):
    """The visit's link sent already can still be paid at the price asked now
    (``payment``): a second one is not made."""

    def __init__(self, payment):
        super().__init__(MSG_LINK_PENDING)
        self.payment = payment


def _usable_link(visit, now):
    """The visit's pending link, when the patient can still pay it at the visit's price
    now. A new link would replace it (cancelled at Razorpay) in the patient's inbox: a
    double click, or two admins on one page, sent two links and the first went dead."""
    link = visit.pending_payment
    if (
        link is None
        or link.kind != LINK
        or not link.razorpay_link_id
        or link.expires_at is None
        or link.expires_at <= now
    ):
        return None
    return link if link.amount == prices.desk_quote(visit).amount_due else None


def link_return_url():
    """Where Razorpay sends the patient's browser once the link is paid (its
    ``callback_url``; the page is ``complete_link_callback``'s). On the site's configured
    ``PUBLIC_URL``, never a request's address: the renewal job has no request, and the SMS
    is opened on a phone, not where the admin clicked."""
    return public_url_for("public.payment_link_paid")


def link_reference(visit):
    """The reference_id of the visit's next link: its number and a count of the links the
    portal has recorded for it. A try whose answer was lost rolls back with its payment
    row, so the retry asks under the same reference, and the adapter hands back the link
    Razorpay made then (reference_id is unique there) instead of a second one."""
    made = db.session.scalar(
        sa.select(sa.func.count(Payment.id)).where(
            Payment.master_id == visit.id,
            Payment.kind == LINK,
            Payment.razorpay_link_id.is_not(None),
        )
    )
    return f"{visit.number}-L{made + 1}"


def _reusable(link, amount, expiry, soonest):
    """A link found under the reference can stand for the one asked for: same amount,
    still payable (or paid: its webhook will find the row), expiring no later than the
    policy allows now and no sooner than ``soonest`` (the policy's 15 minutes ahead).
    Otherwise the visit or the clock moved on since the lost try."""
    expire_by = int(link.get("expire_by") or 0)
    return (
        link.get("status") in ("created", "paid")
        and int(link.get("amount") or 0) == amount
        and expire_by <= int(expiry.timestamp())
        and (link.get("status") == "paid" or expire_by >= int(soonest.timestamp()))
    )


def _record_stale(payment, link):
    """An earlier try's link that cannot stand for this one: kept on ``payment`` as an
    ended link (a payment of it is then captured as a late one: the visit revived or the
    money to the wallet) and cancelled at Razorpay."""
    payment.amount = int(link["amount"])
    if link.get("expire_by"):
        payment.expires_at = _when(link["expire_by"])
    records.end(payment, PaymentStatus.EXPIRED, "link.superseded")
    if link.get("status") == "created":
        lifecycle.cancel_link_at_gateway(payment)


def _when(unix):
    return datetime.fromtimestamp(int(unix), UTC)


def adopt_link(link):
    """A link of ours no payment row holds (made at Razorpay, its creation's answer lost,
    never asked for again), found by the visit its notes name: recorded on that visit as
    an ended link, so that a payment of it is captured as a late one. ``link`` is the
    gateway's record (fetched). None when it is not a visit's link of ours."""
    notes = link.get("notes")
    number = notes.get("visit") if isinstance(notes, dict) else None
    if not number or not str(link.get("reference_id") or "").startswith(f"{number}-"):
        return None
    visit_id = db.session.scalar(sa.select(MasterBooking.id).where(MasterBooking.number == number))
    if visit_id is None:
        return None
    with unit_of_work():
        visit = lifecycle.lock_visit(visit_id)
        known = records.find_payment(link_id=link["id"])
        if known is not None:  # recorded meanwhile (the admin's retry found it)
            return known
        payment = Payment(
            kind=LINK,
            amount=int(link["amount"]),
            status=PaymentStatus.PENDING,
            razorpay_link_id=link["id"],
            link_url=link.get("short_url"),
            expires_at=_when(link["expire_by"]) if link.get("expire_by") else None,
        )
        visit.payments.append(payment)
        records.end(payment, PaymentStatus.EXPIRED, "link.orphan_found")
        log.warning("payment link %s of visit %s had no payment row", link["id"], number)
    return payment


def resend_payment_link(admin, payment_id):
    """The pending link sent to the patient again (SMS when there is a phone, and mail).
    A link past its expiry (its row PENDING until the expiry job runs), or one Razorpay
    refuses to send (paid or expired there), is refused with that reason: "payments are
    unavailable", which no retry changes, was said before (review finding)."""
    require_admin(admin)
    with unit_of_work():
        payment = get(Payment, payment_id, "payment")
        if (
            payment.kind != LINK
            or payment.status != PaymentStatus.PENDING
            or not payment.razorpay_link_id
        ):
            raise BookingError("Only a pending payment link can be sent again")
        if payment.expires_at is not None and payment.expires_at <= utcnow():
            raise BookingError(MSG_RESEND_EXPIRED)
        payin = get_payin()
        sent = []
        try:
            for medium in ("sms", "email"):
                if medium == "sms" and not payment.visit.patient.phone:
                    continue
                payin.notify_payment_link(payment.razorpay_link_id, medium)
                sent.append(medium)
        except AuthenticationFailed as exc:  # our keys refused: payments are down indeed
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        except BadRequest as exc:
            raise BookingError(MSG_RESEND_REFUSED) from exc
        except GatewayError as exc:
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        records.add_attempt(payment, "link.resent", PaymentStatus.PENDING, detail={"media": sent})
        record(admin, "payment.link_resent", "payment", payment.id, after={"media": sent})
    return payment


# --- expiry and renewal ----------------------------------------------------------------------


@jobs.periodic(EXPIRE_LINKS, every=60)
def expire_payment_links(now=None, limit=500):
    now = now or utcnow()
    with unit_of_work():
        ids = db.session.scalars(
            sa.select(Payment.id)
            .where(
                Payment.kind == LINK,
                Payment.status == PaymentStatus.PENDING,
                Payment.expires_at <= now,
            )
            .order_by(Payment.expires_at)
            .limit(limit)
        ).all()
        for payment_id in ids:
            queue_expiry(payment_id)
    return len(ids)


def queue_expiry(payment_id, reported=False):
    """The link's expiry handled once, by its one ``LINK_EXPIRED`` job, whoever noticed it
    first: the sweep, or Razorpay's ``payment_link.expired`` webhook (``reported``: the
    link has ended at the gateway, whatever our clock says). Returns the outbox item's
    id, or None when the job was queued already."""
    return jobs.enqueue(
        LINK_EXPIRED,
        payment_id=payment_id,
        reported=reported,
        dedupe_key=f"link-expired:{payment_id}",
    )


def expired_at_gateway(payment):
    """Razorpay's ``payment_link.expired`` (sent at the link's expiry, usually before the
    sweep's next run): a pending link's expiry job queued, as the sweep would queue it.
    A link ended already (expired, replaced, paid) changes nothing."""
    with unit_of_work():
        lifecycle.lock_visit(payment.master_id)
        db.session.refresh(payment)
        if payment.kind == LINK and payment.status == PaymentStatus.PENDING:
            queue_expiry(payment.id, reported=True)


def _acting_admin(payment):
    """Who issues the replacement link: the admin who made the first, else the first
    active admin (recorded as the actor in the audit log)."""
    creator = db.session.get(User, payment.created_by_id) if payment.created_by_id else None
    if creator is not None and creator.role == ADMIN and creator.active:
        return creator
    return db.session.scalar(
        sa.select(User).where(User.role == ADMIN, User.active.is_(True)).order_by(User.id).limit(1)
    )


def _checked_at_gateway(payment, visit, now):
    """Razorpay asked what became of the link before it is ended (``link_checks.settle``):
    its payments captured, the link no longer payable there. True when it answered. When
    it cannot say: ``RetryLater`` (the outbox's backoff) while the visit may wait
    (``schedule.link_check_wait_ends``: its first start less the link window) and the
    outbox has attempts left; after that False, and the link ends unchecked (the visit
    flagged LINK_EXPIRED by the caller). On the last attempt too: an item that gave up
    would leave the link PENDING and its visit unflagged, and the job's dedupe key keeps
    the sweep and the webhook from queueing it again."""
    try:
        link_checks.settle(payment)
    except (GatewayError, link_checks.Undecided) as exc:
        first_start = visit.first_start
        if (
            visit.is_open
            and first_start is not None
            and now < schedule.link_check_wait_ends(first_start, policy())
            and not jobs.last_attempt()
        ):
            raise jobs.RetryLater(
                f"payment link {payment.razorpay_link_id} not checked at the gateway: {exc}"
            ) from exc
        if isinstance(exc, link_checks.Undecided):
            # Razorpay says paid, yet no payment of it confirms: money may have been taken.
            log.error(
                "payment link %s ended unchecked though Razorpay says it is paid; visit %s "
                "flagged LINK_EXPIRED for an admin to check: %s",
                payment.razorpay_link_id,
                visit.number,
                exc,
            )
        else:
            log.warning(
                "payment link %s ended unchecked (the gateway could not say): %s",
                payment.razorpay_link_id,
                exc,
            )
        return False
    return True


def _end_link(payment_id, now, reported=False):
    """Step 1: the link checked at Razorpay (paid: captured, and nothing more happens),
    then EXPIRED, the visit flagged, and either the hold kept for a new link
    (returns the admin who issues it) or the visit expired (returns None). A re-run after
    the new link was made only sends it again (returns None); a link another hand ended
    meanwhile (EXPIRED, but not by this job) changes nothing (returns None). ``reported``:
    Razorpay said the link expired, so it is at least the link's expiry now (Razorpay's
    clock may run ahead of ours): the outcome is the sweep's at that moment."""
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return None
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    if reported and payment.expires_at is not None:
        now = max(now, payment.expires_at)
    if payment.status == PaymentStatus.PENDING:
        if payment.expires_at is not None and payment.expires_at > now:
            return None  # extended meanwhile
        checked = _checked_at_gateway(payment, visit, now)
        if payment.status != PaymentStatus.PENDING:
            return None  # paid after all: confirmed as its webhook would have confirmed it
        records.end(payment, PaymentStatus.EXPIRED, LINK_ENDED)
        if not checked:  # not cancelled at Razorpay yet: the job does it, and reads a refusal
            lifecycle.cancel_link_at_gateway(payment)
    elif payment.status != PaymentStatus.EXPIRED or not _ended_by_expiry(payment):
        # Paid, failed, or ended by someone else while a retry waited (a desk payment, the
        # patient's checkout, a cancel): not this link's expiry, so no flag, no notice and
        # no new link, which would abandon the patient's open order (review finding).
        return None
    lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRED)
    # Not a capture that paid for nothing (the wrong amount on this link: a row of its own).
    newer = [
        p
        for p in visit.payments
        if p.kind == LINK and p.id > payment.id and not records.paid_for_nothing(p)
    ]
    if newer:
        if newer[-1].status == PaymentStatus.PENDING:
            events.payment_link_issued.send("booking", visit_id=visit.id, payment_id=newer[-1].id)
        return None
    first_start = visit.first_start
    admin = _acting_admin(payment)
    renewable = (
        visit.is_open
        and first_start is not None
        and admin is not None
        and any(i.status == BookingStatus.SCHEDULED for i in visit.items)
        and schedule.payment_link_expiry(now, first_start, policy()) is not None
    )
    if not renewable:
        if visit.is_open:
            lifecycle.expire(visit, reason="payment link expired")
        events.payment_link_expired.send(
            "booking", visit_id=visit.id, payment_id=payment.id, renewed=False
        )
        return None
    # Keep the slots while the new link is made (the old hold ended with the old link).
    visit.hold_expires_at = now + lifecycle.hold_lifetime()
    lifecycle.refresh_status(visit)
    events.payment_link_expired.send(
        "booking", visit_id=visit.id, payment_id=payment.id, renewed=True
    )
    return admin


def _ended_by_expiry(payment):
    """The EXPIRED link was ended by its expiry job (its timeline's ``LINK_ENDED``): a
    row ends once, so no other ending can have followed it."""
    return (
        db.session.scalar(
            sa.select(PaymentAttempt.id)
            .where(PaymentAttempt.payment_id == payment.id, PaymentAttempt.event == LINK_ENDED)
            .limit(1)
        )
        is not None
    )


def _after_failed_attempt(exc, payment_id, reported=False):
    """``jobs.job``'s ``on_failure`` (its own unit of work, the attempt rolled back): the
    item's last attempt ends the link (``_give_up``); an earlier one the gateway's absence
    rolled back keeps the slots held for the retry (``_hold_while_retried``)."""
    if not jobs.last_attempt():
        _hold_while_retried(exc, payment_id)
        return
    try:
        with unit_of_work():  # a savepoint: failing too, it leaves the item as it gave up
            _give_up(exc, payment_id, reported)
    except Exception:
        log.exception("payment link of payment %s left PENDING by its expiry job", payment_id)


def _give_up(exc, payment_id, reported=False):
    """The item's last attempt failed for a reason no retry changed (an error in the check
    or in renewing; the gateway's absence is decided within the attempt). Left so, the link
    stayed PENDING for good, its dedupe key keeping the sweep and the webhook from queueing
    it again, and its visit held its slots (review finding). So it ends here, unchecked:
    EXPIRED (``LINK_GAVE_UP``, which a later retry of the item leaves alone), cancelled at
    Razorpay (a payment made on it is then captured as a late one), the visit expired (its
    slots and coupon use released once: an expired visit has nothing left to release), the
    patient told, and the visit flagged LINK_EXPIRY_FAILED (a HIGH alert; the job's error
    is on the jobs page)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    ran_out = payment.expires_at is not None and (reported or payment.expires_at <= utcnow())
    if payment.kind != LINK or payment.status != PaymentStatus.PENDING or not ran_out:
        return  # ended (paid, replaced) or extended meanwhile: not this job's to end
    records.end(payment, PaymentStatus.EXPIRED, LINK_GAVE_UP)
    lifecycle.cancel_link_at_gateway(payment)
    lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRY_FAILED)
    log.error(
        "payment link %s of visit %s ended unchecked: its expiry job gave up: %r",
        payment.razorpay_link_id,
        visit.number,
        exc,
    )
    if visit.is_open:
        lifecycle.expire(visit, reason="payment link expired; its expiry job gave up")
        events.payment_link_expired.send(
            "booking", visit_id=visit.id, payment_id=payment.id, renewed=False
        )


def _hold_while_retried(exc, payment_id):
    """After an attempt the gateway's absence rolled back (``RetryLater``: the link not
    checked, or no new link made), the visit's hold is the link's expiry, past: a booking
    of the same time would let it go (``holds.clear_stale_holds``), a visit perhaps paid
    expired unasked. So it is held until the wait ends (``schedule.link_check_wait_ends``)
    or the retry decides, whichever comes first."""
    if not isinstance(exc, jobs.RetryLater):
        return
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    first_start = visit.first_start
    if payment.status != PaymentStatus.PENDING or not visit.is_open or first_start is None:
        return
    until = schedule.link_check_wait_ends(first_start, policy())
    if visit.hold_expires_at is not None and visit.hold_expires_at < until:
        visit.hold_expires_at = until


@jobs.job(LINK_EXPIRED, on_failure=_after_failed_attempt)
def payment_link_expired(payment_id, reported=False):
    """One expired link (queued by ``queue_expiry``): 1) the link ended (hold kept or visit
    expired, patient told); 2) the new link; 3) the new link sent — or, when none can be
    made, the visit expired. The steps nest in the job's transaction, so a gateway outage
    (``RetryLater``) rolls all of them back: the re-run asks under the same reference
    (``link_reference``) and gets the link a lost answer left at Razorpay, never a second
    one."""
    with unit_of_work():
        admin = _end_link(payment_id, utcnow(), reported)
        admin_id = admin.id if admin is not None else None
        visit_id = db.session.get(Payment, payment_id).master_id if admin_id else None
    if admin_id is None:
        return
    admin = db.session.get(User, admin_id)
    try:
        new = create_payment_link(admin, visit_id, renewing=True)
    except LinkPending:  # a payable link sent (none while step 1's lock holds): it stands
        return
    except BookingError as exc:
        # The gateway away (PaymentError): try again with the outbox's backoff, but on the
        # last attempt no new link can be made, so the visit lapses (not a failed job).
        if isinstance(exc, PaymentError) and not jobs.last_attempt():
            raise jobs.RetryLater(exc.message) from exc
        log.warning("no new payment link for visit %s: %s", visit_id, exc.message)
        with unit_of_work():
            visit = lifecycle.lock_visit(visit_id)
            if visit is not None and visit.is_open:
                lifecycle.expire(visit, reason=f"payment link expired; no new link: {exc.message}")
            events.payment_link_lapsed.send(
                "booking", visit_id=visit_id, payment_id=payment_id, reason=exc.message
            )
        return
    with unit_of_work():
        events.payment_link_issued.send("booking", visit_id=visit_id, payment_id=new.id)
