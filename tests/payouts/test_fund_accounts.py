"""Onboarding: input rules, contact + fund account + validation at RazorpayX, payouts only
after a successful validation, a changed account validated again."""

import json

import pytest
import sqlalchemy as sa

from portal.domain.states import FundAccountStatus, PayoutStatus
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.payouts import fund_accounts
from portal.payouts import models as m
from portal.payouts.common import Skipped
from portal.payouts.create import create_payout
from tests.payouts.conftest import payouts_of


@pytest.mark.parametrize(
    "ifsc, number, field",
    [
        ("HDFC0001234", "12345678", "account_number"),  # 8 digits
        ("HDFC0001234", "1234567890123456789", "account_number"),  # 19 digits
        ("HDFC0001234", "12345678A", "account_number"),
        ("HDFC1001234", "123456789", "ifsc"),  # 5th character must be 0
        ("HDF00001234", "123456789", "ifsc"),
        ("HDFC000123", "123456789", "ifsc"),  # 10 characters
        ("", "", "ifsc"),
    ],
)
def test_bank_details_are_checked(ifsc, number, field):
    with pytest.raises(fund_accounts.FundAccountError) as caught:
        fund_accounts.check_bank("Asha Rao", ifsc, number)
    assert field in caught.value.errors


def test_good_bank_details_are_normalised():
    assert fund_accounts.check_bank("  Asha   Rao ", "hdfc0a01234", "1234 5678 9012") == (
        "Asha Rao",
        "HDFC0A01234",
        "123456789012",
    )
    assert fund_accounts.check_bank("Asha Rao", "SBIN0000001", "9" * 18)[2] == "9" * 18
    with pytest.raises(fund_accounts.FundAccountError) as caught:
        fund_accounts.check_bank("Asha Rao", "SBIN0000001", "123456789", "123456780")
    assert "confirm_account_number" in caught.value.errors
    with pytest.raises(fund_accounts.FundAccountError):
        fund_accounts.check_vpa("not a vpa")
    assert fund_accounts.mask_vpa("asharao@okhdfc") == "as•••••@okhdfc"


def test_an_account_is_named_in_full_on_pages_and_by_its_bank_in_notices():
    """``masked`` (pages) and ``short_name`` (the provider's money notices): one place
    each, beside each other."""
    bank = m.FundAccount(kind=m.BANK_ACCOUNT, ifsc="HDFC0001234", account_last4="5678")
    assert bank.masked == "HDFC0001234 ••••5678"
    assert bank.short_name == "HDFC ••••5678"
    upi = m.FundAccount(kind=m.VPA, vpa_masked="as•••••@okhdfc")
    assert upi.masked == upi.short_name == "as•••••@okhdfc"
    assert m.FundAccount(kind=m.VPA).short_name == ""
    assert m.FundAccount(kind=m.BANK_ACCOUNT).short_name == "••••"


def test_bank_account_validated_by_webhook_then_payouts_start(world, x):
    provider, user = world.provider("WEEKLY")
    world.earn(provider, user, 100_000)
    row = world.onboard(provider, user, settle=False)
    assert row.status == FundAccountStatus.PENDING and row.current
    assert row.account_last4 == "5678" and row.ifsc == "HDFC0001234"
    assert "50100012345678" not in repr(row.__dict__)  # only the masked details are kept
    assert isinstance(create_payout(provider.id, kind=m.CYCLE_KIND), Skipped)
    db.session.rollback()

    x.settle()
    row = db.session.get(m.FundAccount, row.id)
    assert row.status == FundAccountStatus.VALIDATED and row.registered_name == "Asha Rao"
    contact = x.sandbox.store.contacts[row.razorpay_contact_id]
    assert contact["reference_id"] == f"provider-{provider.id}"
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert payout.mode == "IMPS" and payout.gross == 95_000


def test_dead_account_fails_validation_and_blocks_payouts(world, x):
    provider, user = world.provider("INSTANT")
    row = world.onboard(provider, user, number="123456780000")  # sandbox: ...0000 is dead
    assert row.status == FundAccountStatus.FAILED
    world.earn(provider, user, 100_000)
    assert payouts_of(provider.id) == []


def test_upi_payouts_go_by_upi(world, x):
    provider, user = world.provider("INSTANT")
    row = world.onboard(provider, user, vpa="asha.rao@okhdfc")
    assert row.status == FundAccountStatus.VALIDATED and row.kind == m.VPA
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.mode == "UPI" and payout.status == PayoutStatus.PROCESSED


def _stored_webhooks():
    return [
        (e.event_type, json.dumps(e.payload, ensure_ascii=False))
        for e in db.session.scalars(sa.select(WebhookEvent))
    ]


