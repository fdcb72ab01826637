"""Issue #16, "a demo worth opening": the demo history is made through the real use cases
at past moments: completed, cancelled and moved visits, refunds, payouts (with TDS once a
provider passes the threshold), notifications; the ledger stays sound; loading twice adds
nothing."""

import pytest
import sqlalchemy as sa

import portal.booking.tasks  # noqa: F401  (until create_app imports it)
import portal.refunds.tasks  # noqa: F401
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.catalog.demo import load_demo
from portal.db import utcnow
from portal.demo import history
from portal.extensions import db
from portal.ledger.check import verify_ledger
from portal.notify.models import Notification, Reminder
from portal.payouts.models import Payout
from portal.refunds.models import Refund


@pytest.fixture
def sandbox(app):
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    app.extensions.pop("gateway_adapters", None)
    yield app.extensions["razorpay_sandbox"]
    app.extensions.pop("gateway_adapters", None)


def _count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_three_months_of_history_through_the_use_cases(app, ctx, sandbox, monkeypatch):
    monkeypatch.setattr(history, "WEEKS", 4)
    lines = []
    load_demo(echo=lines.append)
    history.load_history(echo=lines.append)
    assert any(line.startswith("Demo history: ") for line in lines), lines
    statuses = dict(
        db.session.execute(
            sa.select(IndividualBooking.status, sa.func.count()).group_by(IndividualBooking.status)
        ).all()
    )
    assert statuses.get("COMPLETED", 0) >= 10 and statuses.get("CANCELLED", 0) >= 1
    assert _count(Reschedule) >= 1
    assert _count(Refund, Refund.status == "PROCESSED") >= 1
    assert _count(Payout, Payout.status == "PROCESSED") >= 3
    assert _count(Notification) > 0
    oldest = db.session.scalar(sa.select(sa.func.min(MasterBooking.created_at)))
    assert (utcnow() - oldest).days >= 4 * 7  # made at past moments, not today
    assert _count(Payout, Payout.created_at < utcnow()) == _count(Payout)
    assert verify_ledger() == []
    # The past visits' reminders are withdrawn, not left for the scheduler to skip.
    assert _count(Reminder, Reminder.status == "PENDING") == 0
    before = _count(MasterBooking)
    history.load_history(echo=lines.append)
    assert _count(MasterBooking) == before  # loading again adds nothing
