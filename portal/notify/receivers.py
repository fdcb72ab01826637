"""The notify capability listens to what the others say happened (``portal.events``).

Each receiver runs inside the sender's unit of work: it changes reminders, writes notices
or records an outbox job (with the dedupe key that keeps it to once), so nothing leaves
before the commit and a rolled-back use case tells no one. The capabilities never import
``portal.notify``; this module is imported with the app (``portal.CAPABILITIES``)."""

from portal import events, jobs
from portal.booking.models import ATTENTION_RECONCILIATION
from portal.domain.states import FundAccountStatus
from portal.extensions import db
from portal.notify import (  # noqa: F401
    account_mail,
    admin_access_notices,
    link_notices,
    payout_notices,
    policy_notices,
    refund_notices,
    tasks,
    wallet_notices,
)
from portal.notify.alerts import raise_alert
from portal.notify.reminders import retime_reminders, withdraw_reminders
from portal.payouts.models import Payout
from portal.payouts.status import will_retry


@events.visit_confirmed.connect
def _visit_confirmed(sender, visit_id):
    jobs.enqueue(
        "notify.booking_confirmed", visit_id=visit_id, dedupe_key=f"visit-confirmed:{visit_id}"
    )


@events.visit_needs_attention.connect
def _visit_needs_attention(sender, visit_id, reason):
    if reason == ATTENTION_RECONCILIATION:
        return  # a reconciliation run raises one alert for all the visits it flags
    jobs.enqueue("notify.payment_attention", visit_id=visit_id, reason=reason)


@events.booking_rescheduled.connect
def _booking_rescheduled(sender, booking_id, reschedule_id, old_start):
    retime_reminders(booking_id)  # now, in the move's transaction; the notices follow
    jobs.enqueue(
        "notify.booking_rescheduled",
        booking_id=booking_id,
        old_start=old_start.isoformat(),
        reschedule_id=reschedule_id,
        dedupe_key=f"rescheduled:{reschedule_id}",
    )


@events.meet_link_changed.connect
def _meet_link_changed(sender, booking_id):
    # In the change's transaction: the patient is told of this link, once per change.
    tasks.on_meet_link_changed(booking_id)


@events.reschedule_failed.connect
def _reschedule_failed(sender, reschedule_id):
    jobs.enqueue(
        "notify.reschedule_failed",
        reschedule_id=reschedule_id,
        dedupe_key=f"reschedule-failed:{reschedule_id}",
    )


@events.reschedule_fee_unapplied.connect
def _reschedule_fee_unapplied(sender, reschedule_id, razorpay_payment_id, amount):
    jobs.enqueue(
        "notify.reschedule_fee_unapplied",
        reschedule_id=reschedule_id,
        payment_id=razorpay_payment_id,
        amount=amount,
        dedupe_key=f"reschedule-fee-unapplied:{razorpay_payment_id}",
    )


@events.payment_link_expired.connect
def _payment_link_expired(sender, visit_id, payment_id, renewed):
    link_notices.link_expired(visit_id, payment_id, renewed)


@events.payment_link_issued.connect
def _payment_link_issued(sender, visit_id, payment_id):
    link_notices.link_issued(visit_id, payment_id)


@events.payment_link_lapsed.connect
def _payment_link_lapsed(sender, visit_id, payment_id, reason=None):
    link_notices.link_lapsed(visit_id, payment_id, reason)


@events.booking_cancelled.connect
def _booking_cancelled(sender, booking_id, by, refund, reason):
    withdraw_reminders(booking_id, "booking cancelled")  # in the cancelling transaction
    jobs.enqueue(
        "notify.booking_cancelled",
        booking_id=booking_id,
        by=by,
        refund=refund,
        reason=reason,
        dedupe_key=f"booking-cancelled:{booking_id}",
    )


@events.booking_cancelled.connect
def _penalty_charged(sender, booking_id, **_):
    # A provider's cancellation (or an admin's for the provider) took a penalty from their
    # payable balance: they are told, once per cancellation.
    cancellation = payout_notices.penalty_cancellation(booking_id)
    if cancellation is not None:
        jobs.enqueue(
            "notify.penalty_charged",
            cancellation_id=cancellation.id,
            dedupe_key=f"penalty-charged:{cancellation.id}",
        )


