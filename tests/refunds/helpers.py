"""Helpers of the refund tests: book and pay a visit through the real services, settle the
sandbox's refunds, read ledger transactions."""

import re
from datetime import timedelta

import sqlalchemy as sa

from portal.booking import checkout, lookup, visits
from portal.extensions import db
from tests.booking.factories import at, quoted_checkout

# The patient's refusal as POLICY.md words it, under the default policy (the message names
# the policy's cut-off: ``domain.cancellation.MSG_PATIENT_TOO_LATE``).
PATIENT_TOO_LATE = "Cancellation not allowed within 24 hours of appointment"
# Likewise the reschedule refusal (``domain.reschedule.MSG_TOO_LATE_HOURS``).
RESCHEDULE_TOO_LATE = "Reschedule not allowed within 24 hours of appointment"


def consult_and_lab(world):
    """The usual two-item visit's slots for ``book_and_pay``: a consultation at 10:00 and a
    lab test at 11:00, four days ahead."""
    return [
        (world.consult, [world.doctors[0]], at(4, 10)),
        (world.lab, [world.lab_provider], at(4, 11)),
    ]


def book_and_pay(world, patient, gateway, slots, *, coupon=None, wallet=0, dependent_id=None):
    """Hold ``slots`` [(service id, [provider ids], start)] in one visit, apply the coupon
    and ``wallet`` paise, pay the rest on the sandbox checkout; returns the visit."""
    first = None
    for service_id, provider_ids, start in slots:
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=service_id,
            provider_ids=provider_ids,
            clinic_id=world.clinic,
            start_at=start,
            dependent_id=dependent_id,
            visit_id=first.master_id if first else None,
        )
        first = first or item
    if coupon:
        visits.apply_coupon(patient, first.master_id, coupon)
    result = quoted_checkout(patient, first.master_id, wallet, callback_url="http://portal.test/cb")
    if result.redirect_url:
        checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
        gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(first.master_id)
    assert visit.status == "CONFIRMED"
    return visit


def booked_consult(world, users, gateway, start):
    """The first patient's consultation with the first doctor at ``start``, booked and paid
    on the sandbox, every user given the test password (to sign in as): (visit id, item id,
    invoice number, the patient's email), the session let go (the pages read it afresh)."""
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    ids = visit.id, visit.items[0].id, visit.invoice_no, patient.email
    db.session.remove()
    return ids


def block(html, element_id, tag="tr"):
    """The element with this id in ``html``, up to its ``tag``'s first closing tag after it."""
    found = re.search(rf'id="{element_id}".*?</{tag}>', html, re.S)
    assert found, f"no #{element_id} on the page"
    return found.group(0)


def settle_refunds(gateway, seconds=10):
    """Let the sandbox finish its refunds and deliver the webhooks into the portal."""
    from portal.refunds.models import Refund

    stuck = db.session.scalars(
        sa.select(Refund).where(
            Refund.destination == "GATEWAY",
            Refund.status == "PENDING",
            Refund.razorpay_refund_id.is_(None),
        )
    ).all()
    assert not stuck, [(r.id, r.attempts, r.failure_reason) for r in stuck]
    gateway.sandbox.advance(seconds)
    results = gateway.deliver()
    assert all(status == 200 for _id, status in results), results
    db.session.expire_all()
    return results


def ledger_kinds(kind):
    from portal.ledger.models import LedgerTransaction

    return db.session.scalars(
        sa.select(LedgerTransaction).where(LedgerTransaction.kind == kind)
    ).all()


def hours(h, minutes=0):
    return timedelta(hours=h, minutes=minutes)


def with_known_passwords():
    """Every user gets the test password, so web tests can sign in as anyone."""
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from tests.conftest import PASSWORD

    for user in db.session.scalars(sa.select(User)):
        user.password_hash = hash_password(PASSWORD)
    db.session.commit()


def login(client, email):
    from tests.conftest import PASSWORD

    r = client.post("/auth/login", data={"email": email, "password": PASSWORD})
    assert r.status_code in (302, 303)


def quoted_move(actor, item_id, new_start, **kwargs):
    """A move as a page makes it: the fee quoted for ``actor`` now (with the same override
    and moment) and the booking's start, then ``reschedule`` confirming both (its required
    ``expected_fee`` and ``shown_start``). A refusal the quote carries (too late, not
    confirmed) is the move's to raise."""
    from portal.booking import reschedule as rs

    item, shown = rs.quote(
        actor, item_id, admin_override=kwargs.get("admin_override", False), now=kwargs.get("now")
    )
    return rs.reschedule(
        actor,
        item_id,
        new_start,
        expected_fee=shown.total,
        shown_start=item.start_at,
        **kwargs,
    )


