"""A held payout as the provider sees it (review finding: Dr. Kavya Hegde's failed payout,
held by an admin, read "failed · held · retry 2 pending", the earnings page counted it
"on its way to your bank", and its failure notice said "It will be tried again": a held
payout is not retried until an admin lifts the hold, and she was never told of it).

What follows for a payout is one rule beside ``status.will_retry`` (which answers "is its
money still in transit" and ignores the hold): ``status.next_step``. The pages and the
notices read it."""

import re
from datetime import date

import pytest
import sqlalchemy as sa
from flask_babel import refresh

from portal.accounts.models import User
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.notify import payout_notices
from portal.notify.models import Notification
from portal.payouts import models as m
from portal.payouts import runs
from portal.payouts.admin import hold_payout, release_payout
from portal.payouts.status import NextStep, next_step, will_retry
from tests.payouts.conftest import payouts_of

REASON = "Bank details under review after a complaint"


def _told(user_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == user_id, Notification.kind.like("payout.%"))
        .order_by(Notification.id)
    ).all()


@pytest.fixture
def failed_once(world, x, make_user):
    """An INSTANT doctor whose ₹1,000 payout failed once ("Beneficiary bank is down") and
    waits for its retry; and an admin."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 1 and will_retry(payout)
    admin = db.session.get(User, make_user("admin").id)
    return provider, user, payout, admin


def _hold(admin, payout):
    hold_payout(admin, payout.id, REASON)
    db.session.commit()
    db.session.expire_all()
    return db.session.get(m.Payout, payout.id)


def test_next_step_says_a_held_payout_waits_for_the_clinic():
    def payout(status, held=False, returned=False):
        return m.Payout(status=status, held=held, returned=returned)

    assert next_step(payout(PayoutStatus.FAILED)) == NextStep.RETRY
    assert next_step(payout(PayoutStatus.FAILED, held=True)) == NextStep.RETRY_ON_RELEASE
    assert next_step(payout(PayoutStatus.QUEUED, held=True)) == NextStep.SEND_ON_RELEASE
    assert will_retry(payout(PayoutStatus.FAILED, held=True))  # its money is still in transit
    for final in (
        payout(PayoutStatus.FAILED, returned=True),
        payout(PayoutStatus.QUEUED),
        payout(PayoutStatus.PROCESSING),
        payout(PayoutStatus.PROCESSED),
        payout(PayoutStatus.REVERSED, returned=True),
    ):
        assert next_step(final) is None


def test_a_held_failed_payout_reads_on_hold_and_is_not_on_its_way(failed_once, client, login):
    provider, user, payout, admin = failed_once
    login(user)
    page = client.get("/provider/earnings").get_data(as_text=True)
    assert "retry 2 pending" in page and "₹1,000 on its way to your bank." in page
    _hold(admin, payout)
    page = client.get("/provider/earnings").get_data(as_text=True)
    row = page.split(f'id="payout-{payout.id}"')[1].split("</tr>")[0]
    assert "on hold at the clinic — it will be tried again once the clinic releases it" in row
    assert not re.search(r"retry \d+ pending", page)
    assert "on its way to your bank" not in page
    card = page.split('id="payable"')[1].split("</section>")[0]
    assert "₹1,000 on hold at the clinic: it goes out once the clinic releases it." in card
    assert REASON not in page  # the hold's reason is the clinic's note


def test_the_admins_pages_say_the_retry_waits_for_the_hold(failed_once, client, login):
    _provider, _user, payout, admin = failed_once
    _hold(admin, payout)
    login(admin)
    listing = client.get("/admin/payouts").get_data(as_text=True)
    row = listing.split(f'id="payout-{payout.id}"')[1].split("</tr>")[0]
    assert "retry 2 once the hold is lifted" in row and "pending" not in row
    detail = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert "retry 2 once the hold is lifted" in detail and "retry 2 pending" not in detail
    next_retry = re.search(r"<th>Next retry</th><td>(.*?)</td>", detail, re.S)
    assert next_retry and next_retry.group(1).startswith("When the hold is lifted")


def test_the_provider_is_told_of_the_hold_without_its_reason_and_of_its_release(failed_once, x):
    _provider, user, payout, admin = failed_once
    (failed,) = _told(user.id)
    assert failed.kind == "payout.failed" and failed.body.endswith("It will be tried again.")
    _hold(admin, payout)
    held = _told(user.id)[-1]
    assert held.kind == "payout.held" and held.link == "/provider/earnings"
    assert held.title == "Payout of ₹1,000 on hold"
    assert held.body == (
        "The clinic has put your payout of ₹1,000 to HDFC ••••5678 on hold while it reviews "
        "it. It will be tried again once the clinic releases it. If you have questions, ask "
        "the clinic's administrators."
    )
    assert REASON not in held.body
    x.sandbox.set_faults(payout_outcome="processed")
    release_payout(admin, payout.id, "Bank details confirmed by phone")
    db.session.commit()
    released = [n for n in _told(user.id) if n.kind == "payout.released"]
    assert [n.title for n in released] == ["Payout of ₹1,000 released"]
    assert released[0].body == (
        "The clinic released your payout of ₹1,000 to HDFC ••••5678: it is being tried again now."
    )
    x.settle()
    assert _told(user.id)[-1].kind == "payout.processed"
    # Held again later is news again (its own notice), and a job run again tells nothing.
    count = len(_told(user.id))
    payout_notices.payout_hold_changed(payout.id, True, NextStep.RETRY_ON_RELEASE, "abc")
    payout_notices.payout_hold_changed(payout.id, True, NextStep.RETRY_ON_RELEASE, "abc")
    db.session.commit()
    assert len(_told(user.id)) == count + 1


def test_a_failure_told_after_the_hold_does_not_say_it_will_be_tried_again(failed_once):
    """The notice's job runs after the failure's commit: an admin may hold the payout in
    between (or a hold that slipped through kept it held): the job reads the hold."""
    _provider, user, payout, admin = failed_once
    db.session.execute(sa.delete(Notification).where(Notification.kind == "payout.failed"))
    db.session.commit()
    _hold(admin, payout)
    payout_notices.payout_moved(payout.id, PayoutStatus.FAILED, 1, retried=True)
    db.session.commit()
    (failed,) = [n for n in _told(user.id) if n.kind == "payout.failed"]
    assert "It will be tried again." not in failed.body
    assert failed.body.endswith(
        "It is on hold at the clinic: it will be tried again once the clinic releases it."
    )


def test_a_queued_payout_held_before_it_is_sent_is_told_it_will_be_sent(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    # As a hold leaves it before the send (the sandbox answers at once, so set directly).
    payout.status, payout.held, payout.hold_reason = PayoutStatus.QUEUED, True, REASON
    db.session.commit()
    payout_notices.payout_hold_changed(payout.id, True, next_step(payout), "q1")
    db.session.commit()
    held = _told(user.id)[-1]
    assert "It will be sent once the clinic releases it." in held.body
    payout_notices.payout_hold_changed(payout.id, False, NextStep.SEND_ON_RELEASE, "q1")
    db.session.commit()
    assert _told(user.id)[-1].body.endswith(": it is being sent now.")
    payout.status = PayoutStatus.PROCESSED  # as it was: the ledger check reads it so
    payout.held, payout.hold_reason = False, None
    db.session.commit()


def test_a_hold_razorpayx_overtook_is_told_by_the_payouts_own_status(world, x):
    """A hold that slipped through (RazorpayX had the payout) is lifted by its status: paid,
    the "paid" notice says it; still on its way, the provider hears it is no longer held."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    payout.held, payout.hold_reason = True, REASON
    db.session.commit()
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.held
    assert [n.kind for n in _told(user.id)] == ["payout.processed"]
    payout.status = PayoutStatus.PROCESSING  # as if RazorpayX were still paying it
    payout_notices.payout_hold_changed(payout.id, False, None, "o1")
    db.session.commit()
    assert _told(user.id)[-1].body == (
        "Your payout of ₹1,000 to HDFC ••••5678 is no longer on hold: it is on its way to "
        "your bank."
    )
    payout.status = PayoutStatus.PROCESSED
    db.session.commit()


