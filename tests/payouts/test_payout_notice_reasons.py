"""Why a payout failed, as the provider is told it (review finding G): only RazorpayX's
reason for a payout it made and sent on to the bank (about the provider's bank or account:
"Beneficiary bank is down") is said; an admin's "mark failed" note (the admins' audit note,
as the hold's reason is: docs/payouts.md), the error of a request RazorpayX refused (about
the clinic's own setup: an API key) and a person's rejection at RazorpayX are not. The
admins' pages and the audit row keep them."""

import json
from datetime import date, timedelta

import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.db import utcnow
from portal.domain.states import PayoutAttemptStatus, PayoutStatus
from portal.extensions import db
from portal.jobs import sweep_outbox
from portal.notify import payout_notices
from portal.notify.models import MailMessage, Notification
from portal.payouts import runs
from portal.payouts.status import apply_remote
from tests.payouts.conftest import payouts_of
from tests.payouts.test_engine import _refused_for_good, _refused_on

NOTE = "Ravi rotated the API key on 12 Nov; RazorpayX ticket 88123 says nothing was made"
NOT_SENT = "Your payout of ₹1,000 to HDFC ••••5678 failed before it was sent to your bank."
NOT_SENT_HI = "HDFC ••••5678 में आपका ₹1,000 का भुगतान आपके बैंक को भेजे जाने से पहले ही विफल रहा।"


def _failed_notices(user_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == user_id, Notification.kind == "payout.failed")
        .order_by(Notification.id)
    ).all()


def _marked_failed(world, x, make_user, language="en"):
    from portal.payouts.admin import mark_failed

    admin = db.session.get(User, make_user("admin").id)
    provider, payout = _refused_for_good(world, x)
    db.session.get(User, provider.user_id).language = language
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        mark_failed(admin, payout.id, NOTE)
        db.session.commit()
        sweep_outbox()
    (payout,) = payouts_of(provider.id)
    assert payout.attempt_rows[0].status == PayoutAttemptStatus.FAILED
    return provider, payout


def test_an_admins_mark_failed_note_is_not_sent_to_the_provider(world, x, make_user):
    provider, payout = _marked_failed(world, x, make_user)
    told = _failed_notices(provider.user_id)
    assert told, "the provider is told their payout attempt failed"
    for notice in told:
        assert "ticket 88123" not in notice.body and "Ravi" not in notice.body, notice.body
    assert told[0].body == f"{NOT_SENT} It will be tried again."
    mails = db.session.scalars(
        sa.select(MailMessage.text).where(MailMessage.to == provider.user.email)
    ).all()
    assert mails and not any("Ravi" in body for body in mails)
    # The admins keep it: the attempt's failure on the payout's page, and the audit row.
    assert NOTE in payout.attempt_rows[0].failure_reason
    audit = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payout.mark_failed")
    ).one()
    assert audit.after["reason"] == NOTE


def test_on_a_hindi_account_the_marked_attempt_is_told_in_hindi(world, x, make_user):
    provider, _payout = _marked_failed(world, x, make_user, language="hi")
    (notice, *_) = _failed_notices(provider.user_id)
    assert notice.body == f"{NOT_SENT_HI} इसे फिर से भेजने की कोशिश की जाएगी।"


def test_a_refusal_of_our_request_is_not_told_word_for_word(world, x, immediate_retries):
    """A 401 (the clinic's API key rotated) on the first request: the attempt failed, but
    RazorpayX's words are about the clinic's setup, not the provider's account."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    _refused_on(x.adapter, 1)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    first = payout.attempt_rows[0]
    assert first.status == PayoutAttemptStatus.FAILED and first.failure_reason  # admins see it
    assert payout.status == PayoutStatus.PROCESSED
    (notice,) = _failed_notices(user.id)
    assert notice.body == f"{NOT_SENT} It will be tried again."


def test_a_payout_rejected_at_razorpayx_says_it_was_not_sent(world, x):
    """An approver of the clinic's RazorpayX account rejected it: a person's refusal at the
    clinic, not the provider's bank."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    (remote,) = x.payouts()
    details = {"reason": "payout_rejected", "description": "Rejected by Meena: duplicate"}
    assert apply_remote({**remote, "status": "rejected", "status_details": details})
    db.session.commit()
    sweep_outbox()
    (notice,) = _failed_notices(user.id)
    assert notice.body == f"{NOT_SENT} The amount is back on your payable balance."


