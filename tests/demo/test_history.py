"""Issue #16, "a demo worth opening": the demo history is made through the real use cases
at past moments: completed, cancelled and moved visits, refunds, payouts (with TDS once a
provider passes the threshold), notifications; the ledger stays sound; loading twice adds
nothing."""

import pytest
import sqlalchemy as sa

import portal.booking.tasks  # noqa: F401  (until create_app imports it)
import portal.refunds.tasks  # noqa: F401
from portal.accounts.models import User
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.catalog.demo import LOGINS, load_demo
from portal.catalog.models import Provider
from portal.db import utcnow
from portal.demo import history
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.models import LedgerTransaction
from portal.ledger.queries import account_history_page, wallet_history_page
from portal.notify.models import Notification, Reminder
from portal.payouts.models import Payout, PayoutAttempt
from portal.refunds.models import Refund
from portal.wallet.adjustments import AUDIT_TYPE
from portal.wallet.models import WalletAdjustment


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
    # One history (a few seconds to make) checked for what each review found.
    _made_in_date_order()
    _the_sandbox_clock_is_on_real_time(sandbox)
    before = _count(MasterBooking)
    history.load_history(echo=lines.append)
    assert _count(MasterBooking) == before  # loading again adds nothing
    _the_pans_show(app)


def _made_in_date_order():
    """A week's visits are booked twelve days ahead, so planned week by week they were
    made after the week before had had its payout run, dated days before it: Dr. Asha
    Rao's statement read "−₹250" after a payout run that had not seen a penalty dated
    earlier (review finding). The postings are made in the order of their dates, so each
    payout pays what the statement shows and leaves it at no less than nothing."""
    ids = db.session.scalars(
        sa.select(LedgerTransaction.id).order_by(LedgerTransaction.created_at, LedgerTransaction.id)
    ).all()
    assert ids == sorted(ids), "postings made out of their dates' order"
    for provider_id in db.session.scalars(sa.select(Payout.provider_id).distinct()):
        lines = account_history_page(chart.provider_payable(provider_id), per_page=500).items
        after_payouts = [line.balance for line in lines if line.kind == "payout_initiated"]
        assert all(balance >= 0 for balance in after_payouts), (provider_id, after_payouts)


def _the_sandbox_clock_is_on_real_time(sandbox):
    """The history settles the sandbox's work by moving its clock 30 s at a time, and its
    clock offset is kept with its shared state: left there, it put the gateway tens of
    minutes ahead, so the reconciliation demo that follows and every payment of the served
    demo were "Time differs" (review finding). And the gateway's payouts carry the
    history's moments, as ours do: the reconciliation run matches them."""
    import time

    ahead = sandbox.store.now() - time.time()
    assert abs(ahead) <= 60, f"the sandbox's clock is {ahead / 60:.0f} min ahead of real time"
    ours = dict(
        db.session.execute(
            sa.select(PayoutAttempt.razorpay_payout_id, PayoutAttempt.created_at)
        ).all()
    )
    with sandbox.store.lock:
        theirs = {p["id"]: p["created_at"] for p in sandbox.store.payouts.values()}
    assert ours and set(ours) == set(theirs)
    apart = {ref: theirs[ref] - at.timestamp() for ref, at in ours.items()}
    assert all(abs(s) <= 60 for s in apart.values()), apart


def _the_pans_show(app):
    """docs/demo.md: Dr. Kavya Hegde and the lab have a PAN on file: their TDS pages show
    it masked, the admin's TDS report in full for Kavya (paid in the history); Dr. Asha
    Rao has none, and her bank page offers to enter it."""
    passwords = {email: password for email, password, _n, _r in LOGINS}

    def signed_in(email):
        client = app.test_client()
        answer = client.post("/auth/login", data={"email": email, "password": passwords[email]})
        assert answer.status_code == 303, email
        return client

    for email, shown in [
        ("kavya.hegde@demo.clinic", "AKMPH••••R"),
        ("labs.bengaluru@demo.clinic", "AADCB••••L"),
    ]:
        page = signed_in(email).get("/provider/earnings/tds").get_data(as_text=True)
        assert f"Your PAN on file: {shown}" in page, email
    asha = signed_in("doctor@demo.clinic")
    assert "PAN not on file" in asha.get("/provider/earnings/tds").get_data(as_text=True)
    assert 'action="/provider/bank/pan"' in asha.get("/provider/bank").get_data(as_text=True)
    kavya = db.session.scalar(
        sa.select(Provider).join(User).where(User.email == "kavya.hegde@demo.clinic")
    )
    fy = db.session.scalar(
        sa.select(Payout.financial_year).where(Payout.provider_id == kavya.id).limit(1)
    )
    report = signed_in("admin@demo.clinic").get(f"/admin/reports/tds?fy={fy}")
    row = report.get_data(as_text=True).split("<td>Dr. Kavya Hegde</td>")[1].split("</tr>")[0]
    assert "<td>AKMPH6214R</td>" in row


def test_the_wallet_demo_is_made_on_the_wallet_the_history_left(app, ctx, sandbox, monkeypatch):
    """``flask demo load`` made the applied adjustment before the history: the admin's list
    said "₹0 → ₹500", the patient's wallet history (in date order, after three months of
    backdated movements) "₹1,800.30 → ₹2,300.30" (review finding). Made after the
    history, both say the same."""
    monkeypatch.setattr(history, "WEEKS", 2)
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    applied = db.session.scalar(
        sa.select(WalletAdjustment).where(WalletAdjustment.balance_after.is_not(None))
    )
    lines = wallet_history_page(applied.patient_id, per_page=500).items
    (line,) = [
        line
        for line in lines
        if (line.reference_type, line.reference_id) == (AUDIT_TYPE, str(applied.id))
    ]
    assert (line.balance - line.change, line.balance) == (
        applied.balance_before,
        applied.balance_after,
    )
    assert applied.balance_before > 0  # the history left money in Priya's wallet


def test_demo_load_refuses_a_database_url_install_without_force(app, ctx):
    """Its logins' passwords are in the README: on a clinic's database `flask demo load`
    made admin@demo.clinic with a public password (review finding)."""
    from portal.accounts.models import User

    saved = app.config["EMBEDDED"]
    app.config["EMBEDDED"] = False
    try:
        result = app.test_cli_runner().invoke(args=["demo", "load"])
    finally:
        app.config["EMBEDDED"] = saved
    assert result.exit_code != 0 and "--force" in result.output
    assert db.session.scalar(sa.select(User).where(User.email == "admin@demo.clinic")) is None


def test_loaded_on_a_monday_before_seven_no_payout_is_dated_ahead_of_now(
    app, ctx, sandbox, monkeypatch
):
    """The last week's payout run is planned for this Monday at 07:00 IST: loaded at 02:00
    that Monday, the history made two payouts dated five hours ahead (rev1's clock review).
    Now that run is left to the scheduler."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    monday_2am = datetime(2027, 2, 1, 2, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    monkeypatch.setattr(history, "WEEKS", 2)
    with time_machine.travel(monday_2am, tick=True):
        load_demo(echo=lambda *_: None)
        history.load_history(echo=lambda *_: None)
        now = utcnow()
        ahead = db.session.scalars(sa.select(Payout.created_at).where(Payout.created_at > now))
        assert ahead.all() == []
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payout)) > 0
