"""What the provider is told about their money: a payout paid (the account, the UTR, the
TDS withheld, and why more than the rate on its gross when it was), failed (tried again,
on hold, or back on the payable balance) or reversed, held by the clinic or released, a
new bank account or UPI id that failed validation, and a cancellation penalty charged to
them.

Jobs recorded by ``portal.notify.receivers`` when the payouts and refunds capabilities say
what happened; each notice is in the app and by mail (as appointment notices are), in
the provider's language, once per event: the job's outbox key and the notice's dedupe key
are the same, so a job run again tells nothing more."""

import re

from flask_babel import gettext as _

from portal import jobs
from portal.domain.rates import format_inr
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.i18n import N_, translate
from portal.notify.center import notify_user
from portal.notify.links import path
from portal.notify.reminders import local_time
from portal.notify.wording import speaking_to
from portal.payouts import models as m
from portal.payouts.common import tds_section
from portal.payouts.fund_accounts import MSG_NOT_VALIDATED
from portal.payouts.reports import payout_tds_note
from portal.payouts.status import NextStep, next_step, reason_for_provider, went_to_the_bank
from portal.refunds.lookup import cancellation_for
from portal.refunds.models import Cancellation

# The payout statuses the provider hears of (QUEUED and PROCESSING are on the way).
TOLD = (PayoutStatus.PROCESSED, PayoutStatus.FAILED, PayoutStatus.REVERSED)


def payout_key(payout_id, status, attempt):
    """Once per payout paid or reversed; once per failed attempt (each says what follows)."""
    if status == PayoutStatus.FAILED:
        return f"payout-failed:{payout_id}:{attempt}"
    return f"payout-{str(status).lower()}:{payout_id}"


def _reason(text):
    """RazorpayX's reason (English, as it sent it), without its full stop: the sentence
    around it has one. "" for none."""
    return (text or "").strip().rstrip(".।")


@jobs.job("notify.payout_moved")
def payout_moved(payout_id, status, attempt, retried=False):
    payout = db.session.get(m.Payout, payout_id)
    if payout is None or status not in TOLD:
        return
    row = next((a for a in payout.attempt_rows if a.number == attempt), None)
    user_id = payout.provider.user_id
    account = payout.fund_account.short_name if payout.fund_account else ""
    values = dict(amount=format_inr(payout.net), account=account)
    with speaking_to(user_id):
        if status == PayoutStatus.PROCESSED:
            kind = "payout.processed"
            title = _("Payout of %(amount)s paid", **values)
            if payout.utr:
                body = _("%(amount)s paid to %(account)s, UTR %(utr)s.", utr=payout.utr, **values)
            else:
                body = _(
                    "%(amount)s paid to %(account)s. The bank's reference (UTR) will show on "
                    "the Earnings page when the bank sends it.",
                    **values,
                )
            if payout.tds:
                body += " " + _(
                    "TDS of %(tds)s (section %(section)s) was withheld from %(gross)s.",
                    tds=format_inr(payout.tds), section=tds_section(payout),
                    gross=format_inr(payout.gross),
                )  # fmt: skip
                # Why more than the rate on its gross (the year's catch-up, section
                # 206AA's rate without a PAN): the earnings page's words for this payout.
                note = payout_tds_note(payout)
                if note:
                    body += " " + translate(note)
        else:
            # Only RazorpayX's reason for a payout that went to the bank (the payouts
            # rule); an admin's note or an error about the clinic's setup is never sent.
            reason = _reason(reason_for_provider(payout, row))
            if status == PayoutStatus.FAILED:
                kind = "payout.failed"
                title = _("Payout of %(amount)s failed", **values)
                if reason:
                    body = _(
                        "Your payout of %(amount)s to %(account)s failed: %(reason)s.",
                        reason=reason, **values,
                    )  # fmt: skip
                elif went_to_the_bank(payout, row):
                    body = _("Your payout of %(amount)s to %(account)s failed.", **values)
                else:
                    body = _(
                        "Your payout of %(amount)s to %(account)s failed before it was sent "
                        "to your bank.",
                        **values,
                    )
            else:
                kind = "payout.reversed"
                title = _("Payout of %(amount)s reversed", **values)
                if reason:
                    body = _(
                        "Your payout of %(amount)s to %(account)s was reversed by the bank: "
                        "%(reason)s.",
                        reason=reason, **values,
                    )  # fmt: skip
                else:
                    body = _(
                        "Your payout of %(amount)s to %(account)s was reversed by the bank.",
                        **values,
                    )
            if status == PayoutStatus.FAILED and retried:
                # Whether it was retried is the move's; a hold since (an admin may hold it
                # before this job runs) stops the retry until the clinic releases it.
                if next_step(payout) == NextStep.RETRY_ON_RELEASE:
                    body += " " + _(
                        "It is on hold at the clinic: it will be tried again once the clinic "
                        "releases it."
                    )
                else:
                    body += " " + _("It will be tried again.")
            else:
                body += " " + _("The amount is back on your payable balance.")
    notify_user(
        user_id,
        kind,
        title,
        body,
        link=path("provider.earnings"),
        dedupe_key=payout_key(payout.id, status, attempt),
    )


def hold_key(payout_id, held, episode):
    """Once per hold and once per release (a payout held twice is told twice)."""
    return f"payout-{'held' if held else 'released'}:{payout_id}:{episode}"


