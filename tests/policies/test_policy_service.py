"""Changing the policy: versions in force by effective time, the second-admin rule for
money, refusals that save nothing, and the audit trail."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.config import policy
from portal.db import utcnow
from portal.domain import policy_data as pd
from portal.domain.policy import DEFAULT_POLICY
from portal.extensions import db
from portal.policies import queries, store
from portal.policies import service as svc
from portal.policies.models import PolicyVersion

REASON = "Policy review of June 2026"


def versions():
    return db.session.scalars(sa.select(PolicyVersion).order_by(PolicyVersion.id)).all()


def audit(action):
    return db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    ).all()


def test_no_version_means_the_defaults(ctx, clock):
    assert store.in_force() == (None, DEFAULT_POLICY)
    assert policy() is DEFAULT_POLICY


def test_a_change_without_money_applies_at_once(ctx, clock, admins):
    maker, _ = admins
    version = svc.propose(maker, {"payment_failures_for_intervention": 4}, reason=REASON)
    first, second = versions()
    assert first.values == pd.to_data(DEFAULT_POLICY) and first.status == "APPROVED"
    assert second.id == version.id and second.status == "APPROVED" and not second.needs_approval
    assert policy().payment_failures_for_intervention == 4
    assert store.in_force()[0] == version.id
    [entry] = audit("policy.changed")
    assert entry.actor_id == maker.id and entry.object_id == str(version.id)
    assert entry.before == {"payment_failures_for_intervention": 3}
    assert entry.after["payment_failures_for_intervention"] == 4 and entry.after["reason"] == REASON
    assert audit("policy.seeded")


def test_a_money_change_waits_for_a_second_admin(ctx, clock, admins):
    maker, checker = admins
    changes = {"patient_cancellation_tiers.1.refund_bps": 5_000}
    version = svc.propose(maker, changes, reason=REASON)
    assert version.status == "PENDING" and version.needs_approval
    assert policy().patient_cancellation_tiers[1].refund_bps == 7_500  # not yet
    assert [p["id"] for p in queries.pending_changes()] == [version.id]
    with pytest.raises(svc.PolicyPermissionDenied, match="second administrator"):
        svc.approve(maker, version.id)
    assert db.session.get(PolicyVersion, version.id).status == "PENDING"
    svc.approve(checker, version.id, note="checked")
    assert policy().patient_cancellation_tiers[1].refund_bps == 5_000
    assert queries.pending_changes() == []
    [proposed] = audit("policy.proposed")
    [approved] = audit("policy.approved")
    assert proposed.actor_id == maker.id and approved.actor_id == checker.id
    assert approved.after["note"] == "checked"
    with pytest.raises(svc.PolicyError, match="already been decided"):
        svc.reject(checker, version.id)


def test_a_rejected_change_never_applies(ctx, clock, admins):
    maker, checker = admins
    version = svc.propose(maker, {"gst_bps": 1200}, reason=REASON)
    svc.reject(checker, version.id, note="not now")
    assert db.session.get(PolicyVersion, version.id).status == "REJECTED"
    assert policy().gst_bps == 1800
    assert audit("policy.rejected")[0].actor_id == checker.id


def test_the_maker_may_withdraw_their_own(ctx, clock, admins):
    maker, _ = admins
    version = svc.propose(maker, {"gst_bps": 1200}, reason=REASON)
    svc.reject(maker, version.id)
    assert db.session.get(PolicyVersion, version.id).status == "REJECTED"


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (
            {"patient_cancellation_tiers.1.notice": 72 * 3600},
            "patient_cancellation_tiers.1.notice",
            pd.MSG_CANCEL_ORDER.format(n=2, prev=1),
        ),
        ({"platform_fee_bps": 10_500}, "platform_fee_bps", pd.MSG_PERCENT),
        ({}, "__all__", svc.MSG_NOTHING),
        # 2 h and 2 h 30 s were both the "2h" reminder: one of them was never scheduled.
        (
            {"reminder_offsets": [86_400, 7_200, 7_230]},
            "reminder_offsets",
            pd.MSG_REMINDER_MINUTES % {"minutes": "120.5"},
        ),
    ],
)
def test_a_bad_edit_saves_nothing(ctx, clock, admins, changes, field, message):
    maker, _ = admins
    svc.ensure_first_version()
    before = len(versions())
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(maker, changes, reason=REASON)
    assert refused.value.errors[field] == message
    db.session.rollback()
    assert len(versions()) == before
    assert not audit("policy.proposed") and not audit("policy.changed")


def test_a_change_that_breaks_a_rule_since_it_was_proposed_is_not_approved(ctx, clock, admins):
    """A money change waiting for approval holds every value of the policy; one saved before
    reminders were whole minutes (2 h and 2 h 30 s: one "2h" reminder) is not put in force
    by its approval: the approver is told why and may reject it."""
    maker, checker = admins
    version = svc.propose(maker, {"gst_bps": 1200}, reason=REASON)
    values = dict(version.values, reminder_offsets=[86_400, 7_200, 7_230])
    db.session.execute(
        sa.update(PolicyVersion).where(PolicyVersion.id == version.id).values(values=values)
    )
    db.session.commit()
    with pytest.raises(svc.PolicyError) as refused:
        svc.approve(checker, version.id)
    assert refused.value.errors["__all__"] == svc.MSG_BREAKS_RULES
    assert refused.value.errors["reminder_offsets"] == pd.MSG_REMINDER_MINUTES % {
        "minutes": "120.5"
    }
    db.session.rollback()
    assert db.session.get(PolicyVersion, version.id).status == "PENDING"
    assert policy().gst_bps == 1800 and not audit("policy.approved")
    svc.reject(checker, version.id, note="reminders")
    assert db.session.get(PolicyVersion, version.id).status == "REJECTED"


def test_the_alert_threshold_is_checked_against_the_attempts_of_the_policy_as_changed(
    ctx, clock, admins
):
    """Review rv_forms: more failures before an alert than attempts allowed is never reached.
    The rule holds for the policy as it would be after the change: the edit's own values
    over the version it is built on, a scheduled one (not in force yet) included."""
    maker, _ = admins
    now = utcnow()
    scheduled = svc.propose(
        maker,
        {"payment_max_attempts": 8, "payment_failures_for_intervention": 7},
        effective_from=now + timedelta(days=1),
        reason=REASON,
    )
    assert scheduled.status == "APPROVED" and policy().payment_max_attempts == 5  # not yet
    with pytest.raises(svc.PolicyError) as refused:  # 7 (scheduled) > 6
        svc.propose(
            maker,
            {"payment_max_attempts": 6},
            effective_from=now + timedelta(days=2),
            reason=REASON,
        )
    assert refused.value.errors == {
        "payment_failures_for_intervention": pd.MSG_FAILURES_OVER_ATTEMPTS.format(attempts=6)
    }
    db.session.rollback()
    both = svc.propose(
        maker,
        {"payment_max_attempts": 6, "payment_failures_for_intervention": 6},
        effective_from=now + timedelta(days=2),
        reason=REASON,
    )
    assert both.status == "APPROVED"


def test_a_pending_change_breaking_the_attempts_rule_is_not_approved(ctx, clock, admins):
    """A money change waiting for approval holds every value of the policy; one saved with
    more failures before an alert than attempts allowed (before the rule) is not put in
    force by its approval."""
    maker, checker = admins
    version = svc.propose(maker, {"gst_bps": 1200}, reason=REASON)
    values = dict(version.values, payment_failures_for_intervention=6)
    db.session.execute(
        sa.update(PolicyVersion).where(PolicyVersion.id == version.id).values(values=values)
    )
    db.session.commit()
    with pytest.raises(svc.PolicyError) as refused:
        svc.approve(checker, version.id)
    assert refused.value.errors == {
        "__all__": svc.MSG_BREAKS_RULES,
        "payment_failures_for_intervention": pd.MSG_FAILURES_OVER_ATTEMPTS.format(attempts=5),
    }
    db.session.rollback()
    assert db.session.get(PolicyVersion, version.id).status == "PENDING"


def test_the_first_version_is_not_seeded_from_defaults_that_break_a_rule(app, ctx, clock, admins):
    """Version 1 is written from the app's POLICY setting: the same rules hold for it."""
    saved = app.config["POLICY"]
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(
        reminder_offsets=(timedelta(hours=2), timedelta(hours=2, seconds=30))
    )
    try:
        with pytest.raises(svc.PolicyError) as refused:
            svc.ensure_first_version()
        assert refused.value.errors["reminder_offsets"] == pd.MSG_REMINDER_MINUTES % {
            "minutes": "120.5"
        }
        db.session.rollback()
        assert versions() == [] and not audit("policy.seeded")
    finally:
        app.config["POLICY"] = saved
    assert svc.ensure_first_version().values == pd.to_data(DEFAULT_POLICY)


