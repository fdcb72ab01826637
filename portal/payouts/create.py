"""Creating a payout from a provider's payable balance: the minimum, TDS, the ledger
posting that takes the money off the payable, and the job that sends it."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from portal.audit.service import record
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain.payouts import (
    cycle_payable,
    gateway_payable,
    payout_mode,
    tds_for_payout,
)
from portal.domain.rates import financial_year, format_inr
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.i18n import N_
from portal.jobs import enqueue
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance, credit, debit, post
from portal.payouts import models as m
from portal.payouts.common import (
    SEND_JOB,
    PayoutError,
    Skipped,
    has_pan,
    lock_payee,
    lock_provider,
    new_key,
    payable_balance,
    payee_key,
    payout_fund_account,
    same_payee,
    snapshot,
)

MSG_NO_ACCOUNT = N_("No validated bank account or UPI id: payouts wait until one is validated.")
MSG_NOTHING = "Nothing to pay: the payable balance is {balance}."
MSG_RACE = N_("The payable changed while the payout was being made; try again.")


def tds_for_next(provider_id, fy, gross, pol=None, *, pan_on_file=None):
    """``(tds, rule, result)`` of a new payout of ``gross`` in financial year ``fy``: the
    TDS it deducts, the rule it is deducted under (the policy's for ``fy`` today: POLICY.md,
    the rules of the day it is paid; stored on the payout) and ``tds_for_payout``'s result,
    whose ``rate_bps`` and ``higher_section`` say the rate applied and why (stored too).

    ``pan_on_file``: whether the provider has a PAN on file, as the payout read it under
    its locks (``_create``: the provider read afresh under ``lock_provider``, which every
    PAN write takes first); None reads it now (a page's preview). Without one, past the
    threshold, the rate is section 206AA's (``domain.payouts.rate_for_payee``).

    The year's state (gross paid, untaxed gross, shortfall) is rebuilt by replaying the
    payee's payouts of that year that still count (not returned to the payable): the
    payouts of every profile with the provider's PAN, or the provider's own while it has
    none (``common.same_payee``; read under ``common.lock_payee`` when paying), through
    ``tds_for_payout``, **each under the rule it was deducted under** (stored with it): a
    rule changed partway through the year applies from the next payout on and never
    re-taxes the year's earlier ones, nor gives their TDS back. The difference between
    what the replay says was due and what was actually deducted is settled on this payout
    (so a reversed payout's TDS is recomputed, never lost), clamped to 0 … gross. A payout
    of an earlier year that comes back is not of this year (its TDS is undone in its own
    year): the year starts afresh."""
    pol = pol or policy()
    rule = pol.tds_rule_for(fy)
    if pan_on_file is None:
        pan_on_file = has_pan(provider_id)
    rows = db.session.execute(
        sa.select(m.Payout.gross, m.Payout.tds, m.Payout.tds_rate_bps, m.Payout.tds_threshold)
        .where(
            same_payee(provider_id),
            m.Payout.financial_year == fy,
            m.Payout.returned.is_(False),
        )
        .order_by(m.Payout.id)
    ).all()
    paid = untaxed = shortfall = due_so_far = deducted = 0
    for gross_before, tds_before, rate_bps, threshold in rows:
        own = replace(rule, rate_bps=rate_bps, threshold=threshold)
        step = tds_for_payout(gross_before, paid, untaxed, own, fy_tds_shortfall_before=shortfall)
        paid += gross_before
        untaxed, shortfall = step.untaxed_after, step.shortfall_after
        due_so_far += step.tds
        deducted += tds_before
    result = tds_for_payout(
        gross, paid, untaxed, rule, fy_tds_shortfall_before=shortfall, pan_on_file=pan_on_file
    )
    tds = min(max(result.tds + (due_so_far - deducted), 0), gross)
    return tds, rule, result


def next_payout(provider_id, fy, gross, pol=None, *, pan_on_file=None):
    """A payout of ``gross`` now, in financial year ``fy``: ``(decision, rule, result)``,
    the decision being ``domain.payouts.gateway_payable`` on its TDS (``tds_for_next``): is
    it sent, or carried forward and why; the rule, the TDS rule it is deducted under; the
    result, ``tds_for_payout``'s (the rate applied and why). The one rule for it:
    ``create_payout`` follows it, and the INSTANT earnings page says why from it
    (``reports._instant_carry``). ``pan_on_file``: as ``tds_for_next``."""
    tds, rule, result = tds_for_next(provider_id, fy, gross, pol, pan_on_file=pan_on_file)
    return gateway_payable(gross, tds), rule, result


class PayableMoved(PayoutError):
    """The payable went down between its read and the payout's debit."""


def create_payout(
    provider_id, *, kind, run=None, booking_id=None, actor=None, apply_minimum=None, max_gross=None
):
    """Pay out the provider's payable balance (all of it, or at most ``max_gross``).

    Returns the new :class:`Payout` (QUEUED, a send job enqueued) or :class:`Skipped`.
    Cycles apply the ₹500 minimum (``cycle_payable``); INSTANT payouts do not, but no
    payout is made whose net is below RazorpayX's ₹1 (``next_payout``). The
    payable is debited at once (``require_non_negative``: two concurrent payouts can never
    take it below zero). Its own unit of work: the payout row and its key are committed
    before the send job calls RazorpayX, so a crash after the call is reconciled by
    asking again with the same key.

    A penalty or give-back posted between the payable's read and its debit (they do not
    wait for a payout) makes the debit's guard refuse: the payout is made again once from
    the balance as it is then, or skipped by the same rules, not the whole cycle lost. An
    amount an admin confirmed (``max_gross``) is not: they are asked again."""
    for last in (max_gross is not None, True):
        try:
            with unit_of_work():
                return _create(
                    provider_id,
                    kind=kind,
                    run=run,
                    booking_id=booking_id,
                    actor=actor,
                    apply_minimum=apply_minimum,
                    max_gross=max_gross,
                )
        except PayableMoved:
            if last:
                raise


def _create(provider_id, *, kind, run, booking_id, actor, apply_minimum, max_gross):
    pol = policy()
    provider = lock_provider(provider_id)
    if provider is None:
        return Skipped(provider_id, "unknown provider")
    lock_payee(provider)  # TDS is counted per PAN: its other profiles' payouts wait
    fund_account = payout_fund_account(provider_id)
    available = payable_balance(provider_id)
    if fund_account is None:
        return Skipped(provider_id, MSG_NO_ACCOUNT, available)
    if apply_minimum is None:
        apply_minimum = kind == m.CYCLE_KIND
    if apply_minimum:
        decision = cycle_payable(available, policy=pol)
        if not decision.pay:
            return Skipped(provider_id, decision.message, available)
    gross = available if max_gross is None else min(available, max_gross)
    if gross <= 0:
        return Skipped(provider_id, MSG_NOTHING.format(balance=format_inr(available)), available)
    fy = financial_year(utcnow())
    # The PAN as read under the provider's payout lock: a PAN write waits for this payout
    # (``common.lock_pan_write``), so the rate is the one of the moment it is made.
    pan_on_file = payee_key(provider.pan) is not None
    to_send, rule, result = next_payout(provider_id, fy, gross, pol, pan_on_file=pan_on_file)
    if not to_send.pay:
        # RazorpayX would refuse a net under ₹1: three failures and a HIGH alert, again
        # every sweep. It carries forward.
        return Skipped(provider_id, to_send.message, available)
    tds, net = to_send.tds, to_send.net
    key = new_key()
    payout = m.Payout(
        provider_id=provider_id,
        fund_account_id=fund_account.id,
        run_id=run.id if run is not None else None,
        booking_id=booking_id,
        kind=kind,
        financial_year=fy,
        gross=gross,
        tds=tds,
        net=net,
        tds_section=rule.section if tds else None,
        # The rate applied (section 206AA's without a PAN, past the threshold) and why: the
        # year's later payouts replay this one under it, and the pages say it.
        tds_rate_bps=result.rate_bps,
        tds_higher_section=result.higher_section,
        tds_threshold=rule.threshold,
        mode=payout_mode(net, pol, fund_account_type=fund_account.kind),
        idempotency_key=key,
        status=PayoutStatus.QUEUED,
        attempts=1,
    )
    db.session.add(payout)
    db.session.flush()
    db.session.add(m.PayoutAttempt(payout_id=payout.id, number=1, idempotency_key=key))
    payable = chart.provider_payable(provider_id)
    try:
        post(
            m.INITIATED_KIND,
            [
                debit(payable, gross),
                credit(chart.TDS_PAYABLE, tds),
                credit(chart.PAYOUTS_IN_TRANSIT, net),
            ],
            reference=("payout", payout.id),
            idempotency_key=f"payout:{payout.id}:initiated",
            memo=f"payout {payout.id} to provider {provider_id}",
            require_non_negative=[payable],
        )
    except InsufficientBalance:
        raise PayableMoved(MSG_RACE) from None  # the unit of work drops the payout row
    record(
        actor,
        "payout.created",
        "payout",
        payout.id,
        after=snapshot(payout)
        | {
            "kind": kind,
            "run_id": payout.run_id,
            "booking_id": booking_id,
            "mode": payout.mode,
            "financial_year": fy,
        },
    )
    enqueue(
        SEND_JOB, payout_id=payout.id, attempt_number=1, dedupe_key=f"payout-send:{payout.id}:1:0"
    )
    return payout