def test_the_full_bank_account_number_is_not_stored_by_the_validation_webhook(world, x):
    """Review rv_privacy: only the IFSC and the last four digits are kept (docs/privacy.md),
    but RazorpayX's ``fund_account.validation.*`` event carries the fund account, its full
    account number included, and the event was stored whole in ``webhook_event.payload``."""
    provider, user = world.provider("WEEKLY")
    row = world.onboard(provider, user, settle=False)
    assert row.account_last4 == "5678"
    x.settle()
    assert db.session.get(m.FundAccount, row.id).registered_name == "Asha Rao"
    stored = _stored_webhooks()
    assert any(t.startswith("fund_account.validation") for t, _ in stored), stored
    holding = [t for t, text in stored if "50100012345678" in text]
    assert holding == [], f"full account number stored in webhook payloads: {holding}"
    assert any("••••5678" in text for t, text in stored if t.startswith("fund_account."))


def test_a_upi_id_is_stored_in_the_webhooks_as_masked_as_on_the_account(world, x):
    """The fund account's row keeps the UPI id masked (``vpa_masked``): so does the stored
    validation event (its ``vpa.address`` and ``vpa.username``)."""
    provider, user = world.provider("WEEKLY")
    row = world.onboard(provider, user, vpa="asha.rao@okhdfc")
    assert row.status == FundAccountStatus.VALIDATED
    stored = _stored_webhooks()
    assert [t for t, text in stored if "asha.rao" in text] == []
    assert any(row.vpa_masked in text for t, text in stored if t.startswith("fund_account."))


def test_changing_the_account_validates_it_again(world, x):
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    second = world.onboard(provider, user, number="50100099990001", settle=False)
    first = db.session.get(m.FundAccount, first.id)
    assert not first.current and second.current and second.status == FundAccountStatus.PENDING
    assert second.razorpay_contact_id == first.razorpay_contact_id  # one contact
    world.earn(provider, user, 100_000)
    # Until it validates, payouts go to the first (tests/payouts/test_account_change.py).
    x.settle()
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert payout.fund_account_id == second.id


def test_lost_validation_webhook_is_caught_by_polling(world, x):
    provider, user = world.provider()
    x.sandbox.set_faults(drop_webhooks=True)
    row = world.onboard(provider, user)
    assert db.session.get(m.FundAccount, row.id).status == FundAccountStatus.PENDING
    fund_accounts.refresh_validation(user, row.id)
    assert db.session.get(m.FundAccount, row.id).status == FundAccountStatus.VALIDATED


def test_repeated_validation_event_changes_nothing(world, x):
    provider, user = world.provider()
    x.sandbox.set_faults(duplicate_webhooks=True)
    row = world.onboard(provider, user)
    assert row.status == FundAccountStatus.VALIDATED
    from portal.audit.models import AuditEntry

    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "fund_account.validated")
        )
        == 1
    )
    # A late "failed" for a validated account is stale.
    assert not fund_accounts.apply_validation_entity(
        {"id": row.razorpay_validation_id, "status": "failed"}
    )


@pytest.mark.parametrize(
    "account_status, expected",
    [
        ("active", FundAccountStatus.VALIDATED),
        # The composite validation entity's sample says "valid"
        # (https://razorpay.com/docs/api/x/composite-account-validation/entity); reading
        # only "active" failed a good account as "not active" (review rv_rzp).
        ("valid", FundAccountStatus.VALIDATED),
        ("invalid", FundAccountStatus.FAILED),
    ],
)
def test_validation_results_of_the_documented_entity_validate_the_account(
    world, x, account_status, expected
):
    """RazorpayX's validation entity names its result `validation_results`
    (https://razorpay.com/docs/api/x/account-validation/entity), older samples `results`:
    either is read. Reading only `results` failed a good account as "not active" (review
    finding)."""
    provider, user = world.provider("WEEKLY")
    row = world.onboard(provider, user, settle=False)
    assert row.status == FundAccountStatus.PENDING and row.razorpay_validation_id
    entity = {
        "id": row.razorpay_validation_id,
        "entity": "fund_account.validation",
        "status": "completed",
        "validation_results": {
            "account_status": account_status,
            "registered_name": "Asha Rao",
            "details": "The beneficiary account is valid",
            "name_match_score": 100,
            "validated_account_type": "bank_account",
        },
        "status_details": {
            "description": "Validation request is completed",
            "source": "beneficiary_bank",
            "reason": "validation_completed",
        },
        "notes": {"provider_id": str(provider.id)},
    }
    assert fund_accounts.apply_validation_entity(entity)
    db.session.expire_all()
    row = db.session.get(m.FundAccount, row.id)
    assert row.status == expected, (row.status, row.status_reason)
    if expected == FundAccountStatus.VALIDATED:
        assert row.registered_name == "Asha Rao"