def _statement_line(page, payout):
    """The statement's detail of ``payout``'s line (its money leaving the payable)."""
    for row in page.split('class="statement-line"')[1:]:
        detail = row.split('data-label="Details">')[1].split("</td>")[0]
        if detail.startswith(f"Payout #{payout.id}:"):
            return detail
    raise AssertionError("no statement line for the payout")


def test_the_tds_card_and_the_statement_say_a_held_payout_is_held(
    mid_year, failed_once, client, login, x
):
    """Review finding: the TDS card's "(payouts still on their way included)" counted a
    payout the clinic holds too, and the statement's line for it said "₹1,000 to your
    bank" while it waits for the clinic. Both follow ``status.next_step``: the card names
    what is on hold, the line says it is on hold; released and paid, both as before.

    ``mid_year``: the card is this financial year's, the payout's (across 1 April 00:00
    IST the card read the new year, nothing paid in it)."""
    provider, user, payout, admin = failed_once
    login(user)
    page = client.get("/provider/earnings").get_data(as_text=True)
    assert _statement_line(page, payout) == f"Payout #{payout.id}: ₹1,000 to your bank"
    _hold(admin, payout)
    page = client.get("/provider/earnings").get_data(as_text=True)
    card = page.split('id="tds"')[1].split("</section>")[0]
    assert (
        "Paid out this year: ₹1,000 gross (before TDS), ₹1,000 after TDS (payouts still on "
        "their way included, and ₹1,000 on hold at the clinic)." in card
    ), card
    assert _statement_line(page, payout) == (
        f"Payout #{payout.id}: ₹1,000 on hold at the clinic: it goes to your bank once the "
        "clinic releases it"
    )
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the locale the app context (the test's) keeps from the last page
    page = client.get("/provider/earnings").get_data(as_text=True)
    assert "₹1,000 क्लिनिक के पास रुके हुए" in page.split('id="tds"')[1].split("</section>")[0]
    client.post("/language", data={"language": "en", "next": "/"})
    refresh()
    x.sandbox.set_faults(payout_outcome="processed")
    release_payout(admin, payout.id, "Bank details confirmed by phone")
    db.session.commit()
    x.settle()
    page = client.get("/provider/earnings").get_data(as_text=True)
    card = page.split('id="tds"')[1].split("</section>")[0]
    assert "after TDS (payouts still on their way included)." in card
    assert _statement_line(page, payout) == f"Payout #{payout.id}: ₹1,000 to your bank"


def test_a_held_payouts_statement_line_with_tds_says_both(app):
    """The line of a held payout that deducted TDS: the TDS and its section too."""
    from types import SimpleNamespace

    from portal.payouts.reports import _describe

    held = m.Payout(
        id=7, status=PayoutStatus.QUEUED, held=True, returned=False, net=54_000_00,
        tds=6_000_00, tds_section="194J", financial_year="2026-27",
    )  # fmt: skip
    line = SimpleNamespace(kind="payout_initiated", memo="")
    with app.app_context():
        what, detail, _ = _describe(line, 7, {}, {}, {7: held})
        assert detail == (
            "Payout #7: ₹54,000 + ₹6,000 TDS (section 194J), on hold at the clinic: it goes to "
            "your bank once the clinic releases it"
        )
        held.held = False
        _what, detail, _ = _describe(line, 7, {}, {}, {7: held})
        assert detail == "Payout #7: ₹54,000 to your bank + ₹6,000 TDS (section 194J)"
