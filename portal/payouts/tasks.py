"""Job entry points, the periodic schedule and the RazorpayX webhook handlers of the
payout capability. Importing this module registers them (add it to CAPABILITIES).

Jobs do not commit: each calls one use case, which is its own unit of work (nested in the
runner's, if the runner opens one)."""

import logging

from portal.gateway.confirm import Unconfirmed, confirmed_payout, park
from portal.gateway.webhook_processing import on_event
from portal.jobs import job, periodic
from portal.payouts import fund_accounts, runs, sending, status
from portal.payouts.common import INSTANT_JOB, RETRY_JOB, SEND_JOB
from portal.payouts.gateway import gateway

log = logging.getLogger("portal.payouts")


@job(SEND_JOB)
def send(payout_id, attempt_number=None):
    # attempt_number: the attempt it was queued for (None: a job queued before it was
    # carried, or a release, which sends whichever attempt is current)
    sending.send_payout(payout_id, attempt_number)


@job(RETRY_JOB)
def retry(payout_id):
    sending.retry_payout(payout_id)


@job(INSTANT_JOB)
def instant(provider_id, booking_id=None):
    runs.instant_payout(provider_id, booking_id)


@periodic("payouts.cycles", every=15 * 60)
def cycles():
    """WEEKLY runs on Mondays, MONTHLY on the 1st, the INSTANT sweep daily (IST); a due
    day missed is caught up, and a run whose runner stopped is resumed (``runs.due_runs``)."""
    done, failed, first_error = [], [], None
    for due in runs.due_runs():
        # One run failing (for good, say) must not hold up the others: a stopped run is
        # listed first at every tick. It is logged, the rest go on, and the tick fails at
        # the end, naming it (the job's failure; the next tick tries it again).
        try:
            run = runs.run_cycle(due.schedule, due.period_end, key=due.key)
        except Exception as exc:
            log.exception("payout run %s failed", due.key)
            failed.append(due.key)
            first_error = first_error or exc
            continue
        done.append(run.key)
    if failed:
        raise RuntimeError(f"payout runs failed: {', '.join(failed)}") from first_error
    return done


@periodic("payouts.retries", every=60)
def retries():
    """Automatic retries whose time has come (the outbox also runs them; this catches
    any that were lost)."""
    count = 0
    for payout_id in sending.due_retries():
        if sending.retry_payout(payout_id) is not None:
            count += 1
    return count


@periodic("payouts.poll_validations", every=5 * 60)
def poll_validations():
    """Validations whose webhook has not come: ask RazorpayX."""
    for row_id in fund_accounts.pending_validations():
        fund_accounts.refresh_validation(None, row_id)


# --- webhooks -----------------------------------------------------------------------------


@on_event(
    "payout.queued",
    "payout.pending",
    "payout.initiated",
    "payout.processing",
    "payout.processed",
    "payout.updated",
    "payout.failed",
    "payout.rejected",
    "payout.reversed",
)
def on_payout_event(event):
    # Processed / reversed / failed move money: apply the gateway's own record, fetched by
    # id, never the event body; a disagreement is parked with a HIGH alert.
    entity = event.entity("payout")
    if status.find_attempt(entity) is None:  # not ours: nothing to move, no need to ask
        return
    try:
        found = confirmed_payout(gateway(), entity)
        status.apply_remote(found, confirm=True)
    except Unconfirmed as exc:
        park(event, exc)


@on_event("fund_account.validation.completed", "fund_account.validation.failed")
def on_validation_event(event):
    fund_accounts.apply_validation_entity(event.entity("fund_account.validation"))