def test_another_provider_cannot_set_my_account(world, x):
    provider, _user = world.provider()
    _other, other_user = world.provider()
    with pytest.raises(fund_accounts.NotFound):
        fund_accounts.save_bank_account(
            other_user,
            provider.id,
            holder_name="Mallory",
            ifsc="HDFC0001234",
            account_number="123456789",
        )


class _FakeX:
    """Just enough of RazorpayX for onboarding: a new id per call."""

    def __init__(self):
        self.n = 0

    def _id(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n:014d}"

    def create_contact(self, *args, **kwargs):
        return {"id": self._id("cont")}

    def create_fund_account(self, *args, **kwargs):
        return {"id": self._id("fa")}

    def validate_fund_account(self, *args, **kwargs):
        return {"id": self._id("fav"), "status": "created"}


@pytest.mark.postgres
def test_two_saves_of_the_bank_form_at_once_leave_one_current_account(pg_app, monkeypatch):
    """A provider has at most one current account: a double-clicked Save waits for the
    first save and replaces its account, it does not make a second current one (review
    finding: the previous rows were read without a lock, nothing enforced it)."""
    import threading

    from portal.accounts.models import User
    from portal.catalog.models import Provider
    from portal.payouts import gateway as payouts_gateway
    from portal.payouts.ratelimit import TokenBucket
    from tests.booking.factories import build_world
    from tests.threads import run_together, wait_for_lock_waiters

    with pg_app.app_context():
        provider_id = build_world().doctors[0]
        user_id = db.session.get(Provider, provider_id).user_id
        db.session.remove()
    payouts_gateway.install(pg_app, adapter=_FakeX(), bucket=TokenBucket(None))
    holding, release = threading.Event(), threading.Event()
    real = fund_accounts._apply_validation

    def pause_the_first(row, validation):
        if not holding.is_set():  # the first save, its row flushed as current
            holding.set()
            release.wait(10)
        return real(row, validation)

    monkeypatch.setattr(fund_accounts, "_apply_validation", pause_the_first)

    def save():
        user = db.session.get(User, user_id)
        row = fund_accounts.save_bank_account(
            user,
            provider_id,
            holder_name="Asha Rao",
            ifsc="HDFC0001234",
            account_number="50100012345678",
            confirm_account_number="50100012345678",
        )
        return row.id

    def second():
        holding.wait(10)
        return save()

    def watcher():
        holding.wait(10)
        try:
            return wait_for_lock_waiters(db.engine, 1, timeout=3)  # the second waits
        finally:
            release.set()

    try:
        first_id, second_id, waited = run_together(pg_app, save, second, watcher)
    finally:
        payouts_gateway.uninstall(pg_app)
    assert isinstance(first_id, int) and isinstance(second_id, int), (first_id, second_id)
    assert waited == 1, waited
    with pg_app.app_context():
        current = db.session.scalars(
            sa.select(m.FundAccount.id).where(
                m.FundAccount.provider_id == provider_id, m.FundAccount.current.is_(True)
            )
        ).all()
        contacts = set(db.session.scalars(sa.select(m.FundAccount.razorpay_contact_id)))
        db.session.remove()
    assert current == [second_id]  # the later save replaced the first one's account
    assert len(contacts) == 1  # and reused its RazorpayX contact


@pytest.mark.postgres
def test_the_database_refuses_a_second_current_account(pg_app):
    from sqlalchemy.exc import IntegrityError

    from tests.booking.factories import build_world

    with pg_app.app_context():
        provider_id = build_world().doctors[0]
        for last4 in ("1111", "2222"):
            db.session.add(
                m.FundAccount(
                    provider_id=provider_id,
                    kind=m.BANK_ACCOUNT,
                    holder_name="Asha Rao",
                    ifsc="HDFC0001234",
                    account_last4=last4,
                    current=True,
                )
            )
        with pytest.raises(IntegrityError, match="uq_fund_accounts_one_current"):
            db.session.commit()
        db.session.rollback()
        db.session.remove()


class _ValidationX:
    """RazorpayX's answer to a poll: the validation completed, the account active. The poll's
    ask waits (``before_answer``) for the test to let it go."""

    def __init__(self, before_answer=None):
        self.before_answer = before_answer or (lambda: None)
        self.waited = None

    def fetch_validation(self, validation_id):
        self.waited = self.before_answer()
        return _completed(validation_id)


def _completed(validation_id):
    return {
        "id": validation_id,
        "entity": "fund_account.validation",
        "status": "completed",
        "validation_results": {"account_status": "active", "registered_name": "Asha Rao"},
    }


