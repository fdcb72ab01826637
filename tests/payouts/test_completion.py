"""Starting and completing a booking: state machine, ownership, audit, the earning posted
once (team split by equal shares), INSTANT providers get a payout job."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking.errors import BookingError, NotFound
from portal.db import utcnow
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.outbox import OutboxItem
from portal.payouts import completion, queries
from tests.payouts.conftest import account, payable


def test_provider_starts_and_completes_their_booking(world):
    provider, user = world.provider("WEEKLY")
    booking = world.booking(provider, fee=100_000)
    unearned_before = account(chart.UNEARNED_FEES)

    completion.start_booking(user, booking.id)
    assert db.session.get(type(booking), booking.id).status == "STARTED"
    completion.complete_booking(user, booking.id)

    booking = db.session.get(type(booking), booking.id)
    assert booking.status == "COMPLETED"
    assert booking.visit.status == "COMPLETED"
    assert payable(provider.id) == 95_000  # F − 5% commission
    assert account(chart.COMMISSION_REVENUE) == 5_000
    assert account(chart.UNEARNED_FEES) == unearned_before - 100_000
    actions = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.object_type == "booking", AuditEntry.object_id == str(booking.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["booking.start", "booking.complete"]
    # WEEKLY: no payout job per booking.
    assert not db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.job == "payouts.instant")
    ).all()


def test_refused_transitions_change_nothing(world):
    provider, user = world.provider()
    booking = world.booking(provider)
    with pytest.raises(BookingError, match="cannot be completed"):
        completion.complete_booking(user, booking.id)  # not started
    db.session.rollback()
    completion.start_booking(user, booking.id)
    with pytest.raises(BookingError, match="cannot be started"):
        completion.start_booking(user, booking.id)
    db.session.rollback()
    completion.complete_booking(user, booking.id)
    with pytest.raises(BookingError, match="cannot be completed"):
        completion.complete_booking(user, booking.id)
    db.session.rollback()
    # The earning was posted once.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key == f"complete:{booking.id}")
        )
        == 1
    )
    assert payable(provider.id) == 95_000


def test_cannot_start_long_before_the_appointment(world):
    provider, user = world.provider()
    booking = world.booking(provider, start=utcnow() + timedelta(hours=3))
    with pytest.raises(BookingError, match="Too early to start"):
        completion.start_booking(user, booking.id)
    db.session.rollback()
    completion.start_booking(user, booking.id, now=booking.start_at - timedelta(minutes=30))


def test_cancelled_or_unpaid_bookings_cannot_start(world):
    provider, user = world.provider()
    for status in ("SCHEDULED", "CANCELLED", "EXPIRED"):
        booking = world.booking(provider, status=status)
        with pytest.raises(BookingError):
            completion.start_booking(user, booking.id)
        db.session.rollback()


def test_only_the_booking_s_provider_or_an_admin_may_act(world, make_user):
    provider, user = world.provider()
    other, other_user = world.provider()
    booking = world.booking(provider)
    patient = world.patient()
    for actor in (other_user, patient):
        with pytest.raises(NotFound):
            completion.start_booking(actor, booking.id)
        db.session.rollback()
    with pytest.raises(NotFound):
        completion.start_booking(user, 999_999)
    admin = make_user("admin")
    completion.start_booking(admin, booking.id)
    completion.complete_booking(admin, booking.id)
    assert payable(provider.id) == 95_000
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "booking.complete")
    ).one()
    assert entry.actor_id == admin.id


def test_team_appointment_splits_the_fee_equally_by_largest_remainder(world):
    a, ua = world.provider(commission_bps=500)
    b, _ub = world.provider(commission_bps=1000)
    c, _uc = world.provider(commission_bps=0)
    booking = world.booking([c, a, b], fee=100_001)
    world.complete(booking, ua)
    shares = {
        p.id: (share, commission, earning)
        for p, share, commission, earning in completion.earning_shares(booking)
    }
    # 100_001 / 3 = 33_333.67: the odd paisa goes to the lowest provider id first.
    ordered = sorted(shares)
    assert [shares[pid][0] for pid in ordered] == [33_334, 33_334, 33_333]
    assert payable(a.id) == 33_334 - 1_667  # 5% of 33_334 = 1_666.7 → 1_667
    assert payable(b.id) == 33_334 - 3_333  # 10% of 33_334 = 3_333.4 → 3_333
    assert payable(c.id) == 33_333
    assert account(chart.COMMISSION_REVENUE) == 1_667 + 3_333
    assert sum(payable(p.id) for p in (a, b, c)) + account(chart.COMMISSION_REVENUE) == 100_001


def test_instant_provider_gets_a_payout_job_per_completed_booking(world):
    provider, user = world.provider("INSTANT")  # no fund account: the job skips, audited
    world.earn(provider, user, 50_000)
    items = db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.job == "payouts.instant")
    ).all()
    assert len(items) == 1 and items[0].payload["provider_id"] == provider.id
    assert items[0].done_at is not None
    skipped = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payout.skipped")
    ).one()
    assert "No validated bank account" in skipped.after["reason"]
    assert payable(provider.id) == 47_500  # waits on the payable


def test_schedule_and_no_show_candidates(world):
    provider, user = world.provider()
    # Noon in India: "two hours ago" is today there whatever the clock says (the schedule
    # starts at India's midnight; run at 00:30 IST, this test saw yesterday's booking).
    now = utcnow().astimezone(INDIA_TZ).replace(hour=12, minute=0, second=0, microsecond=0)
    late = world.booking(provider, start=now - timedelta(hours=3))  # ended 2.5 h ago
    recent = world.booking(provider, start=now - timedelta(hours=2))  # ended 1.5 h ago
    upcoming = world.booking(provider, start=now + timedelta(days=2))
    overdue = completion.overdue_unstarted(now)
    assert [b.id for b in overdue] == [late.id]
    schedule_ids = [b.id for b in queries.schedule_page(provider.id, now=now).items]
    assert upcoming.id in schedule_ids and recent.id in schedule_ids


def test_completing_a_booking_flagged_not_completed_earns_and_clears_the_flag(world):
    """A booking left STARTED past end + 2 h is flagged (notify.flag_not_completed);
    completing it late still posts the earning once, and the flag is closed by that
    completion (nothing is left to decide), so the visit leaves "Needs attention"."""
    from portal.booking import attention
    from portal.booking.lookup import visit_needs_attention
    from portal.notify import sweeps

    provider, user = world.provider()
    booking = world.booking(provider, fee=100_000)
    completion.start_booking(user, booking.id)
    later = booking.end_at + timedelta(hours=2)
    assert sweeps.flag_not_completed(now=later) == 1
    db.session.commit()
    visit = booking.visit
    assert visit_needs_attention(visit, now=later)
    [flag] = attention.open_flags_by_visit([visit.id])[visit.id]
    assert flag.kind == attention.NOT_COMPLETED

    completion.complete_booking(user, booking.id, now=later + timedelta(minutes=5))
    db.session.expire_all()
    booking = db.session.get(type(booking), booking.id)
    assert booking.status == "COMPLETED" and booking.visit.status == "COMPLETED"
    assert payable(provider.id) == 95_000
    flag = db.session.get(attention.AttentionFlag, flag.id)
    assert flag.resolved_at == later + timedelta(minutes=5)
    assert flag.resolved_by_id == user.id and "completed" in flag.note
    assert not visit_needs_attention(booking.visit, now=later + timedelta(minutes=5))
    assert sweeps.flag_not_completed(now=later + timedelta(hours=1)) == 0
    actions = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.object_type == "booking", AuditEntry.object_id == str(booking.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["booking.start", "booking.complete", "attention.clear"]


def test_a_not_completed_flag_resolved_before_completion_keeps_its_note(world, make_user):
    """An admin who resolved the flag (say, "patient left; refund agreed") keeps the
    decision: a later completion does not write over the note."""
    from portal.booking import attention
    from portal.notify import sweeps

    provider, user = world.provider()
    admin = make_user("admin")
    booking = world.booking(provider)
    completion.start_booking(user, booking.id)
    later = booking.end_at + timedelta(hours=3)
    sweeps.flag_not_completed(now=later)
    db.session.commit()
    [flag] = attention.open_flags_by_visit([booking.master_id])[booking.master_id]
    attention.resolve_flag(admin, flag.id, "Provider forgot; will complete")
    completion.complete_booking(user, booking.id, now=later)
    flag = db.session.get(attention.AttentionFlag, flag.id)
    assert flag.resolved_by_id == admin.id and flag.note == "Provider forgot; will complete"


def test_a_team_reschedule_fee_gives_the_odd_paisa_as_a_completion_does(world):
    """The reschedule fee's split took the team in display-name order, so its odd paisa
    went to another provider than the earning's (review finding)."""
    from portal.booking.reschedule import _commission_lines
    from portal.payouts.completion import earning_shares

    low, _u1 = world.provider(commission_bps=0, name="Dr Zeta")  # lower id, later name
    high, _u2 = world.provider(commission_bps=0, name="Dr Alpha")
    item = world.booking([low, high], fee=100_001)
    assert {p.id: e for p, _s, _c, e in earning_shares(item)} == {low.id: 50_001, high.id: 50_000}
    shares, _commission = _commission_lines(item, 1_001)
    assert dict(shares) == {low.id: 501, high.id: 500}
