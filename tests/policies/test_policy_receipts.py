"""A tax document states the GST rate it was charged at, never today's. The receipt's GST
column was headed with the rate in force when the page was read (``policy().gst_bps``): once
an administrator changed the rate, every older receipt showed the new rate beside amounts
charged at the old one. Each invoice line, reschedule fee and credit note now shows the rate
of the policy version its booking was priced under (docs/decisions.md)."""

import re

import pytest
import sqlalchemy as sa
from flask_babel import refresh

from portal.accounts.models import User
from portal.booking import checkout, visits
from portal.booking.credit_notes import CreditNote
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.rates import apply_bps
from portal.extensions import db
from portal.policies import service as svc
from tests.booking.factories import at, credit_wallet, quoted_checkout
from tests.querycount import counted_queries
from tests.refunds.helpers import (
    block,
    book_and_pay,
    booked_consult,
    hours,
    login,
    post_move,
    quoted_provider_cancel,
    with_known_passwords,
)

pytestmark = pytest.mark.usefixtures("ledger_stays_sound")

START, NEW = at(4, 10), at(7, 11)
REASON = "GST notification of the new financial year"


@pytest.fixture
def admin_ids(admins):
    return [a.id for a in admins]


def change_gst(admin_ids, bps):
    """The GST rate changed as an administrator changes it: a money change, proposed by one
    administrator and approved by the other, in force from now."""
    maker, checker = (db.session.get(User, i) for i in admin_ids)
    version_id = svc.propose(maker, {"gst_bps": bps}, reason=REASON).id
    svc.approve(checker, version_id, note="Checked against the notification")
    db.session.remove()
    return version_id


def receipt_of(client, visit_id):
    answer = client.get(f"/me/visits/{visit_id}/receipt")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def rates_in(html):
    """Every GST rate the page states ("18%", "12%"), as text."""
    return set(re.findall(r"(\d+(?:\.\d+)?)%", html))


def test_an_issued_receipt_keeps_its_rate_and_a_new_one_states_the_new_rate(
    app, client, world, users, gateway, clock, admin_ids
):
    visit_id, item_id, _invoice, email = booked_consult(world, users, gateway, START)
    change_gst(admin_ids, 1_200)
    with_known_passwords()
    login(client, email)

    old = receipt_of(client, visit_id)
    assert rates_in(old) == {"18"}, "the receipt names today's rate, not the one it was charged"
    line = block(old, f"receipt-line-{item_id}")
    assert "₹4.50" in line and "₹529.50" in line  # 18 % of the ₹25 platform fee, as charged
    assert "18%" in line

    # A booking made now is charged, and its receipt says, 12 %.
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START + hours(2))]
    )
    new_id, new_item = visit.id, visit.items[0].id
    db.session.expire_all()  # the signed-in user stays in the session
    new = receipt_of(client, new_id)
    assert rates_in(new) == {"12"}
    line = block(new, f"receipt-line-{new_item}")
    assert "₹3.00" in line and "₹528.00" in line  # 12 % of ₹25

    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()
    hindi = block(receipt_of(client, visit_id), f"receipt-line-{item_id}")
    assert "18% की दर से" in hindi