def _pending_account(pg_app):
    """A provider's current account PENDING for 5 minutes: the poll's to ask about."""
    from datetime import timedelta

    from portal.db import utcnow
    from tests.booking.factories import build_world

    with pg_app.app_context():
        row = m.FundAccount(
            provider_id=build_world().doctors[0],
            kind=m.BANK_ACCOUNT,
            holder_name="Asha Rao",
            ifsc="HDFC0001234",
            account_last4="5678",
            razorpay_fund_account_id="fa_race0000000001",
            razorpay_validation_id="fav_race000000001",
            created_at=utcnow() - timedelta(minutes=5),
        )
        db.session.add(row)
        db.session.commit()
        row_id = row.id
        db.session.remove()
    return row_id


def _validation_webhook():
    from portal.gateway.models import WebhookEvent
    from portal.payouts import tasks

    tasks.on_validation_event(
        WebhookEvent(
            payload={
                "event": "fund_account.validation.completed",
                "payload": {"fund_account.validation": {"entity": _completed("fav_race000000001")}},
            }
        )
    )
    return "webhook"


def _poll():
    from portal.payouts import tasks

    tasks.poll_validations()
    return "poll"


def _told(pg_app, row_id):
    """(status, the account's audit actions) once both are done."""
    from portal.audit.models import AuditEntry

    with pg_app.app_context():
        status = db.session.get(m.FundAccount, row_id).status
        actions = db.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.object_type == "fund_account", AuditEntry.object_id == str(row_id))
            .order_by(AuditEntry.id)
        ).all()
        db.session.remove()
    return status, actions


@pytest.mark.postgres
def test_the_poll_and_the_webhook_at_once_validate_an_account_once_webhook_while_asking(pg_app):
    """The periodic poll read the account PENDING and asked RazorpayX; the validation's
    webhook came and was applied meanwhile; the poll then applied its answer to the row it
    had read as PENDING: a second ``fund_account.validated`` row (review finding). Now the
    poll locks the row after RazorpayX answered and finds it validated already. The
    webhook commits while the poll waits for RazorpayX: the poll holds no lock then."""
    import threading

    from portal.payouts import gateway as payouts_gateway
    from portal.payouts.ratelimit import TokenBucket
    from tests.threads import run_together

    row_id = _pending_account(pg_app)
    asked, webhook_done = threading.Event(), threading.Event()

    def answer_after_the_webhook():
        asked.set()
        return webhook_done.wait(10)

    x = _ValidationX(answer_after_the_webhook)
    payouts_gateway.install(pg_app, adapter=x, bucket=TokenBucket(None))

    def webhook():
        asked.wait(10)
        try:
            return _validation_webhook()
        finally:
            webhook_done.set()

    try:
        results = run_together(pg_app, _poll, webhook)
    finally:
        payouts_gateway.uninstall(pg_app)
    assert results == ["poll", "webhook"], results
    assert x.waited is True  # the webhook committed while the poll was asking RazorpayX
    assert _told(pg_app, row_id) == ("VALIDATED", ["fund_account.validated"])


@pytest.mark.postgres
def test_the_poll_and_the_webhook_at_once_validate_an_account_once_poll_while_applying(
    pg_app, monkeypatch
):
    """The other order: the webhook is applying its result when the poll's answer comes.
    The poll waits for the webhook's lock on the row, then finds it validated: one audit
    row, one move (both wrote theirs before)."""
    import threading

    from portal.extensions import db as _db
    from portal.payouts import gateway as payouts_gateway
    from portal.payouts.ratelimit import TokenBucket
    from tests.threads import run_together, wait_for_lock_waiters

    row_id = _pending_account(pg_app)
    applying, release = threading.Event(), threading.Event()
    real = fund_accounts._apply_validation

    def pause_the_webhook(row, validation):
        if not applying.is_set():  # the webhook's, the first to apply
            applying.set()
            release.wait(10)
        return real(row, validation)

    monkeypatch.setattr(fund_accounts, "_apply_validation", pause_the_webhook)
    payouts_gateway.install(pg_app, adapter=_ValidationX(), bucket=TokenBucket(None))

    def poll():
        applying.wait(10)
        return _poll()

    def watcher():
        applying.wait(10)
        try:
            return wait_for_lock_waiters(_db.engine, 1, timeout=3)  # the poll waits
        except AssertionError as exc:
            return exc
        finally:
            release.set()

    try:
        results = run_together(pg_app, _validation_webhook, poll, watcher)
    finally:
        payouts_gateway.uninstall(pg_app)
    assert results[:2] == ["webhook", "poll"], results
    assert _told(pg_app, row_id) == ("VALIDATED", ["fund_account.validated"])
    assert results[2] == 1, results[2]  # the poll waited for the webhook's row lock
