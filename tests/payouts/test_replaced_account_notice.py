"""An account the provider already replaced fails its validation: the provider is not told
(docs/payouts.md "Onboarding (fund accounts)", docs/notifications.md)."""

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.domain.states import FundAccountStatus
from portal.extensions import db
from portal.notify.models import Notification
from portal.payouts import models as m


def test_a_replaced_accounts_failed_validation_is_not_told_as_the_new_account(world, x):
    """A doctor saves a mistyped account and corrects it a moment later, before the first
    one's ₹1 check comes back. The corrected account validates; the replaced one fails.
    The doctor was told (app and mail) "Your new bank account could not be validated …
    Check the details on the Bank account page." although the new account is the
    validated one the bank page shows ("Payouts go to this account"): the failed one was
    given up (docs/payouts.md: "the provider gave it up"). ``tell_validation`` /
    ``notify.fund_account_failed`` never asked whether the account was still current
    (review finding)."""
    provider, user = world.provider("WEEKLY")
    typo = world.onboard(provider, user, number="123456780000", settle=False)  # dead
    fixed = world.onboard(provider, user, number="50100012345678", settle=False)
    x.settle()
    typo, fixed = db.session.get(m.FundAccount, typo.id), db.session.get(m.FundAccount, fixed.id)
    assert typo.status == FundAccountStatus.FAILED and not typo.current
    assert fixed.status == FundAccountStatus.VALIDATED and fixed.current
    told = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user.id, Notification.kind == "bank.validation_failed"
        )
    ).all()
    assert [n.body for n in told] == []


def test_the_replaced_accounts_failure_is_audited_and_the_current_ones_told(world, x):
    """The given-up account's failure stays on record; an account that fails while it is
    the current one is still told, once."""
    provider, user = world.provider("WEEKLY")
    typo = world.onboard(provider, user, number="123456780000", settle=False)  # dead
    world.onboard(provider, user, number="50100012345678", settle=False)
    x.settle()
    failed = db.session.scalars(
        sa.select(AuditEntry.object_id).where(AuditEntry.action == "fund_account.failed")
    ).all()
    assert failed == [str(typo.id)]
    again = world.onboard(provider, user, number="987654320000")  # dead, and current
    assert again.status == FundAccountStatus.FAILED and again.current
    told = db.session.scalars(
        sa.select(Notification.dedupe_key).where(
            Notification.user_id == user.id, Notification.kind == "bank.validation_failed"
        )
    ).all()
    assert told == [f"fund-account-failed:{again.id}"]