def test_a_visit_priced_either_side_of_a_change_shows_each_lines_rate(
    app, client, world, users, gateway, clock, admin_ids
):
    """Two appointments in one visit, the second added after the rate changed: each line
    says its own rate (one rate in the column's header would be wrong for one of them), and
    reading them costs the receipt no statement more than a visit of one rate."""
    with_known_passwords()
    patient = users(world.patients[0])
    first = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=START,
    )
    first_id, visit_id, email = first.id, first.master_id, patient.email
    change_gst(admin_ids, 1_200)
    patient = users(world.patients[0])
    second = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[1]],
        clinic_id=world.clinic,
        start_at=START + hours(2),
        visit_id=visit_id,
    )
    second_id = second.id
    result = quoted_checkout(patient, visit_id, 0, callback_url="http://portal.test/cb")
    checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
    gateway.deliver()
    db.session.remove()
    lines = db.session.scalars(
        sa.select(IndividualBooking).where(IndividualBooking.master_id == visit_id)
    ).all()
    assert sorted(i.gst for i in lines) == [300, 450]
    db.session.remove()

    login(client, email)
    html = receipt_of(client, visit_id)
    assert rates_in(html) == {"18", "12"}
    one = block(html, f"receipt-line-{first_id}")
    two = block(html, f"receipt-line-{second_id}")
    assert "₹4.50" in one and "18%" in one and "12%" not in one
    assert "₹3.00" in two and "12%" in two and "18%" not in two

    # The same statements as the receipt of a visit at one rate (the rates come from the
    # policy versions the page has read already, none per line).
    single = book_and_pay(
        world,
        users(world.patients[1]),
        gateway,
        [(world.consult, [world.doctors[0]], START + hours(5))],
    )
    single_id, single_email = single.id, users(world.patients[1]).email
    receipt_of(client, visit_id)  # warm: the versions are read once per process
    db.session.expire_all()  # the requests share this session: each reads the visit afresh
    with counted_queries() as mixed:
        receipt_of(client, visit_id)
    client.post("/auth/logout")
    login(client, single_email)
    db.session.expire_all()
    with counted_queries() as plain:
        receipt_of(client, single_id)
    # (The tests' requests share one app context: the bell's count, kept for the first
    # patient's, is read again for the second's. It is no part of the receipt.)
    mixed, plain = ([q for q in run if "notifications" not in q] for run in (mixed, plain))
    assert len(mixed) == len(plain)
    assert not any("policy_versions" in q for q in mixed)


def test_a_reschedule_fee_and_its_credit_note_state_the_rate_they_were_charged_at(
    app, client, world, users, gateway, clock, admin_ids
):
    """A fee charged after the change is charged under its booking's policy version
    (docs/policy.md "A booking keeps its version"); its tax document and the credit note
    that gives it back say the rate its GST was worked out at."""
    visit_id, item_id, _invoice, email = booked_consult(world, users, gateway, START)
    change_gst(admin_ids, 1_200)
    clock.move_to(START - hours(50))
    credit_wallet(world.patients[0], 10_000)
    with_known_passwords()
    login(client, email)
    moved = post_move(
        client,
        f"/me/bookings/{item_id}/reschedule",
        {"slot": NEW.isoformat(), "pay_with": "wallet"},
    )
    assert moved.status_code == 303
    fee = db.session.scalars(sa.select(Reschedule)).one()
    fee_id, taxable, gst = fee.id, fee.penalty + fee.platform_fee, fee.gst
    db.session.expire_all()  # the signed-in user stays in the session
    charged = next(bps for bps in (1_200, 1_800) if apply_bps(taxable, bps) == gst)
    rate = f"{charged // 100}%"

    html = receipt_of(client, visit_id)
    document = block(html, f"fee-document-{fee_id}", "section")
    assert rate in document and rates_in(document) == {rate[:-1]}
    assert rate in block(html, f"receipt-line-{item_id}")

    doctor = db.session.get(User, db.session.get(IndividualBooking, item_id).providers[0].user_id)
    quoted_provider_cancel(doctor, item_id, "Called to surgery")
    assert db.session.scalar(sa.select(sa.func.count(CreditNote.id))) == 2  # line and fee
    db.session.expire_all()  # the signed-in user stays in the session
    notes = block(receipt_of(client, visit_id), "credit-notes", "table")
    assert notes.count(f"at {rate}") == 2 and "12%" not in notes


def test_the_receipt_header_names_no_rate(app, client, world, users, gateway, clock):
    """The column is headed "GST": a header is one rate for every line, which a visit
    priced either side of a change does not have."""
    visit_id, _item, _invoice, email = booked_consult(world, users, gateway, START)
    with_known_passwords()
    login(client, email)
    head = re.search(r"<thead>.*?</thead>", receipt_of(client, visit_id), re.S).group(0)
    assert "%" not in head and ">GST<" in head
