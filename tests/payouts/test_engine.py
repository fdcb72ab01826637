"""The payout engine against the sandbox: TDS, the minimum with carry-forward, penalties,
retries and the alert, reversals, repeated and out-of-order webhooks, timeouts."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.audit.models import AuditEntry
from portal.db import unit_of_work, utcnow
from portal.domain.states import PayoutAttemptStatus, PayoutStatus
from portal.extensions import db
from portal.jobs import sweep_outbox
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.payouts import models as m
from portal.payouts import runs
from portal.payouts.admin import hold_payout, hold_refusal, release_payout, retry_payout_now
from portal.payouts.common import (
    LONGEST_RETRY_WAIT,
    PayoutError,
    Skipped,
    resend_backoff,
    retry_backoff,
)
from portal.payouts.create import create_payout
from portal.payouts.sending import due_retries, retry_payout, send_payout
from portal.payouts.status import apply_remote, will_retry
from tests.payouts.conftest import account, paid_out, payable, payout_fees, payouts_of

# On file for the tests of 194J's 10%: without one, section 206AA's 20% (test_tds_no_pan.py).
PAN = "ABCPK1234L"


def _keys(prefix):
    return db.session.scalars(
        sa.select(LedgerTransaction.idempotency_key)
        .where(LedgerTransaction.idempotency_key.like(prefix + "%"))
        .order_by(LedgerTransaction.id)  # the order they were posted in
    ).all()


def _pay_cycle(provider, period_end):
    run = runs.run_cycle(provider.payout_schedule, period_end)
    return run


# --- TDS ---------------------------------------------------------------------------------


def test_tds_at_the_crossing_payout_and_after(mid_year, world, x):
    # mid_year: run at 31 March 23:59:59 IST the third payout fell in a new year (no TDS).
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 3_000_000)  # ₹30,000
    _pay_cycle(provider, date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)  # ₹30,000: ₹60,000 > ₹50,000
    _pay_cycle(provider, date(2026, 11, 8))
    world.earn(provider, user, 1_000_000)  # ₹10,000
    _pay_cycle(provider, date(2026, 11, 15))
    x.settle()
    first, crossing, after = payouts_of(provider.id)
    assert (first.gross, first.tds, first.net) == (3_000_000, 0, 3_000_000)
    # The crossing payout deducts 10% of the year's untaxed gross, itself included.
    assert (crossing.gross, crossing.tds, crossing.net) == (3_000_000, 600_000, 2_400_000)
    assert crossing.tds_section == "194J"
    assert (after.gross, after.tds, after.net) == (1_000_000, 100_000, 900_000)
    assert all(p.status == PayoutStatus.PROCESSED for p in (first, crossing, after))
    assert account(chart.TDS_PAYABLE) == 700_000
    assert account(chart.BANK) == -paid_out(3_000_000, 2_400_000, 900_000)
    assert payable(provider.id) == 0
    from portal.payouts.reports import tds_this_year

    assert tds_this_year(provider.id)[1:] == (700_000, 7_000_000)


def test_reversed_payout_gives_its_tds_back_and_the_next_payout_settles_it(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_000)  # crosses at once: TDS ₹6,000
    run = _pay_cycle(provider, date(2026, 11, 1))
    (payout,) = run.payouts
    assert payout.tds == 600_000
    x.sandbox.store.force_outcome(payout.attempt_rows[0].razorpay_payout_id or "", "reversed")
    x.sandbox.set_faults(payout_outcome="reversed")
    x.settle()
    payout = db.session.get(m.Payout, payout.id)
    assert payout.status == PayoutStatus.REVERSED and payout.returned
    assert account(chart.TDS_PAYABLE) == 0 and payable(provider.id) == 6_000_000
    x.sandbox.set_faults(payout_outcome="processed")
    _pay_cycle(provider, date(2026, 11, 8))
    x.settle()
    latest = payouts_of(provider.id)[-1]
    assert (latest.gross, latest.tds, latest.status) == (6_000_000, 600_000, PayoutStatus.PROCESSED)
    assert account(chart.TDS_PAYABLE) == 600_000


# --- minimum and carry-forward ------------------------------------------------------------


def test_cycle_below_the_minimum_carries_forward(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 40_000)  # ₹400
    run = _pay_cycle(provider, date(2026, 11, 1))
    assert run.payouts_created == 0 and run.carried_forward == 1
    assert run.skipped[0]["reason"] == (
        "Minimum payout threshold not met. Required: ₹500, Available: ₹400"
    )
    assert payable(provider.id) == 40_000 and payouts_of(provider.id) == []
    world.earn(provider, user, 20_000)  # ₹600 now
    run = _pay_cycle(provider, date(2026, 11, 8))
    assert run.payouts_created == 1 and run.total_gross == 60_000
    x.settle()
    assert payouts_of(provider.id)[0].status == PayoutStatus.PROCESSED and payable(provider.id) == 0


def test_an_instant_payable_below_the_gateway_minimum_is_carried_not_sent(
    world, x, immediate_retries
):
    # RazorpayX pays at least ₹1: a 50-paise payout could only fail three times, raise a
    # HIGH alert and be made again by every daily sweep.
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.penalty(provider, 99_950)
    world.earn(provider, user, 100_000)  # payable: 50 paise
    x.settle()
    run = runs.run_cycle("INSTANT", date(2026, 11, 2))  # the next daily sweep
    x.settle()
    assert payouts_of(provider.id) == [] and payable(provider.id) == 50
    assert run.carried_forward == 1
    assert run.skipped[0]["reason"] == (
        "₹0.50 is below the smallest payout RazorpayX makes (₹1); it carries forward."
    )
    world.earn(provider, user, 10_000)  # ₹100 more: paid with the 50 paise
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert (payout.gross, payout.status) == (10_050, PayoutStatus.PROCESSED)


def test_a_cycle_net_below_the_gateway_minimum_after_tds_carries_forward(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 4_999_900)  # ₹49,999: just under the TDS threshold
    _pay_cycle(provider, date(2026, 11, 1))
    world.earn(provider, user, 555_600)  # crosses: TDS 10% of ₹55,555 = ₹5,555.50
    run = _pay_cycle(provider, date(2026, 11, 8))
    assert run.payouts_created == 0 and run.carried_forward == 1  # net would be 50 paise
    assert run.skipped[0]["reason"] == (
        "₹0.50 is below the smallest payout RazorpayX makes (₹1); it carries forward."
    )
    assert payable(provider.id) == 555_600
    x.settle()
    assert [p.gross for p in payouts_of(provider.id)] == [4_999_900]


def test_a_run_happens_once_per_period(world, x):
    provider, user = world.ready_provider("MONTHLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    first = runs.run_cycle("MONTHLY", date(2026, 10, 31))
    world.earn(provider, user, 100_000)
    again = runs.run_cycle("MONTHLY", date(2026, 10, 31))
    assert again.id == first.id and len(payouts_of(provider.id)) == 1
    assert payable(provider.id) == 100_000


def test_a_second_scheduler_running_the_same_cycle_does_not_corrupt_the_run(
    app, world, x, monkeypatch
):
    """Two schedulers (or a manual ``flask jobs tick``) run one cycle at once: the second
    read the providers to pay before the first paid them, then recorded the paid provider
    as carried forward ("… Available: ₹0") on the same run and failed moving the DONE run
    to DONE (review finding). The interleaving is made deterministic: the other
    scheduler's whole run happens just before this one's first payout. Now the run is
    claimed by one runner at a time: the other finds it claimed and does nothing."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)  # ₹1,000 payable
    original = runs.create_payout
    others = []

    def other_scheduler_first(*args, **kwargs):
        if not others:
            others.append("started")
            with app.app_context():  # the other cron's job, in a session of its own
                others[0] = runs.run_cycle("WEEKLY", date(2026, 11, 1)).status
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "create_payout", other_scheduler_first)
    run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.expire_all()
    run = db.session.get(m.PayoutRun, run.id)
    assert others == ["OPEN"]  # it found the run claimed and left it alone
    assert len(payouts_of(provider.id)) == 1  # money was safe before: the provider lock
    summary = (run.status, run.payouts_created, run.carried_forward, run.skipped)
    assert summary == ("DONE", 1, 0, []), summary
    assert run.providers_considered == 1 and run.claimed_by is None


