"""A close and a hold by the same patient at once (two tabs), on PostgreSQL: a known gap
(docs/privacy.md "Known gaps"). The hold path does not take the user row (its budget of
12 statements is asserted), so a hold that has read the account as active before the
closure commits still commits: the closed account is left with a SCHEDULED hold, which
expires with its checkout (15 minutes; every session has ended, and a payment that still
arrives is refunded to its source). The two sides are put in that order by events, so the
outcome is the same every run: kept as a strict xfail, to be noticed if it is ever fixed."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import visits
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from portal.privacy import closure
from tests.booking.factories import at, build_world
from tests.plugin import PASSWORD
from tests.threads import run_together

pytestmark = pytest.mark.postgres


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the hold path does not lock the user row (docs/privacy.md)",
)
def test_a_hold_in_another_tab_while_closing_leaves_a_live_booking_on_a_closed_account(
    pg_app, clock, monkeypatch
):
    with pg_app.app_context():
        world = build_world(n_patients=1)
        db.session.get(User, world.patients[0]).password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    uid = world.patients[0]
    refusals_read, person_checked = threading.Event(), threading.Event()

    original_blockers = closure.blockers

    def blockers(patient_id):
        answer = original_blockers(patient_id)  # nothing owed yet
        refusals_read.set()
        person_checked.wait(10)  # the other tab's hold has read the account: still active
        return answer

    original_check = visits.check_person

    def check_person(*args):
        refusals_read.wait(10)
        answer = original_check(*args)
        person_checked.set()
        return answer

    monkeypatch.setattr(closure, "blockers", blockers)
    monkeypatch.setattr(visits, "check_person", check_person)

    def close():
        return closure.close_account(uid, PASSWORD, True).id

    def hold():
        patient = db.session.get(User, uid)
        return visits.add_item(
            patient, patient_id=uid, service_id=world.consult,
            provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
        ).id  # fmt: skip

    results = run_together(pg_app, close, hold)
    with pg_app.app_context():
        user = db.session.get(User, uid)
        live = db.session.scalar(
            sa.select(sa.func.count(IndividualBooking.id))
            .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
            .where(MasterBooking.patient_id == uid, IndividualBooking.status == "SCHEDULED")
        )
        closed = user.closed_at is not None
        db.session.remove()
    # One of them must lose: a closed account holds nothing, or the close is refused.
    assert not (closed and live), (results, closed, live)
