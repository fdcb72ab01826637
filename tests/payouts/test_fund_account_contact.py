"""The provider's RazorpayX contact, reused for every account they save, made anew when
RazorpayX no longer has it (docs/payouts.md "Onboarding (fund accounts)")."""

import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.domain.states import FundAccountStatus
from portal.extensions import db
from portal.gateway import errors as gw_errors
from portal.payouts import fund_accounts
from portal.payouts import models as m


def test_a_contact_razorpayx_no_longer_has_does_not_lock_the_doctor_out(world, x, client, login):
    """``fund_accounts`` (its ``_contact_id``, now ``_stored_contact_id``) reused the
    newest stored ``razorpay_contact_id`` for ever. When RazorpayX no longer has it (the clinic moved from test to live keys, or to
    another RazorpayX account: contacts are per account and mode), every later save was
    refused by RazorpayX ("The contact id provided does not exist", field ``contact_id``)
    and shown as an error *of the doctor's account number*: a doctor who onboarded before
    could never change their account again, whatever they typed (review finding).
    Expected: the save goes through (a contact made anew), or at least nothing blamed on
    the account number."""
    provider, user = world.provider("WEEKLY")
    world.onboard(provider, user)
    x.sandbox.store.contacts.clear()  # the RazorpayX account/mode the keys now point at
    login(user)
    answer = client.post(
        "/provider/bank",
        data={
            "kind": "bank_account",
            "holder_name": "Asha Rao",
            "ifsc": "ICIC0000001",
            "account_number": "000401234567",
            "confirm_account_number": "000401234567",
        },
    )
    html = answer.get_data(as_text=True)
    number_field = re.search(
        r'<div class="field[^"]*">\s*<label for="account_number".*?</div>', html, re.S
    )
    assert answer.status_code == 303, number_field.group(0) if number_field else answer.status


def test_the_contact_made_anew_is_kept_and_reused(world, x):
    """Made with the provider's ``reference_id``, kept on the new account, audited, and
    reused by the next save (one new contact, not one per save)."""
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    gone = first.razorpay_contact_id
    x.sandbox.store.contacts.clear()
    second = world.onboard(provider, user, number="000401234567", ifsc="ICIC0000001")
    assert second.status == FundAccountStatus.VALIDATED and second.current
    assert second.razorpay_contact_id not in (None, gone)
    (contact,) = x.sandbox.store.contacts.values()
    assert contact["id"] == second.razorpay_contact_id
    assert contact["reference_id"] == f"provider-{provider.id}"
    (made,) = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "fund_account.contact_made_anew")
    ).all()
    assert (made.object_type, made.object_id) == ("provider", str(provider.id))
    assert made.actor_id == user.id
    assert made.before["razorpay_contact_id"] == gone
    assert made.after == {"razorpay_contact_id": second.razorpay_contact_id}
    third = world.onboard(provider, user, vpa="asharao@okhdfc")
    assert third.razorpay_contact_id == second.razorpay_contact_id
    assert len(x.sandbox.store.contacts) == 1


def test_a_contact_refused_again_is_the_clinics_to_fix(world, x, monkeypatch):
    """Asked once more only: a fund account refused under the new contact too is said
    about the form (``MSG_REFUSED``) and alerted, nothing saved."""
    provider, user = world.provider("WEEKLY")
    world.onboard(provider, user)

    def gone(contact_id, **kwargs):
        raise gw_errors.NotFound("The contact id provided does not exist", field="contact_id")

    monkeypatch.setattr(x.adapter, "create_fund_account", gone)
    with pytest.raises(fund_accounts.FundAccountError) as caught:
        world.onboard(provider, user, number="000401234567", ifsc="ICIC0000001")
    assert caught.value.errors == {"form": fund_accounts.MSG_REFUSED}
    db.session.expire_all()
    assert db.session.query(m.FundAccount).filter_by(provider_id=provider.id).count() == 1
    alerts = db.session.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "payout.alert")
    ).all()
    assert [(a["kind"], a["severity"]) for a in alerts] == [("FUND_ACCOUNT_REFUSED", "MEDIUM")]