@jobs.job("notify.payout_hold_changed")
def payout_hold_changed(payout_id, held, step, episode):
    """An admin held the provider's payout, or lifted the hold. Decision (docs/payouts.md):
    the hold's reason is the admins' audit note and is not sent; the provider hears that the
    clinic is reviewing the payout, what follows, and whom to ask. A hold RazorpayX
    overtook (``step`` None: the payout was there already) is told only while the payout
    is on its way; paid, failed or reversed, that status's own notice says what happened."""
    payout = db.session.get(m.Payout, payout_id)
    if payout is None:
        return
    if step is None and (held or payout.status in TOLD):
        return
    user_id = payout.provider.user_id
    account = payout.fund_account.short_name if payout.fund_account else ""
    values = dict(amount=format_inr(payout.net), account=account)
    with speaking_to(user_id):
        if held:
            kind = "payout.held"
            title = _("Payout of %(amount)s on hold", **values)
            body = _(
                "The clinic has put your payout of %(amount)s to %(account)s on hold while "
                "it reviews it.",
                **values,
            )
            if step == NextStep.SEND_ON_RELEASE:
                body += " " + _("It will be sent once the clinic releases it.")
            else:
                body += " " + _("It will be tried again once the clinic releases it.")
            body += " " + _("If you have questions, ask the clinic's administrators.")
        else:
            kind = "payout.released"
            title = _("Payout of %(amount)s released", **values)
            if step == NextStep.RETRY_ON_RELEASE:
                body = _(
                    "The clinic released your payout of %(amount)s to %(account)s: it is "
                    "being tried again now.",
                    **values,
                )
            elif step == NextStep.SEND_ON_RELEASE:
                body = _(
                    "The clinic released your payout of %(amount)s to %(account)s: it is "
                    "being sent now.",
                    **values,
                )
            else:
                body = _(
                    "Your payout of %(amount)s to %(account)s is no longer on hold: it is on "
                    "its way to your bank.",
                    **values,
                )
    notify_user(
        user_id,
        kind,
        title,
        body,
        link=path("provider.earnings"),
        dedupe_key=hold_key(payout.id, held, episode),
    )


# The notice's own closing sentence points to the Bank account page; a stored reason's
# "Check the details." would say it twice.
CHECK_THE_DETAILS = N_("Check the details.")


def validation_reason(stored):
    """A fund account's stored reason for failing validation as the notice says it, in the
    current language, without its full stop; "" when it says nothing the notice does not.

    The portal stores the catalogue's English (``fund_accounts.MSG_NOT_VALIDATED``,
    ``MSG_NOT_ACTIVE``), said in the reader's language; a reason that is no catalogue
    message (RazorpayX's own words) is said as stored. Either way its "Check the details"
    goes: the notice ends with "Check the details on the Bank account page." The generic
    reason is then only "could not be validated", which the notice says already."""
    if not stored or stored == MSG_NOT_VALIDATED:
        return ""
    said = _(stored).strip()
    for pointer in {_(CHECK_THE_DETAILS), CHECK_THE_DETAILS}:
        said = re.sub(rf"(?:^|(?<=[.।!?]))\s*{_sentence(pointer)}\s*$", "", said, flags=re.I)
    return _reason(said)


def _sentence(text):
    """A pattern for ``text`` as a sentence, its full stop (or danda) optional."""
    return re.escape(text.rstrip(".।")) + r"[.।]?"


@jobs.job("notify.fund_account_failed")
def fund_account_failed(fund_account_id):
    """Worded neutrally: whether payouts wait or go on to an earlier account is the
    payouts capability's rule, not this notice's. Only for the provider's current account:
    one they replaced before (or since) its ₹1 check came back was given up, and "Your new
    bank account could not be validated" would be read as the one that replaced it (review
    finding: said of a corrected account that had validated). Its audit row stays."""
    row = db.session.get(m.FundAccount, fund_account_id)
    if row is None or row.provider is None or not row.current:
        return
    user_id = row.provider.user_id
    with speaking_to(user_id):
        reason = validation_reason(row.status_reason)
        if row.kind == m.VPA:
            title = _("UPI id not validated")
            body = (
                _("Your new UPI id could not be validated: %(reason)s.", reason=reason)
                if reason
                else _("Your new UPI id could not be validated.")
            )
        else:
            title = _("Bank account not validated")
            body = (
                _("Your new bank account could not be validated: %(reason)s.", reason=reason)
                if reason
                else _("Your new bank account could not be validated.")
            )
        body += " " + _("Check the details on the Bank account page.")
    notify_user(
        user_id,
        "bank.validation_failed",
        title,
        body,
        link=path("provider.bank"),
        dedupe_key=f"fund-account-failed:{row.id}",
    )


def penalty_cancellation(booking_id):
    """The cancellation of ``booking_id`` if it charged a provider a penalty, else None."""
    cancellation = cancellation_for(booking_id)
    if cancellation is None or not cancellation.penalty or not cancellation.penalty_provider_id:
        return None
    return cancellation


@jobs.job("notify.penalty_charged")
def penalty_charged(cancellation_id):
    cancellation = db.session.get(Cancellation, cancellation_id)
    if cancellation is None or not cancellation.penalty or cancellation.penalty_provider is None:
        return
    item = cancellation.booking
    user_id = cancellation.penalty_provider.user_id
    amount = format_inr(cancellation.penalty)
    with speaking_to(user_id):
        title = _("Cancellation penalty of %(amount)s", amount=amount)
        body = _(
            "A penalty of %(amount)s for cancelling %(service)s on %(when)s (visit %(number)s) "
            "was taken from your payable balance.",
            amount=amount, service=item.service.name, when=local_time(item),
            number=item.visit.number,
        )  # fmt: skip
    notify_user(
        user_id,
        "payout.penalty",
        title,
        body,
        link=path("provider.earnings"),
        dedupe_key=f"penalty-charged:{cancellation.id}",
    )