def move_paid_at_gateway(world, gateway, clock):
    """A consultation booked and paid for day 4 at 10:00, a move to day 7 at 11:00 asked
    60 h before (a fee), paid on the gateway's checkout but its webhook not delivered:
    ``SimpleNamespace(patient_id, item_id, resched_id, fee, expires_at, payment_id)``.
    Run inside an app context on a gateway that does not deliver (the race tests)."""
    from types import SimpleNamespace

    from portal.accounts.models import User
    from tests.booking.factories import at

    patient = db.session.get(User, world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
    ).items[0]
    clock.move_to(at(4, 10) - timedelta(hours=60))
    row = quoted_move(
        patient, item.id, at(7, 11), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    return SimpleNamespace(
        patient_id=patient.id,
        item_id=item.id,
        resched_id=row.id,
        fee=row.total,
        expires_at=row.expires_at,
        payment_id=gateway.pay(row.razorpay_order_id)["razorpay_payment_id"],
    )


def cancel_as_patient(client, visit_id, items, destination="original", **data):
    """The patient's cancellation as the page makes it: the refund of the chosen items
    previewed first, then posted with the refund shown (a post without one is asked again)."""
    query = "&".join([f"items={i}" for i in items] + [f"destination={destination}"])
    page = client.get(f"/me/visits/{visit_id}/cancel?{query}").get_data(as_text=True)
    shown = re.search(r'name="shown_refund" value="(\d+)"', page)
    form = {"items": list(items), "destination": destination, **data}
    if shown:
        form["shown_refund"] = shown.group(1)
    return client.post(f"/me/visits/{visit_id}/cancel", data=form)


FIELDS = ("shown_fee", "shown_start")


def move_fields(html):
    """What a move page states and its form posts back: ``shown_fee``, ``shown_start``
    (those it has: a refused move's page shows no fee)."""
    found = {name: re.search(rf'name="{name}" value="([^"]*)"', html) for name in FIELDS}
    return {name: m[1] for name, m in found.items() if m}


def post_move(client, url, data):
    """Post a move form (``url``: its page) as the page does: with the fee and the start
    it shows (``shown_fee``, ``shown_start``), read from the page; ``data`` may override
    them."""
    if "shown_fee" not in data or "shown_start" not in data:
        data = {**move_fields(client.get(url).text), **data}
    return client.post(url, data=data)


def quoted_cancel(patient, visit_id, item_ids, **kwargs):
    """A patient's cancellation as the page makes it: the refund previewed for these items
    now (same destination and moment), then ``cancel_items_as_patient`` confirming that
    total (its required ``expected_refund``). A refusal (too late, a team appointment,
    already cancelled) is the cancellation's to raise."""
    from portal.refunds import cancel, previews

    shown = previews.preview_cancellation(
        patient,
        visit_id,
        item_ids,
        prefer_wallet=kwargs.get("prefer_wallet", False),
        now=kwargs.get("now"),
    )
    return cancel.cancel_items_as_patient(
        patient, visit_id, item_ids, expected_refund=shown.total_refund, **kwargs
    )


def quoted_admin_cancel(admin, item_id, reason, **kwargs):
    """An administrator's cancellation as the page makes it: the refund now previewed for
    this mode, override and destination (same moment), then ``cancel_as_admin`` confirming
    it (its required ``expected_refund``). A refusal (a short note, already cancelled) is
    the cancellation's to raise."""
    from portal.refunds import cancel, previews

    override = kwargs.get("override")
    shown = previews.preview_admin(
        admin,
        item_id,
        kwargs.get("mode", "patient"),
        override=override,
        override_reason=reason if override is not None else None,
        prefer_wallet=kwargs.get("prefer_wallet", False),
        now=kwargs.get("now"),
    )
    return cancel.cancel_as_admin(admin, item_id, reason, expected_refund=shown.refund, **kwargs)


def quoted_provider_cancel(provider_user, item_id, reason, **kwargs):
    """A provider's cancellation as the page makes it: the start, refund and penalty its
    page states now (``refunds.shown.shown_for``), then ``cancel_as_provider`` confirming
    them (its required ``shown``). A refusal (after the start, not theirs) is the
    cancellation's to raise."""
    from portal.booking.models import IndividualBooking
    from portal.refunds import cancel, previews, shown

    item = db.session.get(IndividualBooking, item_id)
    stated = shown.shown_for(item, previews.preview_provider(item, kwargs.get("now")))
    return cancel.cancel_as_provider(provider_user, item_id, reason, shown=stated, **kwargs)