def test_a_reason_is_required(ctx, clock, admins):
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(admins[0], {"gst_bps": 1200}, reason="why")
    assert refused.value.errors["reason"] == svc.MSG_REASON.format(n=10)


def test_only_admins(ctx, clock, world, users):
    with pytest.raises(svc.PolicyPermissionDenied):
        svc.propose(users(world.patients[0]), {"gst_bps": 1200}, reason=REASON)


def test_versions_take_effect_in_effective_time_order(ctx, clock, admins):
    maker, _ = admins
    now = utcnow()
    later = svc.propose(
        maker, {"no_show_grace": 3600}, effective_from=now + timedelta(days=2), reason=REASON
    )
    assert policy().no_show_grace == timedelta(hours=2)  # scheduled, not yet
    # Nothing may be slipped in before a scheduled change, nor dated in the past.
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(
            maker, {"no_show_grace": 1800}, effective_from=now + timedelta(days=1), reason=REASON
        )
    assert refused.value.errors["effective_from"].startswith("A change is already scheduled")
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(
            maker, {"no_show_grace": 1800}, effective_from=now - timedelta(hours=1), reason=REASON
        )
    assert refused.value.errors["effective_from"] == svc.MSG_PAST
    db.session.rollback()
    clock.move_to(now + timedelta(days=2, seconds=1))
    store.forget()
    assert store.in_force()[0] == later.id and policy().no_show_grace == timedelta(hours=1)
    # A version is in force from its time on, whatever order the rows were written in.
    even_later = svc.propose(
        maker, {"no_show_grace": 900}, effective_from=utcnow() + timedelta(days=1), reason=REASON
    )
    assert store.in_force(utcnow() + timedelta(hours=23))[0] == later.id
    assert store.in_force(utcnow() + timedelta(days=1))[0] == even_later.id


