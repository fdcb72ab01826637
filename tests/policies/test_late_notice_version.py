"""The "cannot be cancelled or moved online once paid" warning on the patient's visit page
is judged by the item's own policy version, the one its cancellation and move will meet
(docs/policy.md "A booking keeps its version"), not the policy in force. Review finding:
an item held under version 1 (24 h cut-offs), then a change relaxing the cut-offs to 12 h
approved while it was still unpaid: the page stayed silent, the patient paid, and the
cancellation was refused "within 24 hours". The reverse too: a tightened policy gives no
false warning for an item its own version still lets the patient cancel and move."""

from urllib.parse import urlencode

import pytest

from portal.accounts.models import User
from portal.booking import checkout, visits
from portal.extensions import db
from portal.policies import service as svc
from portal.refunds import previews as refunds_previews
from tests.booking.factories import NOW, at, quoted_checkout
from tests.refunds.helpers import hours, login, with_known_passwords

pytestmark = pytest.mark.usefixtures("ledger_stays_sound")

REASON = "Shorter cut-offs for the new season"


def change_cut_offs(admins, hours_notice, **more):
    maker, checker = admins
    version = svc.propose(
        maker,
        {
            "patient_cancellation_tiers.1.notice": hours_notice * 3600,
            "reschedule_min_notice": hours_notice * 3600,
            **more,
        },
        reason=REASON,
    )
    svc.approve(checker, version.id)
    return version.id


def hold_item(world, users, start):
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )
    assert item.policy_version_id is None  # version 1: POLICY.md's 24 h cut-offs
    return item.id, item.master_id, patient.email


def test_a_relaxed_policy_still_warns_for_an_item_held_under_the_stricter_one(
    app, client, world, users, gateway, clock, admins
):
    clock.move_to(NOW + hours(6))  # Monday 14:00 IST
    start = at(1, 10)  # Tuesday 10:00: 20 hours ahead
    with_known_passwords()
    item_id, visit_id, email = hold_item(world, users, start)
    change_cut_offs(admins, 12)
    db.session.remove()

    login(client, email)
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)

    # What the item will meet once paid: its own version refuses the cancellation online.
    patient = db.session.get(User, world.patients[0])
    result = quoted_checkout(patient, visit_id, 0, callback_url="http://portal.test/cb")
    checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
    gateway.deliver()
    db.session.expire_all()
    [preview] = refunds_previews.preview_cancellation(patient, visit_id, [item_id]).items
    assert not preview.allowed and "within 24 hours" in str(preview.message)

    # So the page should have said so before the patient paid.
    assert f'id="late-notice-{item_id}"' in page, (
        "no late-booking warning: judged by the policy in force (12 h), not the item's own (24 h)"
    )


def test_a_tightened_policy_gives_no_false_warning_for_an_item_held_before(
    app, client, world, users, clock, admins
):
    clock.move_to(NOW + hours(6))  # Monday 14:00 IST
    start = at(1, 17)  # Tuesday 17:00: 27 hours ahead
    with_known_passwords()
    item_id, visit_id, email = hold_item(world, users, start)
    # The last reschedule tier starts at the cut-off (a rule of the policy form).
    change_cut_offs(
        admins, 36, **{"reschedule_tiers.2.more_than": 36 * 3600}
    )  # in force now: 27 h is too close to cancel or move
    db.session.remove()

    login(client, email)
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert f'id="item-{item_id}"' in page
    # Its own version (24 h) lets the patient cancel and move it once paid: no warning.
    assert f'id="late-notice-{item_id}"' not in page
    # A slot booked now is priced under the policy in force, so the book page warns.
    query = urlencode(
        {
            "provider": world.doctors[0],
            "service": world.consult,
            "clinic": world.clinic,
            "start": (start + hours(-1)).isoformat(),
        }
    )
    book = client.get(f"/me/book?{query}").get_data(as_text=True)
    assert 'id="late-notice"' in book
