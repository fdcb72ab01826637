"""RazorpayX answers with JSON that is not its object (docs/gateway.md, "Errors"): a 5xx
or a success that cannot be read is an unknown outcome (the payout asked again under
the same key, made once), a 4xx a refusal (the attempt failed, the automatic retry
takes over); the message says what came back. A payout event whose confirming fetch is
answered so is retried, never parked. A 404 that is not RazorpayX's own "does not
exist" does not make the provider's contact anew, and a save refused so changes
nothing."""

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.audit.models import AuditEntry
from portal.domain.states import FundAccountStatus, PayoutAttemptStatus, PayoutStatus
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.notify.models import Notification
from portal.outbox import OutboxItem
from portal.payouts import fund_accounts
from portal.payouts import models as m
from tests.payouts.conftest import payouts_of


def _answer(x, status, body, match, times=1):
    x.sandbox.set_faults(answer_next=times, answer_status=status, answer_body=body, match=match)


def _audits(action):
    return db.session.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == action).order_by(AuditEntry.id)
    ).all()


@pytest.mark.parametrize(
    ("status", "body"), [(500, "42"), (503, '{"error": null}'), (502, "[]"), (200, "[]")]
)
def test_an_unreadable_answer_to_a_payout_is_asked_again_with_the_same_key(
    world, x, immediate_retries, status, body
):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    _answer(x, status, body, "POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert payout.status == PayoutStatus.PROCESSED and attempt.requests == 2
    assert len(x.payouts()) == 1
    (unanswered,) = _audits("payout.send_unanswered")
    assert "RazorpayX answered" in unanswered["error"], unanswered


def test_a_4xx_not_shaped_as_razorpayxs_is_a_refusal_and_the_retry_pays_once(
    world, x, immediate_retries
):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    _answer(x, 400, '"an error"', "POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    first, second = payout.attempt_rows
    assert first.status == PayoutAttemptStatus.FAILED
    assert "RazorpayX answered without its error object" in first.failure_reason
    assert first.idempotency_key != second.idempotency_key
    assert payout.status == PayoutStatus.PROCESSED and len(x.payouts()) == 1


@pytest.mark.parametrize(("status", "body"), [(200, "null"), (500, '"an error"')])
def test_a_payout_event_whose_fetch_is_unreadable_is_retried_not_parked(world, x, status, body):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    _answer(x, status, body, "GET /v1/payouts/", times=1_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status != PayoutStatus.PROCESSED
    events = db.session.scalars(
        sa.select(WebhookEvent).where(WebhookEvent.event_type.like("payout.%"))
    ).all()
    assert events and not [e for e in events if (e.last_error or "").startswith("parked")]
    assert any("RazorpayX answered" in (e.last_error or "") for e in events)
    assert not db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.GATEWAY_MISMATCH")
    ).all()
    x.sandbox.set_faults(answer_next=0)
    pending = db.session.scalars(
        sa.select(OutboxItem.id).where(
            OutboxItem.job == "gateway.process_webhook", OutboxItem.done_at.is_(None)
        )
    ).all()
    for item_id in pending:
        jobs.run_outbox_item(item_id)  # the outbox's retry, RazorpayX answering again
    db.session.expire_all()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and len(x.payouts()) == 1


@pytest.mark.parametrize(("status", "body"), [(500, "null"), (404, "[]")])
def test_a_fund_account_save_answered_oddly_changes_nothing(world, x, monkeypatch, status, body):
    """A stored contact: a 404 that is not RazorpayX's "does not exist" is no proof the
    contact is gone (before: ``NotFound``, so the contact was asked for anew and the
    save again). The save is refused, nothing changes, the provider keeps their account."""
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    contacts = dict(x.sandbox.store.contacts)
    asked, real = [], x.adapter.create_contact
    monkeypatch.setattr(
        x.adapter, "create_contact", lambda *a, **kw: asked.append(a) or real(*a, **kw)
    )
    _answer(x, status, body, "POST /v1/fund_accounts", times=5)
    with pytest.raises(fund_accounts.FundAccountError):
        world.onboard(provider, user, number="000401234567", ifsc="ICIC0000001")
    db.session.rollback()
    assert dict(x.sandbox.store.contacts) == contacts and asked == []
    assert not _audits("fund_account.contact_made_anew")
    (current,) = db.session.scalars(
        sa.select(m.FundAccount).where(
            m.FundAccount.provider_id == provider.id, m.FundAccount.current.is_(True)
        )
    ).all()
    assert current.id == first.id and current.status == FundAccountStatus.VALIDATED