def test_an_approval_after_the_chosen_time_applies_from_the_approval(ctx, clock, admins):
    maker, checker = admins
    chosen = utcnow() + timedelta(hours=1)
    version = svc.propose(maker, {"gst_bps": 1200}, effective_from=chosen, reason=REASON)
    clock.move_to(chosen + timedelta(hours=3))
    svc.approve(checker, version.id)
    assert db.session.get(PolicyVersion, version.id).effective_from == utcnow()
    # Between the chosen time and the approval the old rate was in force.
    assert store.in_force(chosen + timedelta(hours=1))[1].gst_bps == 1800


def test_a_later_edit_starts_from_a_scheduled_change_and_never_undoes_it(ctx, clock, admins):
    """A money change approved for tomorrow, then an edit of something else for the day
    after: the edit carries tomorrow's fee (it starts from the latest approved version),
    so it neither reverts it nor slips a money change past the second administrator."""
    maker, checker = admins
    now = utcnow()
    fee = svc.propose(
        maker,
        {"patient_cancellation_tiers.1.refund_bps": 5_000},
        effective_from=now + timedelta(days=1),
        reason=REASON,
    )
    svc.approve(checker, fee.id)
    assert pd.to_data(svc.editing_base())["patient_cancellation_tiers"][1]["refund_bps"] == 5_000
    edit = svc.propose(
        maker,
        {"payment_failures_for_intervention": 4},
        effective_from=now + timedelta(days=2),
        reason=REASON,
    )
    assert edit.status == "APPROVED" and not edit.needs_approval
    clock.move_to(now + timedelta(days=3))
    store.forget()
    assert store.in_force()[0] == edit.id
    assert policy().patient_cancellation_tiers[1].refund_bps == 5_000
    assert policy().payment_failures_for_intervention == 4


def test_no_second_change_while_one_waits_for_approval(ctx, clock, admins):
    maker, checker = admins
    waiting = svc.propose(maker, {"gst_bps": 1200}, reason=REASON)
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(checker, {"payment_failures_for_intervention": 4}, reason=REASON)
    assert refused.value.errors["__all__"] == svc.MSG_WAITING.format(id=waiting.id)
    db.session.rollback()
    svc.reject(checker, waiting.id)
    assert (
        svc.propose(checker, {"payment_failures_for_intervention": 4}, reason=REASON).status
        == "APPROVED"
    )


def test_an_edit_made_on_an_older_version_is_refused(ctx, clock, admins):
    """A form sends every value: saved over a change approved since it was opened, it would
    silently undo that change. ``base_version`` is the version the form was filled from."""
    maker, checker = admins
    assert svc.editing_start()[0] == 0  # before any version: the defaults
    first = svc.propose(
        maker, {"payment_failures_for_intervention": 4}, reason=REASON, base_version=0
    )
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(checker, {"payment_max_attempts": 6}, reason=REASON, base_version=0)
    assert refused.value.errors == {"__all__": svc.MSG_STALE.format(id=first.id)}
    db.session.rollback()
    assert policy().payment_failures_for_intervention == 4 and policy().payment_max_attempts == 5
    assert svc.editing_start()[0] == first.id
    again = svc.propose(checker, {"payment_max_attempts": 6}, reason=REASON, base_version=first.id)
    assert again.status == "APPROVED" and policy().payment_failures_for_intervention == 4


