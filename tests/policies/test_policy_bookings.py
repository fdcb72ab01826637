"""A booking keeps the policy version it was priced under: a later change applies to new
bookings only, never to an existing booking's refund or reschedule fee."""

from datetime import timedelta

import pytest

from portal.booking import reschedule
from portal.db import utcnow
from portal.extensions import db
from portal.policies import service as svc
from portal.policies import store
from portal.refunds import previews as refunds_previews
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_cancel

pytestmark = pytest.mark.usefixtures("ledger_stays_sound")

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
CONSULT_TOTAL = 52_950  # F 500 + P 25 + GST 4.50
OLD_PARTIAL = 39_713 - 10_000  # 75 % − ₹100
NEW_PARTIAL = 26_475 - 20_000  # 50 % − ₹200
REASON = "Late cancellations cost the clinic more"


def change_tiers(admins):
    maker, checker = admins
    version = svc.propose(
        maker,
        {
            "patient_cancellation_tiers.1.refund_bps": 5_000,
            "patient_cancellation_tiers.1.deduction": 20_000,
            "reschedule_tiers.0.penalty_bps": 500,
        },
        reason=REASON,
    )
    svc.approve(checker, version.id)
    return version


def book(world, users, gateway, patient_index, start):
    patient = users(world.patients[patient_index])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    return patient, visit, visit.items[0]


def test_a_change_applies_to_new_bookings_only(world, users, gateway, clock, admins):
    old_patient, old_visit, old_item = book(world, users, gateway, 0, START)
    version = change_tiers(admins)
    new_patient, new_visit, new_item = book(world, users, gateway, 1, START + timedelta(hours=2))
    assert old_item.policy_version_id is None  # made before any version existed
    assert new_item.policy_version_id == version.id
    assert old_item.total == new_item.total == CONSULT_TOTAL  # prices did not change

    clock.move_to(START - hours(30))
    store.forget()
    [old_preview] = refunds_previews.preview_cancellation(
        old_patient, old_visit.id, [old_item.id]
    ).items
    assert old_preview.refund == OLD_PARTIAL and "75%" in old_preview.rule_text
    [old_done] = quoted_cancel(old_patient, old_visit.id, [old_item.id])
    assert old_done.refund == OLD_PARTIAL

    clock.move_to(START + timedelta(hours=2) - hours(30))
    store.forget()
    [new_done] = quoted_cancel(new_patient, new_visit.id, [new_item.id])
    assert new_done.refund == NEW_PARTIAL


def test_a_reschedule_fee_uses_the_bookings_version(world, users, gateway, clock, admins):
    patient, _, old_item = book(world, users, gateway, 0, START)
    change_tiers(admins)
    _, _, new_item = book(world, users, gateway, 1, START + timedelta(hours=2))
    # More than 72 h ahead: free under the old tiers, 5 % of the fee under the new.
    assert START - utcnow() > hours(72)
    _, old_quote = reschedule.quote(patient, old_item.id)
    _, new_quote = reschedule.quote(users(world.patients[1]), new_item.id)
    assert old_quote.allowed and old_quote.penalty == 0
    assert new_quote.allowed and new_quote.penalty == 2_500  # 5 % of ₹500
    db.session.rollback()
