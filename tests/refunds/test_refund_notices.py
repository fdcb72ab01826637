"""What the patient is told about their money when a visit is cancelled, a further refund
is approved or an administrator moves a visit for a fee: each part's amount, where it
went and whether it is there yet, once (the real services on the booking world)."""

import sqlalchemy as sa

from portal.booking import reschedule as rs
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.notify import refund_notices, tasks
from portal.notify.models import Notification
from portal.refunds import approvals as refunds_approvals
from portal.refunds.models import Refund
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    quoted_admin_cancel,
    quoted_cancel,
    settle_refunds,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST (98 h after NOW)


def _told(user_id):
    db.session.expire_all()
    return [
        (n.kind, n.body)
        for n in db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
        )
    ]


def _naming(told, amount):
    """What told of ``amount`` after the visit was confirmed (which says what was paid)."""
    return [
        (k, body) for k, body in told if format_inr(amount) in body and k != "booking.confirmed"
    ]


def _second_admin():
    from portal.accounts.models import User

    admin2 = User(email="admin2@example.com", name="Admin Two", role="admin", phone="+919812345678")
    db.session.add(admin2)
    db.session.commit()
    return admin2


def test_a_refund_to_the_wallet_is_told_as_in_the_wallet(world, users, gateway, clock):
    """The patient chose the wallet: ₹529.50 is in it at once. They were told only "A
    refund of ₹529.50 is on its way." (as if it were going back to the bank), and nothing
    else, ever."""
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item = visit.items[0]
    quoted_cancel(patient, visit.id, [item.id], prefer_wallet=True)
    [refund] = db.session.scalars(sa.select(Refund).where(Refund.booking_id == item.id)).all()
    assert (refund.destination, refund.status, refund.amount) == ("WALLET", "PROCESSED", 52_950)
    told = _naming(_told(patient.id), 52_950)
    # One message for the money, saying it is in the wallet now; not "on its way".
    assert len(told) == 1, told
    [(kind, body)] = told
    assert kind == "booking.cancelled"
    assert "is in your wallet now" in body and "on its way" not in body, body
    # The job again (a retried outbox item) tells nothing twice.
    tasks.on_booking_cancelled(item.id, by="patient", refund=52_950)
    db.session.commit()
    assert len(_naming(_told(patient.id), 52_950)) == 1


def test_a_split_refund_names_each_part_and_the_bank_part_is_told_when_it_arrives(
    world, users, gateway, clock
):
    """Paid ₹200 from the wallet and ₹329.50 online; the clinic cancels (100 %): ₹200 is
    back in the wallet at once, ₹329.50 goes back through Razorpay. The notice says both;
    Razorpay's confirmation later tells only the ₹329.50, once."""
    patient = users(world.patients[0])
    credit_wallet(patient.id, 20_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)], wallet=20_000
    )
    item = visit.items[0]
    quoted_admin_cancel(users(world.admin), item.id, "Doctor unwell", mode="clinic")
    [(kind, body)] = [t for t in _told(patient.id) if t[0] == "booking.cancelled"]
    assert "₹200 is in your wallet now" in body, body
    assert "₹329.50 is on its way back to your original payment method" in body, body
    settle_refunds(gateway)
    told = _told(patient.id)
    processed = [body for kind, body in told if kind == "refund.processed"]
    assert len(processed) == 1 and "₹329.50" in processed[0], processed
    assert len(_naming(told, 20_000)) == 1  # the wallet part: the cancellation notice only


def test_an_approved_further_refund_says_where_each_part_went_once(world, users, gateway, clock):
    """An override above the calculated refund, approved by a second admin: the extra
    ₹514.75 goes back partly to the wallet (what was paid from it) and partly through
    Razorpay. The patient heard "An additional refund … has been approved." with no word of
    where, and a re-run of the job would have said it again (the notice had no key)."""
    patient = users(world.patients[0])
    credit_wallet(patient.id, 20_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)], wallet=20_000
    )
    item = visit.items[0]
    clock.move_to(START - hours(10))
    admin, admin2 = users(world.admin), _second_admin()
    quoted_admin_cancel(admin, item.id, "Doctor was rude, full refund", override=52_950)
    [approval] = refunds_approvals.pending_approvals()
    refunds_approvals.approve_override(admin2, approval.id, "Agreed")
    rows = db.session.scalars(sa.select(Refund).where(Refund.approval_id == approval.id)).all()
    wallet = sum(r.amount for r in rows if r.destination == "WALLET")
    online = sum(r.amount for r in rows if r.destination == "GATEWAY")
    assert wallet and online
    approved = [body for kind, body in _told(patient.id) if kind == "refund.approved"]
    assert len(approved) == 1, approved
    assert f"{format_inr(wallet)} is in your wallet now" in approved[0], approved
    assert f"{format_inr(online)} is on its way back" in approved[0], approved
    refund_notices.refund_approved(item.id, approval.extra, approval_id=approval.id)
    db.session.commit()
    assert len([k for k, _b in _told(patient.id) if k == "refund.approved"]) == 1
    # No "refund processed" for the wallet part: it was told with the approval.
    assert not [b for k, b in _told(patient.id) if k == "refund.processed"]


def test_an_admins_move_paid_from_the_patients_wallet_tells_the_patient_the_fee(
    world, users, gateway, clock
):
    """An administrator moves the consultation 60 h ahead (a 10 % tier fee) and takes the
    fee from the patient's wallet. The patient was told only "Rescheduled: … (was …)"."""
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item = visit.items[0]
    clock.move_to(START - hours(60))
    _, q = rs.quote(users(world.admin), item.id)
    assert q.total > 0
    credit_wallet(patient.id, q.total)
    result = rs.reschedule(
        users(world.admin),
        item.id,
        at(7, 11),
        pay_with="wallet",
        expected_fee=q.total,
        shown_start=item.start_at,
    )
    assert result.moved
    told = [body for kind, body in _told(patient.id) if kind == "booking.rescheduled"]
    assert len(told) == 1, told
    assert f"A fee of {format_inr(q.total)} for the change was paid from your wallet." in told[0]