def test_a_change_cannot_be_scheduled_more_than_a_year_ahead(ctx, clock, admins):
    """2062 typed for 2026: every later change would have had to come after it."""
    from datetime import datetime

    from portal.domain.timezone import CLINIC_TZ

    maker, _ = admins
    typo = datetime(2062, 6, 1, 9, 0, tzinfo=CLINIC_TZ)
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(
            maker, {"payment_failures_for_intervention": 4}, effective_from=typo, reason=REASON
        )
    assert refused.value.errors == {"effective_from": svc.MSG_TOO_FAR}
    db.session.rollback()
    in_a_year = utcnow() + svc.MAX_AHEAD
    assert svc.propose(
        maker, {"payment_failures_for_intervention": 4}, effective_from=in_a_year, reason=REASON
    )


def test_a_scheduled_change_can_be_withdrawn_so_the_policy_never_freezes(ctx, clock, admins):
    """One administrator schedules a change far ahead (approved at once: no money); a GST
    change for today must come after it, until the scheduled one is withdrawn, by any
    administrator, with a note. It never applies and the audit log says who and why."""
    maker, checker = admins
    far = utcnow() + timedelta(days=300)
    scheduled = svc.propose(
        maker, {"payment_failures_for_intervention": 4}, effective_from=far, reason=REASON
    )
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(checker, {"gst_bps": 1200}, reason="GST rate change from today")
    assert refused.value.errors["effective_from"].startswith("A change is already scheduled")
    db.session.rollback()
    with pytest.raises(svc.PolicyError) as refused:
        svc.withdraw(checker, scheduled.id, note="typo")
    assert refused.value.errors == {"note": svc.MSG_WITHDRAW_NOTE.format(n=10)}
    db.session.rollback()
    svc.withdraw(checker, scheduled.id, note="Typo in the year")
    assert db.session.get(PolicyVersion, scheduled.id).status == "WITHDRAWN"
    assert svc.editing_base().payment_failures_for_intervention == 3
    assert store.in_force(far + timedelta(days=1))[1].payment_failures_for_intervention == 3
    [entry] = audit("policy.withdrawn")
    assert entry.actor_id == checker.id and entry.after["note"] == "Typo in the year"
    gst = svc.propose(checker, {"gst_bps": 1200}, reason="GST rate change from today")
    assert gst.status == "PENDING"


def test_what_cannot_be_withdrawn(ctx, clock, admins, world, users):
    maker, checker = admins
    now = utcnow()
    note = "Withdrawn after review"
    in_force = svc.propose(maker, {"payment_failures_for_intervention": 4}, reason=REASON)
    money = svc.propose(
        maker, {"gst_bps": 1200}, effective_from=now + timedelta(days=1), reason=REASON
    )
    # Not yet decided: rejected, not withdrawn; in force: a new change undoes it.
    for version in (money, in_force):
        with pytest.raises(svc.PolicyError) as refused:
            svc.withdraw(checker, version.id, note=note)
        assert refused.value.errors == {"__all__": svc.MSG_WITHDRAW_IN_FORCE}
        db.session.rollback()
    svc.approve(checker, money.id)
    later = svc.propose(
        maker, {"no_show_grace": 3600}, effective_from=now + timedelta(days=2), reason=REASON
    )
    # The later change carries the money change's values: it goes first.
    with pytest.raises(svc.PolicyError) as refused:
        svc.withdraw(checker, money.id, note=note)
    assert refused.value.errors == {"__all__": svc.MSG_WITHDRAW_LATER.format(id=later.id)}
    db.session.rollback()
    with pytest.raises(svc.PolicyPermissionDenied):
        svc.withdraw(users(world.patients[0]), later.id, note=note)
    with pytest.raises(svc.PolicyNotFound):
        svc.withdraw(checker, 999_999, note=note)
    # One administrator suffices, even for a money change (decision in docs/policy.md).
    svc.withdraw(checker, later.id, note=note)
    svc.withdraw(maker, money.id, note=note)
    assert store.in_force(now + timedelta(days=3))[0] == in_force.id
    assert policy().gst_bps == 1800


def test_a_change_due_within_a_minute_is_neither_offered_nor_withdrawn(ctx, clock, admins):
    """The button's rule (queries.withdrawable) and the action's agree on the margin, and
    the refusal says why (it is not in force yet)."""
    from portal.policies import queries

    maker, _checker = admins
    now = utcnow()
    version = svc.propose(
        maker,
        {"payment_failures_for_intervention": 4},
        effective_from=now + timedelta(seconds=30),
        reason=REASON,
        now=now,
    )
    assert queries.withdrawable(now) is None
    with pytest.raises(svc.PolicyError, match="takes effect within a minute"):
        svc.withdraw(maker, version.id, note="Typed the wrong value", now=now)