@events.payout_status_changed.connect
def _payout_status_changed(sender, payout_id, status, attempt):
    if status not in payout_notices.TOLD:
        return
    # Read now, in the move's transaction: whether a failed attempt is retried or its money
    # went back on the payable is what happened at this move, not later.
    payout = db.session.get(Payout, payout_id)
    jobs.enqueue(
        "notify.payout_moved",
        payout_id=payout_id,
        status=str(status),
        attempt=attempt,
        retried=will_retry(payout),
        dedupe_key=payout_notices.payout_key(payout_id, status, attempt),
    )


@events.payout_hold_changed.connect
def _payout_hold_changed(sender, payout_id, held, step, episode):
    jobs.enqueue(
        "notify.payout_hold_changed",
        payout_id=payout_id,
        held=held,
        step=step,
        episode=episode,
        dedupe_key=payout_notices.hold_key(payout_id, held, episode),
    )


@events.fund_account_checked.connect
def _fund_account_checked(sender, fund_account_id, status):
    if status == FundAccountStatus.FAILED:
        jobs.enqueue(
            "notify.fund_account_failed",
            fund_account_id=fund_account_id,
            dedupe_key=f"fund-account-failed:{fund_account_id}",
        )


@events.refund_processed.connect
def _refund_processed(sender, refund_id):
    jobs.enqueue(
        "notify.refund_processed", refund_id=refund_id, dedupe_key=f"refund-processed:{refund_id}"
    )


@events.refund_failed.connect
def _refund_failed(sender, refund_id, episode=None):
    # Once per episode: a refund that fails again after being found at Razorpay or retried
    # is alerted again.
    jobs.enqueue(
        "notify.refund_failed",
        refund_id=refund_id,
        episode=episode,
        dedupe_key=f"refund-failed-alert:{refund_id}:{episode}",
    )


@events.refund_override_requested.connect
def _refund_override_requested(sender, approval_id):
    jobs.enqueue(
        "notify.refund_override_requested",
        approval_id=approval_id,
        dedupe_key=f"refund-approval:{approval_id}",
    )


@events.refund_override_approved.connect
def _refund_override_approved(sender, approval_id, booking_id, amount):
    jobs.enqueue(
        "notify.refund_approved",
        booking_id=booking_id,
        amount=amount,
        approval_id=approval_id,
        dedupe_key=f"refund-extra-notice:{approval_id}",
    )


@events.password_reset_requested.connect
def _password_reset_requested(sender, user_id, link, minutes):
    account_mail.password_reset_mail(user_id, link, minutes)


@events.registration_for_existing_account.connect
def _registration_for_existing_account(sender, user_id, reset_link):
    account_mail.existing_account_mail(user_id, reset_link)


@events.user_invited.connect
def _user_invited(sender, user_id, invited_by_id, link, days):
    account_mail.invitation_mail(user_id, invited_by_id, link, days)


@events.patient_added.connect
def _patient_added(sender, user_id, added_by_id, link, days):
    account_mail.welcome_patient_mail(user_id, added_by_id, link, days)


@events.settlement_alert.connect
@events.reconciliation_alert.connect
@events.gateway_alert.connect
@events.payout_alert.connect
def _payout_alert(sender, *, severity, kind, title, message, link=None, dedupe_key=None, **_):
    # The notices made are handed back to the sender (payouts shows them to the admin).
    return raise_alert(
        kind=kind, title=title, body=message, link=link, severity=severity, dedupe_key=dedupe_key
    )


@events.policy_change_requested.connect
def _policy_change_requested(sender, version_id):
    jobs.enqueue(
        "notify.policy_change_requested",
        version_id=version_id,
        dedupe_key=f"policy-approval:{version_id}",
    )


@events.admin_access_requested.connect
def _admin_access_requested(sender, request_id):
    jobs.enqueue(
        "notify.admin_access_requested",
        request_id=request_id,
        dedupe_key=f"admin-access:{request_id}",
    )


@events.wallet_adjustment_requested.connect
def _wallet_adjustment_requested(sender, adjustment_id):
    jobs.enqueue(
        "notify.wallet_adjustment_requested",
        adjustment_id=adjustment_id,
        dedupe_key=f"wallet-adjustment:{adjustment_id}",
    )
