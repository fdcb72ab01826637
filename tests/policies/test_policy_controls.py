"""The policy's controls: POLICY.md's 10-character audit note is a floor no version goes
below, and a change to a control (the shortest audit note, the reconciliation tolerance)
waits for a second administrator as a money change does. A version stored under the floor
before the rule still loads, read as the floor (docs/decisions.md)."""

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.config import policy
from portal.domain import cancellation
from portal.domain import policy_data as pd
from portal.domain.states import PolicyStatus
from portal.extensions import db
from portal.policies import queries, store
from portal.policies import service as svc
from portal.policies.models import PolicyVersion
from portal.wallet.adjustments import CREDIT, check_request
from tests.policies.test_policy_web import count_versions, form_data

REASON = "Policy review of June 2026"


def versions():
    return db.session.scalars(sa.select(PolicyVersion).order_by(PolicyVersion.id)).all()


def test_one_administrator_alone_cannot_remove_the_audit_note_rule(ctx, clock, admins):
    """Review: "Shortest audit note" was no money field, so one administrator set it to 0,
    approved at once by themselves; from then on a ₹5,000 wallet credit, a refund override
    and every policy change (money ones too) needed no note at all."""
    maker, checker = admins
    svc.ensure_first_version()
    before = len(versions())
    for too_short in (0, 9):
        with pytest.raises(svc.PolicyError) as refused:
            svc.propose(maker, {"note_min_length": too_short}, reason="Notes slow the desk down")
        assert refused.value.errors == {"note_min_length": pd.MSG_NOTE_FLOOR}
        db.session.rollback()
    assert len(versions()) == before
    assert "note" in check_request(CREDIT, 500_000, "", "Goodwill")
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(maker, {"platform_fee_bps": 600}, reason="")
    assert refused.value.errors == {"reason": svc.MSG_REASON.format(n=10)}
    db.session.rollback()
    # Above the floor the note length is still the policy's, but a second administrator
    # decides it: one administrator alone no longer changes what the audit trail needs.
    longer = svc.propose(maker, {"note_min_length": 12}, reason=REASON)
    assert longer.status == PolicyStatus.PENDING and longer.needs_approval
    assert policy().note_min_length == 10
    assert [p["id"] for p in queries.pending_changes()] == [longer.id]
    with pytest.raises(svc.PolicyPermissionDenied, match="second administrator"):
        svc.approve(maker, longer.id)
    svc.approve(checker, longer.id)
    assert policy().note_min_length == 12


def test_widening_the_reconciliation_tolerance_waits_for_a_second_administrator(ctx, clock, admins):
    """One administrator could widen "Timestamps match within" to a day and hide every
    discrepancy of a payment recorded hours late."""
    maker, checker = admins
    wider = svc.propose(maker, {"reconciliation_tolerance": 86_400}, reason=REASON)
    assert wider.status == PolicyStatus.PENDING and wider.needs_approval
    assert policy().reconciliation_tolerance == timedelta(seconds=60)
    svc.approve(checker, wider.id)
    assert policy().reconciliation_tolerance == timedelta(days=1)


def test_a_convenience_is_still_changed_by_one_administrator(ctx, clock, admins):
    maker, _ = admins
    version = svc.propose(maker, {"payment_max_attempts": 6}, reason=REASON)
    assert version.status == PolicyStatus.APPROVED and not version.needs_approval


def _stored_under_the_floor(admin):
    """A version saved before the floor existed, with the shortest audit note at 0 (written
    as the old code did: approved at once by its author)."""
    svc.ensure_first_version()
    values = pd.to_data(svc.editing_base())
    values["note_min_length"] = 0
    version = PolicyVersion(
        values=values,
        effective_from=svc.FIRST_EFFECTIVE + timedelta(days=1),
        status=PolicyStatus.APPROVED,
        needs_approval=False,
        reason="Notes slow the desk down",
        created_by_id=admin.id,
        decided_by_id=admin.id,
    )
    db.session.add(version)
    svc.touch_stamp()
    db.session.commit()
    store.forget()
    return version.id