def test_a_run_whose_runner_stopped_is_taken_over_once_its_claim_runs_out(world, x):
    """A runner killed mid-run leaves its claim; the next tick finishes the run once the
    claim has run out (``runs.CLAIM_FOR``, less than the 15 minutes between ticks)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    key = runs.run_key("WEEKLY", date(2026, 11, 1))
    started = utcnow()
    with unit_of_work():  # a runner that claimed the run and died
        db.session.add(
            m.PayoutRun(
                key=key,
                schedule="WEEKLY",
                period_end=date(2026, 11, 1),
                status="OPEN",
                skipped=[],
                claimed_by="dead-runner",
                claimed_until=started + runs.CLAIM_FOR,
            )
        )
    assert runs.run_cycle("WEEKLY", date(2026, 11, 1)).status == "OPEN"  # still claimed
    assert payouts_of(provider.id) == []
    with time_machine.travel(started + runs.CLAIM_FOR + timedelta(seconds=1), tick=False):
        run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    assert (run.status, run.payouts_created, run.claimed_by) == ("DONE", 1, None)
    assert len(payouts_of(provider.id)) == 1


def test_a_runner_whose_claim_was_taken_over_commits_nothing_more(app, world, x, monkeypatch):
    """A runner stalled past its claim (another took the run over meanwhile) must not
    commit its provider's payout or counters on a run it no longer holds."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    original = runs.create_payout

    def taken_over_meanwhile(*args, **kwargs):
        with app.app_context(), unit_of_work():  # another runner's claim, this one ran out
            db.session.execute(sa.update(m.PayoutRun).values(claimed_by="another-runner"))
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "create_payout", taken_over_meanwhile)
    run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.expire_all()
    run = db.session.get(m.PayoutRun, run.id)
    assert (run.status, run.payouts_created, run.claimed_by) == ("OPEN", 0, "another-runner")
    assert payouts_of(provider.id) == [] and payable(provider.id) == 100_000


def test_a_run_resumed_after_a_crash_counts_each_provider_once(world, x, monkeypatch):
    """A runner died during a provider's turn; the next tick took the run over once its
    claim ran out and resumed it. Each turn committed the carried-forward count, but the
    list of skipped providers and the providers considered only every 200 turns or with a
    payout, and the resumed run went through every provider not paid yet: those already
    carried forward were counted again (4 carried forward instead of 2, 5 considered
    instead of 4, the first skipped twice in the list). Now every turn commits all of the
    run's counts and how far it got, and a resumed run starts after the last turn done."""
    amounts = (40_000, 100_000, 30_000, 100_000)  # below the minimum, paid, below, paid
    providers = []
    for amount in amounts:
        provider, user = world.ready_provider("WEEKLY", commission_bps=0)
        world.earn(provider, user, amount)
        providers.append(provider.id)
    original = runs.create_payout
    crashed = []

    def crash_on_the_last(provider_id, **kwargs):
        if provider_id == providers[-1] and not crashed:
            crashed.append(provider_id)
            raise RuntimeError("the runner's process was killed")
        return original(provider_id, **kwargs)

    monkeypatch.setattr(runs, "create_payout", crash_on_the_last)
    with pytest.raises(RuntimeError):
        runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.rollback()
    # The claim's last renewal was at the crash: measured from a moment before the run,
    # a run whose turns took over a second under load was still claimed (left OPEN).
    crashed_at = utcnow()
    with time_machine.travel(crashed_at + runs.CLAIM_FOR + timedelta(seconds=1), tick=False):
        run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.expire_all()
    run = db.session.get(m.PayoutRun, run.id)
    assert crashed == [providers[-1]] and run.status == "DONE"
    counts = (run.providers_considered, run.payouts_created, run.carried_forward)
    assert counts == (4, 2, 2), counts
    assert run.total_gross == 200_000
    assert [s["provider_id"] for s in run.skipped] == [providers[0], providers[2]]
    assert [p.provider_id for p in run.payouts] == [providers[1], providers[3]]