def test_the_banks_reason_is_still_told_and_a_reversal_without_one_reads_plainly(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.REVERSED
    (notice,) = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user.id, Notification.kind == "payout.reversed"
        )
    ).all()
    assert notice.body == (
        "Your payout of ₹1,000 to HDFC ••••5678 was reversed by the bank: Beneficiary "
        "account is closed. The amount is back on your payable balance."
    )
    payout.attempt_rows[0].failure_reason = None  # RazorpayX gave no reason
    db.session.execute(sa.delete(Notification).where(Notification.user_id == user.id))
    db.session.commit()
    payout_notices.payout_moved(payout.id, PayoutStatus.REVERSED, 1)
    db.session.commit()
    (notice,) = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user.id)
    ).all()
    assert notice.body == (
        "Your payout of ₹1,000 to HDFC ••••5678 was reversed by the bank. The amount is "
        "back on your payable balance."
    )


FULL_NUMBER = "50100012345678"


def _kept_anywhere():
    """Every text the portal kept of a payout's failure: the audit, the attempts and
    payouts, the notices and mails."""
    from portal.payouts import models as m

    db.session.expire_all()
    rows = db.session.scalars(sa.select(AuditEntry)).all()
    kept = [json.dumps([r.before, r.after], ensure_ascii=False) for r in rows]
    kept += [a.failure_reason or "" for a in db.session.scalars(sa.select(m.PayoutAttempt))]
    kept += [f"{p.failure_reason} {p.last_error}" for p in db.session.scalars(sa.select(m.Payout))]
    kept += [f"{n.title} {n.body}" for n in db.session.scalars(sa.select(Notification))]
    kept += db.session.scalars(sa.select(MailMessage.text)).all()
    return kept


def test_the_banks_reason_naming_the_account_in_full_is_kept_masked(world, x):
    """review rv_audit: RazorpayX's ``status_details.description`` is kept on the attempt
    and the payout and said in the audit, the alerts and the provider's notice; a bank's
    words may name the account in full, which the portal never keeps (docs/privacy.md)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    (remote,) = x.payouts()
    details = {"reason": "beneficiary_account_closed", "description": f"A/c {FULL_NUMBER} closed"}
    assert apply_remote({**remote, "status": "failed", "status_details": details})
    db.session.commit()
    sweep_outbox()
    kept = _kept_anywhere()
    assert not [text for text in kept if FULL_NUMBER in text]
    (notice,) = _failed_notices(user.id)
    assert "A/c ••••5678 closed" in notice.body, notice.body


def test_a_refusal_of_our_request_naming_the_account_is_kept_masked(world, x, monkeypatch):
    """The same of RazorpayX's refusal of the payout request (``sending``: the payout's
    ``last_error``, the audit's ``payout.send_refused``, the attempt's failure)."""
    from portal.gateway import errors as gw_errors

    def refuse(key, **kw):
        raise gw_errors.BadRequest(f"Fund account for {FULL_NUMBER} is inactive", status=400)

    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    monkeypatch.setattr(x.adapter, "create_payout", refuse)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    sweep_outbox()
    (payout,) = payouts_of(provider.id)
    assert payout.attempt_rows[0].status == PayoutAttemptStatus.FAILED
    assert payout.attempt_rows[0].failure_reason == "Fund account for ••••5678 is inactive"
    assert not [text for text in _kept_anywhere() if FULL_NUMBER in text]