def test_a_version_stored_under_the_floor_loads_and_is_read_as_the_floor(ctx, clock, admins):
    maker, checker = admins
    old = _stored_under_the_floor(maker)
    assert store.in_force()[0] == old
    assert policy().note_min_length == pd.NOTE_FLOOR == 10
    assert "note" in check_request(CREDIT, 500_000, "", "Goodwill")
    override = cancellation.refund_for_cancellation(
        "admin", timedelta(hours=100), 10_000, policy=policy(), override=5_000, override_reason=""
    )
    assert not override.allowed and override.message == cancellation.MSG_OVERRIDE_NOTE
    with pytest.raises(svc.PolicyError) as refused:
        svc.propose(maker, {"platform_fee_bps": 600}, reason="")
    assert refused.value.errors == {"reason": svc.MSG_REASON.format(n=10)}
    db.session.rollback()
    # The next edit starts from the floor, so it stores 10 without anyone typing it.
    assert svc.editing_base().note_min_length == 10
    fix = svc.propose(checker, {"payment_max_attempts": 6}, reason=REASON)
    assert fix.values["note_min_length"] == 10 and fix.status == PolicyStatus.APPROVED


def test_the_pages_show_a_version_stored_under_the_floor(app, client, make_user, login):
    admin = make_user("admin")
    with app.app_context():
        old = _stored_under_the_floor(admin)
    login(admin)
    page = client.get("/admin/policy")
    assert page.status_code == 200
    assert 'name="note_min_length"' in page.get_data(as_text=True)
    shown = client.get(f"/admin/policy/{old}")
    assert shown.status_code == 200
    assert "0 (applied as 10, POLICY.md&#39;s floor)" in shown.get_data(as_text=True)


def test_the_form_refuses_a_note_under_the_floor_and_says_who_decides(
    app, client, make_user, login
):
    login(make_user("admin"))
    page = client.get("/admin/policy").get_data(as_text=True)
    note = re.search(
        r'<div class="field[^"]*">\s*<label for="note_min_length".*?</div>', page, re.S
    )
    assert "At least 10 (POLICY.md). A change needs a second administrator." in note.group(0)
    tolerance = re.search(
        r'<div class="field[^"]*">\s*<label for="reconciliation_tolerance".*?</div>', page, re.S
    )
    assert "A change needs a second administrator." in tolerance.group(0)
    attempts = re.search(
        r'<div class="field[^"]*">\s*<label for="payment_max_attempts".*?</div>', page, re.S
    )
    assert "second administrator" not in attempts.group(0)
    answer = client.post("/admin/policy", data=form_data(app, note_min_length="0"))
    assert answer.status_code == 422
    field = re.search(
        r'<div class="field[^"]*">\s*<label for="note_min_length".*?</div>',
        answer.get_data(as_text=True),
        re.S,
    )
    assert html.escape(pd.MSG_NOTE_FLOOR) in field.group(0)
    assert count_versions(app) == 0
    answer = client.post("/admin/policy", data=form_data(app, note_min_length="12"))
    assert answer.status_code == 303
    saved = client.get("/admin/policy").get_data(as_text=True)
    assert (
        "a second administrator must approve it before it applies (it changes Shortest audit note)"
        in saved
    )


def test_the_form_refuses_a_link_lifetime_razorpay_would_refuse(app, client, make_user, login):
    """Razorpay refuses a payment link expiring under 15 minutes ahead: the form says the
    floor in the field's own unit (minutes), and refuses less beside the field."""
    login(make_user("admin"))
    page = client.get("/admin/policy").get_data(as_text=True)
    field = re.search(
        r'<div class="field[^"]*">\s*<label for="link_min_lifetime".*?</div>', page, re.S
    )
    assert "At least 15 (Razorpay)." in field.group(0)
    answer = client.post("/admin/policy", data=form_data(app, link_min_lifetime="5"))
    assert answer.status_code == 422
    field = re.search(
        r'<div class="field[^"]*">\s*<label for="link_min_lifetime".*?</div>',
        answer.get_data(as_text=True),
        re.S,
    )
    assert html.escape(pd.MSG_LINK_FLOOR) in field.group(0)
    assert count_versions(app) == 0


def test_a_link_lifetime_stored_under_the_floor_says_what_applies():
    from portal.policies.describe import shown

    assert shown("link_min_lifetime", 300) == (
        "Link lives at least (minutes)",
        "5 (applied as 15, Razorpay's floor)",
    )
    assert shown("note_min_length", 0)[1] == "0 (applied as 10, POLICY.md's floor)"