def test_runs_are_due_on_mondays_and_the_first(ctx):
    assert runs.period_end_for("WEEKLY", date(2026, 11, 23)) == date(2026, 11, 22)  # Monday
    assert runs.period_end_for("WEEKLY", date(2026, 11, 24)) is None
    assert runs.period_end_for("MONTHLY", date(2026, 12, 1)) == date(2026, 11, 30)
    assert runs.period_end_for("MONTHLY", date(2026, 12, 2)) is None
    monday_ist = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    runs.run_cycle("MONTHLY", date(2026, 10, 31))  # done on the 1st
    assert [d.key for d in runs.due_runs(monday_ist)] == ["WEEKLY:2026-11-22", "INSTANT:2026-11-22"]


# --- penalties ---------------------------------------------------------------------------


def test_penalty_is_recovered_from_the_next_payout_never_below_zero(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.penalty(provider, 25_000)  # ₹250 penalty, payable −₹250
    world.earn(provider, user, 20_000)  # earns ₹200: still −₹50
    assert payable(provider.id) == -5_000 and payouts_of(provider.id) == []
    world.earn(provider, user, 100_000)  # earns ₹1,000: ₹950 payable
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.gross == 95_000 and payout.status == PayoutStatus.PROCESSED
    assert payable(provider.id) == 0
    # Nothing left: a payout attempt now is refused, the payable never goes negative.
    assert isinstance(create_payout(provider.id, kind=m.MANUAL_KIND, apply_minimum=False), Skipped)


# --- failures, retries, the alert ------------------------------------------------------------


def test_failed_payout_is_retried_then_alerted(world, x, immediate_retries, make_user):
    from portal.accounts.models import User

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 3 and payout.returned
    # status_details.description, RazorpayX's field for it (failure_reason is deprecated).
    assert payout.alerted and payout.failure_reason == "Beneficiary bank is down."
    keys = [a.idempotency_key for a in payout.attempt_rows]
    assert len(set(keys)) == 3  # a new key only after RazorpayX said FAILED
    assert [a.status for a in payout.attempt_rows] == [PayoutAttemptStatus.FAILED] * 3
    assert len(x.payouts()) == 3
    alert = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payout.alert")
    ).one()
    assert alert.after["severity"] == "HIGH" and alert.after["payout_id"] == payout.id
    from portal.notify.models import Notification

    (notice,) = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == admin.id)
    ).all()
    assert notice.priority == "HIGH" and f"Payout {payout.id} failed 3 times" in notice.title
    assert payable(provider.id) == 100_000  # the money is back on the payable
    assert account(chart.PAYOUTS_IN_TRANSIT) == 0 and account(chart.BANK) == 0

    # An admin retries it: a new payout pays the returned money.
    x.sandbox.set_faults(payout_outcome="processed")
    retry_payout_now(admin, payout.id, "Bank is back up, retrying")
    x.settle()
    assert [p.status for p in payouts_of(provider.id)] == [
        PayoutStatus.FAILED,
        PayoutStatus.PROCESSED,
    ]
    assert payable(provider.id) == 0 and account(chart.BANK) == -paid_out(100_000)


def test_a_failed_attempt_will_be_retried_until_its_money_is_back_on_the_payable(
    world, x, client, login
):
    """``status.will_retry``: what the provider's notice says after a failed attempt ("It
    will be tried again." or "The amount is back …") and the page's "retry 2 pending"."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()  # the first attempt fails; its retry waits for the backoff
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 1
    assert payout.next_retry_at is not None and not payout.returned
    assert will_retry(payout)
    login(user)
    page = client.get("/provider/earnings").get_data(as_text=True)
    assert "retry 2 pending" in page and "returned to payable" not in page
    for number in (2, 3):  # the last attempt fails too: the money goes back
        retry_payout(payout.id, force=True)
        x.settle()
        payout = db.session.get(m.Payout, payout.id)
        assert payout.attempts == number and payout.status == PayoutStatus.FAILED
    assert payout.returned and payout.next_retry_at is None
    assert not will_retry(payout)
    page = client.get("/provider/earnings").get_data(as_text=True)
    assert not re.search(r"retry \d+ pending", page) and "returned to payable" in page


def test_a_processed_or_reversed_payout_will_not_be_retried(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not will_retry(payout)
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(provider, user, 100_000)
    x.settle()
    reversed_payout = payouts_of(provider.id)[-1]
    assert reversed_payout.status == PayoutStatus.REVERSED and not will_retry(reversed_payout)


def test_failed_then_processed_on_the_retry(world, x, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.sandbox.advance(10)  # the first attempt fails at RazorpayX
    x.sandbox.set_faults(payout_outcome="processed")
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 2 and not payout.returned
    assert account(chart.BANK) == -paid_out(100_000) and payable(provider.id) == 0


def test_automatic_retry_waits_for_its_backoff(app, world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle(rounds=1)
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 1
    assert payout.next_retry_at - utcnow() > timedelta(minutes=4)
    assert sweep_outbox() == 0 or payouts_of(provider.id)[0].attempts == 1
    x.sandbox.set_faults(payout_outcome="processed")
    with time_machine.travel(utcnow() + timedelta(minutes=6), tick=False):
        db.session.commit()
        sweep_outbox()
        db.session.expire_all()
        assert payouts_of(provider.id)[0].attempts == 2
    x.settle(seconds=600)  # the sandbox's clock went back with ours: catch up
    assert payouts_of(provider.id)[0].status == PayoutStatus.PROCESSED


def test_reversal_puts_the_money_back_on_the_payable(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.REVERSED and payout.returned and payout.attempts == 1
    assert payable(provider.id) == 100_000
    assert account(chart.PAYOUTS_IN_TRANSIT) == 0 and account(chart.BANK) == 0
    assert _keys(f"payout:{payout.id}:") == [
        f"payout:{payout.id}:initiated",
        f"payout:{payout.id}:reversed",
    ]


def test_reversal_after_processed_takes_the_money_back_from_the_bank(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and account(chart.BANK) == -paid_out(100_000)
    entity = dict(
        x.sandbox.store.payouts[payout.razorpay_payout_id],
        status="reversed",
        failure_reason="Beneficiary account closed",
    )
    assert apply_remote(entity)
    db.session.commit()
    payout = db.session.get(m.Payout, payout.id)
    assert payout.status == PayoutStatus.REVERSED and account(chart.BANK) == 0
    # RazorpayX gives the fee and its GST back with the amount on a reversal.
    assert account(chart.PAYOUT_FEES) == 0 and account(chart.GST_INPUT) == 0
    assert payable(provider.id) == 100_000
    assert not apply_remote(entity)  # repeated: nothing changes
    assert _keys(f"payout:{payout.id}:") == [
        f"payout:{payout.id}:initiated",
        f"payout:{payout.id}:processed",
        f"payout:{payout.id}:fees",
        f"payout:{payout.id}:reversed",
        f"payout:{payout.id}:fees_returned",
    ]


def test_razorpayx_fees_and_gst_on_a_payout_reach_the_ledger_once(world, x):
    """RazorpayX takes its fee and the GST on it from the balance on top of the amount
    (https://razorpay.com/docs/api/x/payouts/entity: "Fees and tax, if any, are deducted
    from your account balance"; sample "fees": 590, "tax": 90). Posted only the net, `bank`
    (which includes that balance) read too high by the fee on every payout (review
    finding)."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (remote,) = x.payouts()
    fees, tax = payout_fees()
    assert remote["status"] == "processed" and (remote["fees"], remote["tax"]) == (fees, tax)
    assert account(chart.BANK) == -(100_000 + fees)
    assert account(chart.PAYOUT_FEES) == fees - tax and account(chart.GST_INPUT) == tax
    (payout,) = payouts_of(provider.id)
    # Repeats (a webhook again, a sync) post nothing more.
    assert not apply_remote(dict(remote))
    db.session.commit()
    assert account(chart.BANK) == -(100_000 + fees)
    assert _keys(f"payout:{payout.id}:") == [
        f"payout:{payout.id}:initiated",
        f"payout:{payout.id}:processed",
        f"payout:{payout.id}:fees",
    ]


# --- webhooks: repeated and out of order ----------------------------------------------------------


def test_webhooks_repeated_and_out_of_order_change_nothing_twice(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(duplicate_webhooks=True, out_of_order=True)
    world.earn(provider, user, 100_000)
    db.session.commit()
    # All of queued → initiated → processed happen before anything is delivered; then
    # every event arrives twice, newest first.
    x.sandbox.advance(30)
    delivered = x.deliver()
    assert len(delivered) >= 6
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    assert _keys(f"payout:{payout.id}:") == [
        f"payout:{payout.id}:initiated",
        f"payout:{payout.id}:processed",
        f"payout:{payout.id}:fees",
    ]
    statuses = db.session.scalars(
        sa.select(AuditEntry.action).where(
            AuditEntry.object_type == "payout",
            AuditEntry.object_id == str(payout.id),
            AuditEntry.action.like("payout.%"),
        )
    ).all()
    assert statuses.count("payout.processed") == 1
    assert "payout.processing" not in statuses  # stale after processed
    assert account(chart.BANK) == -paid_out(100_000)


def _queued_at_razorpayx(world, x):
    """A WEEKLY payout RazorpayX has (queued); its entity's identifying fields."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    (remote,) = x.payouts()
    keep = ("id", "amount", "currency", "fund_account_id", "reference_id", "notes")
    return provider, {k: remote[k] for k in keep}


def test_a_utr_sent_after_processed_is_kept(world, x):
    """RazorpayX sends `payout.updated` "when we receive the UTR for the payout from the
    bank" (https://razorpay.com/docs/webhooks/payloads/x/), and a processed payout may be
    fetched with "utr": null. A status already applied returned before the UTR was read,
    so it was dropped for good (review finding). Fees the first entity lacked come too."""
    provider, base = _queued_at_razorpayx(world, x)
    assert apply_remote({**base, "status": "processed", "utr": None}, confirm=True)
    db.session.commit()
    fees, tax = payout_fees()
    later = {**base, "status": "processed", "utr": "HDFCN00000000001", "fees": fees, "tax": tax}
    assert apply_remote(later, confirm=True)
    db.session.commit()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payout.utr == "HDFCN00000000001"
    assert account(chart.BANK) == -paid_out(100_000)
    assert not apply_remote(later, confirm=True)  # again: nothing new
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "payout.utr"))
    assert [a.after["utr"] for a in audit] == ["HDFCN00000000001"]


@pytest.mark.parametrize("stopped", ["rejected", "cancelled"])
def test_a_payout_rejected_or_cancelled_at_razorpayx_is_not_sent_again(world, x, stopped):
    """`payout.rejected`: "The payout was rejected by someone from your team"
    (https://razorpay.com/docs/webhooks/payloads/x/); a queued payout may be cancelled
    there too. Mapped to FAILED, it was retried under a new key up to three times after a
    person refused it (review finding): now final, back on the payable, a HIGH alert."""
    provider, base = _queued_at_razorpayx(world, x)
    apply_remote({**base, "status": "pending"}, confirm=True)
    details = {"reason": "payout_rejected", "description": "Rejected by the approver"}
    assert apply_remote({**base, "status": stopped, "status_details": details}, confirm=True)
    db.session.commit()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.returned and payout.attempts == 1
    assert payout.next_retry_at is None
    assert not will_retry(payout)  # stopped by a person: final
    assert payout.failure_reason == f"{stopped.capitalize()} at RazorpayX: Rejected by the approver"
    assert payable(provider.id) == 100_000 and account(chart.PAYOUTS_IN_TRANSIT) == 0
    alert = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payout.alert")
    ).one()
    assert alert.after["severity"] == "HIGH" and alert.after["kind"] == "PAYOUT_STOPPED"
    assert f"{stopped} at RazorpayX" in alert.after["title"]
    with time_machine.travel(utcnow() + timedelta(days=2), tick=False):
        sweep_outbox()  # a retry job, had one been queued, would run now
        assert due_retries() == []
    assert len(x.payouts()) == 1 and len(payouts_of(provider.id)[0].attempt_rows) == 1


def test_stale_events_after_a_final_status_are_ignored(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    entity = x.sandbox.store.payouts[payout.razorpay_payout_id]
    for status in ("queued", "processing", "processed", "failed"):
        assert not apply_remote(dict(entity, status=status))
    db.session.commit()
    assert db.session.get(m.Payout, payout.id).status == PayoutStatus.PROCESSED


# --- timeouts and server errors: never paid twice -----------------------------------------------


def test_timeout_on_create_reuses_the_key_and_pays_once(world, x, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(timeout_next=2, timeout_seconds=1.0, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert attempt.requests >= 2  # asked again after no answer, same key
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 1
    assert len(x.payouts()) == 1  # RazorpayX made one payout
    assert account(chart.BANK) == -paid_out(100_000)


def test_server_errors_are_retried_with_the_same_key(world, x, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(fail_next=2, error_status=503, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payout.attempt_rows[0].requests == 3
    assert len(x.payouts()) == 1


def test_resend_and_retry_waits_are_capped_for_any_count(ctx):
    # From 2**1024 the int no longer fits a float (OverflowError): ~43 days of hourly
    # resends; 4**20 × 5 minutes no longer fits a timedelta.
    assert resend_backoff(20) == timedelta(hours=1)
    assert resend_backoff(1_025) == resend_backoff(10**9) == timedelta(hours=1)
    assert retry_backoff(1) == timedelta(minutes=5) and retry_backoff(2) == timedelta(minutes=20)
    assert retry_backoff(21) == retry_backoff(10**9) == LONGEST_RETRY_WAIT


def test_a_long_unconfirmed_payout_still_gets_its_next_resend(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(fail_next=1, error_status=500, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    attempt = payout.attempt_rows[0]
    assert attempt.status == PayoutAttemptStatus.SENDING and attempt.requests == 1
    # As if it had been asked hourly for 43 days (every resend unanswered or refused).
    attempt.requests = 1_024
    db.session.commit()
    x.sandbox.set_faults(fail_next=1, error_status=503, match="POST /v1/payouts")
    send_payout(payout.id)  # raised OverflowError after its request: no resend, no alert
    db.session.commit()
    unanswered = db.session.scalars(
        sa.select(AuditEntry.after)
        .where(AuditEntry.action == "payout.send_unanswered")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert unanswered["requests"] == 1_025
    next_at = datetime.fromisoformat(unanswered["retry_at"])
    assert timedelta(minutes=59) < next_at - utcnow() <= timedelta(hours=1)


def _refused_on(adapter, *numbers):
    """The adapter's create calls number ``numbers`` (1-based) get a real 401 from the
    sandbox (the API key rotated meanwhile); returns the idempotency key of every call."""
    real, calls = adapter.create_payout, []

    def create_payout(key, **kw):
        calls.append(key)
        if len(calls) not in numbers:
            return real(key, **kw)
        saved = adapter.http.auth
        adapter.http.auth = ("rzp_test_payouts", "rotated-secret")
        try:
            return real(key, **kw)
        finally:
            adapter.http.auth = saved

    adapter.create_payout = create_payout
    return calls


def _made(x):
    return [p for p in x.payouts() if p["status"] in ("processed", "processing", "queued")]


def test_a_refusal_of_the_first_request_fails_the_attempt(world, x, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    calls = _refused_on(x.adapter, 1)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    first, second = payout.attempt_rows
    # Nothing can be at RazorpayX under the first key: the retry may use a new one.
    assert first.status == PayoutAttemptStatus.FAILED and calls[0] != calls[1]
    assert payout.status == PayoutStatus.PROCESSED and len(_made(x)) == 1


def test_4xx_on_resend_after_timeout_does_not_pay_twice(world, x, immediate_retries):
    # The first request is made by RazorpayX, its answer never comes; the resend under the
    # same key is refused (401): that says nothing about the first, so no new key.
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    calls = _refused_on(x.adapter, 2)
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert len(_made(x)) == 1, f"RazorpayX paid {len(_made(x))} payouts for one"
    (attempt,) = payout.attempt_rows  # found at RazorpayX by its reference and adopted
    assert attempt.razorpay_payout_id == x.payouts()[0]["id"]
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 1
    assert account(chart.BANK) == -paid_out(100_000)


def test_4xx_on_the_adapters_own_resend_after_a_timeout_does_not_pay_twice(
    world, x, immediate_retries
):
    """The adapter resends a timed-out create itself (RAZORPAY_RETRIES, default 3), inside
    the job's one request: a 4xx on that resend is no refusal of the first request, which
    RazorpayX made. Read as "refused on the first request", the attempt failed and a new
    key paid the provider twice (review finding; RazorpayX: never a fresh key while the
    first attempt may still be processing,
    https://razorpay.com/docs/api/x/payout-idempotency/)."""
    x.adapter.retries = 1
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    http, keys = x.adapter.http, []
    real = http.request

    def request(method, path, **kwargs):
        if method == "POST" and path == "/payouts":
            keys.append(kwargs["headers"]["X-Payout-Idempotency"])
            if len(keys) == 2:  # the adapter's own resend: refused (the key rotated)
                saved, http.auth = http.auth, ("rzp_test_payouts", "rotated-secret")
                try:
                    return real(method, path, **kwargs)
                finally:
                    http.auth = saved
        return real(method, path, **kwargs)

    http.request = request
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    x.settle()
    x.settle()
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(_made(x)) == 1, f"RazorpayX paid {len(_made(x))} payouts for one"
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows  # found by its reference and adopted
    assert attempt.razorpay_payout_id == x.payouts()[0]["id"]
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 1


def test_4xx_on_resend_with_nothing_found_keeps_asking_with_the_same_key(world, x, make_user):
    make_user("admin")
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    calls = _refused_on(x.adapter, 2)
    # The first request gets no usable answer (a 500), the resend a 401: the outcome is
    # still unknown, so the attempt stays SENDING, an admin is told, the key is asked again.
    x.sandbox.set_faults(fail_next=1, error_status=500, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    with time_machine.travel(utcnow() + timedelta(seconds=40), tick=False):
        sweep_outbox()  # the resend: refused, nothing at RazorpayX under the reference
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert attempt.status == PayoutAttemptStatus.SENDING and attempt.requests == 2
    assert payout.status == PayoutStatus.QUEUED and "401" in payout.last_error
    alerts = db.session.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "payout.alert")
    ).all()
    assert [(a["severity"], a["kind"]) for a in alerts] == [("HIGH", "PAYOUT_UNCONFIRMED")]
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        sweep_outbox()  # asked again, same key: the key works again
        x.settle()
    (payout,) = payouts_of(provider.id)
    assert len(calls) == 3 and len(set(calls)) == 1
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 1
    assert len(_made(x)) == 1 and account(chart.BANK) == -paid_out(100_000)


def _refused_for_good(world, x):
    """The first request gets a 500 (nothing made at RazorpayX), every resend a 401 for
    good (as for a deleted fund account): five hours of resends, the attempt SENDING."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    _refused_on(x.adapter, *range(2, 1_000))
    x.sandbox.set_faults(fail_next=1, error_status=500, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    for hours in range(1, 6):
        with time_machine.travel(utcnow() + timedelta(hours=hours), tick=False):
            sweep_outbox()
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert attempt.status == PayoutAttemptStatus.SENDING and attempt.requests >= 3
    assert x.payouts() == [] and account(chart.PAYOUTS_IN_TRANSIT) == 100_000
    return provider, payout


def test_an_unconfirmed_payout_refused_for_good_can_be_marked_failed(world, x, make_user):
    from portal.accounts.models import User
    from portal.payouts.admin import mark_failed, mark_failed_refusal, sync_payout

    admin = db.session.get(User, make_user("admin").id)
    provider, payout = _refused_for_good(world, x)
    # Hold, retry and sync lead nowhere: RazorpayX may have it, it is not failed, none listed.
    assert "may already be at RazorpayX" in hold_refusal(payout)
    with pytest.raises(PayoutError, match="Only a failed"):
        retry_payout_now(admin, payout.id, "Fund account deleted, retry")
    db.session.rollback()
    assert not sync_payout(admin, payout.id)
    db.session.rollback()
    # Within a day of the first request RazorpayX may not list it yet: refused.
    assert "less than 24 hours ago" in mark_failed_refusal(payout)
    with pytest.raises(PayoutError, match="less than 24 hours ago"):
        mark_failed(admin, payout.id, "Fund account deleted at RazorpayX")
    db.session.rollback()
    later = utcnow() + timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        assert mark_failed_refusal(payout) is None  # the page shows the button
        with pytest.raises(PayoutError, match="administrators"):
            mark_failed(db.session.get(User, provider.user_id), payout.id, "not mine to do")
        db.session.rollback()
        with pytest.raises(PayoutError, match="reason"):
            mark_failed(admin, payout.id, "short")
        db.session.rollback()
        # The look-up at RazorpayX fails: nothing is marked.
        x.sandbox.set_faults(fail_next=1, error_status=503, match="GET /v1/payouts")
        with pytest.raises(PayoutError, match="Could not check RazorpayX"):
            mark_failed(admin, payout.id, "Fund account deleted at RazorpayX")
        db.session.rollback()
        assert payouts_of(provider.id)[0].attempt_rows[0].status == PayoutAttemptStatus.SENDING
        mark_failed(admin, payout.id, "Fund account deleted at RazorpayX")
        db.session.commit()
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert attempt.status == PayoutAttemptStatus.FAILED and "Fund account deleted" in (
        attempt.failure_reason
    )
    # As for any failed attempt: the automatic retry waits, the money stays earmarked.
    assert payout.status == PayoutStatus.FAILED and payout.next_retry_at and not payout.returned
    assert account(chart.PAYOUTS_IN_TRANSIT) == 100_000
    actions = dict(
        db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor_id).where(
                AuditEntry.object_type == "payout", AuditEntry.object_id == str(payout.id)
            )
        ).all()
    )
    # Both name the admin: the move is their doing, not RazorpayX's report.
    assert actions["payout.mark_failed"] == actions["payout.failed"] == admin.id
    del x.adapter.create_payout  # the fund account works again
    with time_machine.travel(later + timedelta(hours=1), tick=False):
        sweep_outbox()  # the old attempt's resends do nothing; the retry, a new key
        x.settle()
    (payout,) = payouts_of(provider.id)
    first, second = payout.attempt_rows
    assert first.requests == attempt.requests and first.idempotency_key != second.idempotency_key
    assert payout.status == PayoutStatus.PROCESSED and payout.attempts == 2
    assert len(_made(x)) == 1 and account(chart.BANK) == -paid_out(100_000)


def test_a_payout_razorpayx_made_cannot_be_marked_failed(world, x, make_user):
    from portal.accounts.models import User
    from portal.payouts.admin import mark_failed

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    # Made at RazorpayX, the answer lost, no webhook: only the look-up can tell.
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    x.sandbox.set_faults(drop_webhooks=True)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        with pytest.raises(PayoutError, match="RazorpayX has made this payout"):
            mark_failed(admin, payout.id, "No answer for a day, fail it")
        db.session.rollback()
    (payout,) = payouts_of(provider.id)
    assert payout.attempt_rows[0].status == PayoutAttemptStatus.SENDING
    assert payout.status == PayoutStatus.QUEUED and len(x.payouts()) == 1
    x.sandbox.set_faults(drop_webhooks=False)
    x.settle()  # balanced when the test ends (autouse check): let RazorpayX finish


def test_sync_finds_a_payout_whose_answer_was_lost(world, x, make_user):
    from portal.accounts.models import User
    from portal.payouts.admin import sync_payout

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    x.sandbox.set_faults(drop_webhooks=True)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()  # RazorpayX pays it; neither the answer nor a webhook reaches the portal
    (payout,) = payouts_of(provider.id)
    assert payout.attempt_rows[0].status == PayoutAttemptStatus.SENDING
    assert sync_payout(admin, payout.id)  # looked up by the attempt's reference
    db.session.commit()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    assert payout.razorpay_payout_id == x.payouts()[0]["id"]
    assert account(chart.BANK) == -paid_out(100_000)


def test_an_admins_sync_of_a_payout_names_the_admin_in_the_audit(world, x, make_user):
    """POLICY.md "Reports and audit": who, when, what for every payout. An admin's "Sync
    status from RazorpayX" (POST /admin/payouts/<id>/sync) moves the payout to PROCESSED
    (money out of the payable for good); its audit row names that admin, as the
    reconciliation's sync, a hold, a retry and a mark-failed do (review rv_audit: the row
    said nobody did it). A status RazorpayX reports by itself (webhook) names nobody."""
    from portal.accounts.models import User
    from portal.payouts.admin import sync_payout

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    x.sandbox.set_faults(drop_webhooks=True)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.attempt_rows[0].status == PayoutAttemptStatus.SENDING
    assert sync_payout(admin, payout.id)
    db.session.commit()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    rows = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.object_type == "payout",
            AuditEntry.object_id == str(payout.id),
            AuditEntry.action == "payout.processed",
        )
    ).all()
    assert [r.actor_id for r in rows] == [admin.id]


def test_many_providers_with_timeouts_and_errors_nobody_is_paid_twice(world, x, immediate_retries):
    providers = [world.ready_provider("WEEKLY", commission_bps=0) for _ in range(6)]
    for provider, user in providers:
        world.earn(provider, user, 100_000)
    x.sandbox.set_faults(timeout_next=3, timeout_seconds=0.8, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.sandbox.set_faults(fail_next=2, error_status=502, timeout_next=0)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))  # nothing new to pay: all in flight
    x.settle()
    paid = {}
    for remote in x.payouts():
        fa = remote["fund_account_id"]
        if remote["status"] in ("processed", "processing", "queued"):
            paid[fa] = paid.get(fa, 0) + remote["amount"]
    assert len(paid) == 6 and set(paid.values()) == {100_000}
    for provider, _user in providers:
        (payout,) = payouts_of(provider.id)
        assert payout.status == PayoutStatus.PROCESSED
        assert payable(provider.id) == 0
    assert account(chart.BANK) == -paid_out(*[100_000] * 6)


# --- holds ----------------------------------------------------------------------------------


def test_admin_holds_and_releases_a_payout_waiting_for_its_retry(world, x, make_user):
    from portal.accounts.models import User

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(payout_outcome="failed")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()  # RazorpayX fails it: the retry waits 5 minutes
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.next_retry_at
    with pytest.raises(PayoutError, match="reason"):
        hold_payout(admin, payout.id, "short")
    db.session.rollback()
    with pytest.raises(PayoutError, match="administrators"):
        hold_payout(user, payout.id, "provider cannot hold")
    db.session.rollback()
    hold_payout(admin, payout.id, "Provider asked to check the account")
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(hours=2), tick=False):
        sweep_outbox()  # the retry finds the payout held and does nothing
    db.session.expire_all()
    assert len(x.payouts()) == 1 and payouts_of(provider.id)[0].attempts == 1
    # A hold means "do not send": retry now is refused (it lifted the hold and sent it).
    with pytest.raises(PayoutError, match="Release the hold first"):
        retry_payout_now(admin, payout.id, "Retry it although it is held")
    db.session.rollback()
    assert payouts_of(provider.id)[0].held and len(x.payouts()) == 1
    x.sandbox.set_faults(payout_outcome="processed")
    release_payout(admin, payout.id, "Account confirmed by phone")
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.held
    actions = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.object_type == "payout")
    ).all()
    assert "payout.hold" in actions and "payout.release" in actions


@pytest.mark.parametrize(
    "fault",
    [
        dict(timeout_next=1, timeout_seconds=1.0),  # made at RazorpayX, the answer lost
        dict(fail_next=1, error_status=500),  # an error answer: the outcome is unknown too
    ],
)
def test_a_hold_is_refused_once_a_request_went_unanswered(world, x, make_user, fault):
    from portal.accounts.models import User

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(match="POST /v1/payouts", **fault)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    attempt = payout.attempt_rows[0]
    assert attempt.status == PayoutAttemptStatus.SENDING and attempt.requests == 1
    assert "may already be at RazorpayX" in hold_refusal(payout)  # no Hold button either
    with pytest.raises(PayoutError, match="may already be at RazorpayX"):
        hold_payout(admin, payout.id, "Provider reported fraud, stop it")
    db.session.rollback()
    with time_machine.travel(utcnow() + timedelta(minutes=2), tick=False):
        sweep_outbox()  # the resend (same key)
        x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.held
    assert len(x.payouts()) == 1


def test_a_held_payout_that_razorpayx_had_is_no_longer_counted_as_held(world, x):
    # A hold that slipped through (e.g. the send's request count was lost with its crashed
    # transaction): when RazorpayX's status arrives the hold is lifted and admins are told.
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    payout.held, payout.hold_reason = True, "Held before the fix"
    db.session.commit()
    x.settle()  # the webhooks of the payout RazorpayX made (matched by the notes)
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.held
    alerts = db.session.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "payout.alert")
    ).all()
    assert [a["kind"] for a in alerts] == ["PAYOUT_HOLD_OVERTAKEN"]
    assert "payout.hold_overtaken" in db.session.scalars(sa.select(AuditEntry.action)).all()


def test_mode_is_neft_above_five_lakh(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0, pan=PAN)
    world.penalty(provider, 1)  # make the figure odd; recovered from the payout
    world.earn(provider, user, 60_000_001)  # ₹6,00,000.01
    (payout,) = payouts_of(provider.id)
    assert payout.net > 50_000_000 and payout.mode == "NEFT"
    x.settle()
    assert payouts_of(provider.id)[0].status == PayoutStatus.PROCESSED


def test_a_late_queued_event_for_a_failed_attempt_changes_nothing(world, x):
    """A FAILED attempt is final (the retry is a new attempt with a new key)."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle(rounds=1)
    (payout,) = payouts_of(provider.id)
    first = payout.attempt_rows[0]
    assert first.status == PayoutAttemptStatus.FAILED
    entity = x.sandbox.store.payouts[first.razorpay_payout_id]
    assert not apply_remote(dict(entity, status="queued"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(m.PayoutAttempt, first.id).status == PayoutAttemptStatus.FAILED


def test_an_admins_run_on_sunday_leaves_mondays_run_to_pay_what_came_after(world, x, ctx):
    """The admin's run used the period's key (today), on a Sunday the key of Monday's
    scheduled run, which then did nothing: earnings after the admin's run waited a week."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    sunday = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 11:30 IST
    with time_machine.travel(sunday, tick=False):
        by_hand = runs.run_cycle("WEEKLY", runs.ist_today(), by_hand=True)
        assert by_hand.key == "WEEKLY:admin:2026-11-22T11:30"
        again = runs.run_cycle("WEEKLY", runs.ist_today(), by_hand=True)  # a second click
        assert again.id == by_hand.id
    world.earn(provider, user, 50_000)  # Sunday afternoon
    monday = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert "WEEKLY:2026-11-22" in {d.key for d in runs.due_runs(monday)}
    scheduled = runs.run_cycle("WEEKLY", date(2026, 11, 22))
    assert scheduled.key == "WEEKLY:2026-11-22" and scheduled.payouts_created == 1
    assert sorted(p.gross for p in payouts_of(provider.id)) == [50_000, 100_000]


def _resent_for_a_day(world, x, provider, user):
    """A first request answered 500 (nothing known), then a resend every hour for a day,
    each unanswered while RazorpayX is still creating it (kept here, finished by the
    caller). Returns (payout, the time of the first request, the last request kept)."""
    from portal.gateway import errors as gw_errors

    in_flight = []

    def slow_create(key, **body):
        in_flight.append((key, body))
        raise gw_errors.GatewayTimeout("no answer in 0.5 s", idempotency_key=key)

    x.sandbox.set_faults(fail_next=1, error_status=500, match="POST /v1/payouts")
    world.earn(provider, user, 100_000)
    real, x.adapter.create_payout = x.adapter.create_payout, slow_create
    start = utcnow()
    for minutes in [1, 2, 4, 8, 16, 32, 64] + [60 * h for h in range(2, 25)] + [24 * 60 + 59]:
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            sweep_outbox()
    x.adapter.create_payout = real
    (payout,) = payouts_of(provider.id)
    return payout, start, in_flight[-1]


def test_mark_failed_waits_half_an_hour_after_the_latest_request(world, x, make_user):
    """Every hourly resend under the key may be the one RazorpayX is still creating: a
    day after the first request is not enough (re-review: marked a minute after a resend,
    the payout was paid twice)."""
    from portal.payouts.admin import mark_failed_refusal

    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    payout, start, _last = _resent_for_a_day(world, x, provider, user)
    (attempt,) = payout.attempt_rows
    latest = attempt.last_request_at
    assert latest >= start + timedelta(hours=24) and attempt.first_request_at <= start
    with time_machine.travel(latest + timedelta(minutes=10), tick=False):
        assert "less than half an hour ago" in mark_failed_refusal(payout)
    with time_machine.travel(latest + timedelta(minutes=30), tick=False):
        assert mark_failed_refusal(payout) is None
    # The resends go on meanwhile: balanced when the test ends (autouse check).
    x.settle()


def test_an_attempt_marked_failed_that_razorpayx_then_makes_is_a_high_alert(world, x, make_user):
    from portal.accounts.models import User
    from portal.payouts.admin import mark_failed

    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    payout, start, (last_key, last_body) = _resent_for_a_day(world, x, provider, user)
    (attempt,) = payout.attempt_rows
    with time_machine.travel(attempt.last_request_at + timedelta(minutes=31), tick=False):
        mark_failed(admin, payout.id, "Nothing at RazorpayX after a day")
        db.session.commit()
    x.adapter.create_payout(last_key, **last_body)  # RazorpayX finishes it after all
    with time_machine.travel(start + timedelta(hours=27), tick=False):
        sweep_outbox()
        x.settle()
    (first, *_rest) = payouts_of(provider.id)[0].attempt_rows
    assert first.status == PayoutAttemptStatus.FAILED
    alerts = db.session.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "payout.alert")
    ).all()
    assert "PAYOUT_FAILED_ATTEMPT_MADE" in [a["kind"] for a in alerts]
    made = sa.select(sa.func.count(AuditEntry.id)).where(
        AuditEntry.action == "payout.failed_attempt_made"
    )
    assert db.session.scalar(made) == 1
    # RazorpayX's later word of the same attempt (payout.updated, a sync) adds nothing.
    from portal.payouts import status

    (made_there,) = [p for p in x.payouts() if p["id"] == first.razorpay_payout_id]
    status.apply_remote({**made_there, "utr": "UTR0000000001"})
    db.session.commit()
    assert db.session.scalar(made) == 1


def test_a_send_job_queued_for_an_earlier_attempt_sends_nothing(world, x):
    """A resend queued for an attempt since failed (an admin marked it) must not send the
    next attempt early: that attempt's first 4xx would be taken for a refused resend."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(fail_next=1, error_status=500, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    (payout,) = payouts_of(provider.id)
    (attempt,) = payout.attempt_rows
    assert attempt.number == 1 and attempt.requests == 1
    assert send_payout(payout.id, attempt_number=2) is None
    db.session.expire_all()
    assert payouts_of(provider.id)[0].attempt_rows[0].requests == 1
    x.settle()


def test_a_retry_whose_outcome_is_unknown_again_alerts_the_admins_again(world, x, make_user):
    """Attempt 1 goes unanswered and every resend is refused (HIGH "outcome unknown"); an
    admin marks it failed; the automatic retry's attempt 2 goes unanswered and is refused
    too. That is news again: the admins get a second notice, not one swallowed by the
    first's key (one per payout and kind before)."""
    from portal.accounts.models import User
    from portal.notify.models import Notification
    from portal.payouts.admin import mark_failed

    admin = db.session.get(User, make_user("admin").id)

    def unconfirmed_notices():
        db.session.expire_all()
        return db.session.scalars(
            sa.select(Notification).where(
                Notification.user_id == admin.id, Notification.kind == "alert.PAYOUT_UNCONFIRMED"
            )
        ).all()

    provider, payout = _refused_for_good(world, x)
    assert len(unconfirmed_notices()) == 1
    later = utcnow() + timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        mark_failed(admin, payout.id, "Fund account deleted at RazorpayX")
        db.session.commit()
    from portal.gateway import errors as gw_errors

    refusing, asked = x.adapter.create_payout, set()

    def unanswered_then_refused(key, **body):
        if key not in asked:  # a new attempt's first request: no answer
            asked.add(key)
            raise gw_errors.GatewayTimeout("no answer in 0.5 s", idempotency_key=key)
        return refusing(key, **body)  # its resends: 401

    x.adapter.create_payout = unanswered_then_refused
    for hours in (1, 2, 3):
        with time_machine.travel(later + timedelta(hours=hours), tick=False):
            sweep_outbox()  # the retry: a new key, unanswered, its resends refused
    (payout,) = payouts_of(provider.id)
    first, second = payout.attempt_rows
    assert second.status == PayoutAttemptStatus.SENDING and second.requests >= 2
    notices = unconfirmed_notices()
    assert len(notices) == 2 and all(f"Payout {payout.id}" in n.title for n in notices)
    # Its own resends (one per hour) still tell nothing new.
    with time_machine.travel(later + timedelta(hours=5), tick=False):
        sweep_outbox()
    assert len(unconfirmed_notices()) == 2
    del x.adapter.create_payout
    with time_machine.travel(later + timedelta(hours=7), tick=False):
        sweep_outbox()
        x.settle()
