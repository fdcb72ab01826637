"""A run that undoes an admin's resolution (the gateway's record changed since) audits it,
and the case page keeps the case's history: who resolved it, when, with what note, and
which run reopened it and why (review finding: the run's write wiped the note, the
resolution and the resolver from the case row, with no audit entry; policy: "Admins
resolve … All audited")."""

import html as markup
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.reconcile import resolve
from portal.reconcile.history import case_history
from tests.reconcile.helpers import admin, case_for, later, paid, payment_id, run_day
from tests.refunds.helpers import login, with_known_passwords

NOTE = "Checked with Razorpay support: their adjustment"


def entries(case_id, action=None):
    query = sa.select(AuditEntry).where(
        AuditEntry.object_type == "recon_case", AuditEntry.object_id == str(case_id)
    )
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.scalars(query.order_by(AuditEntry.id)).all()


def _accepted_then_altered_again(world, users, gateway, clock):
    """A payment the gateway reports ₹100 above ours, accepted with NOTE; then the gateway
    changes its amount once more and a run finds it. Returns (case id, the run)."""
    pay_id = payment_id(paid(world, users, gateway, hour=10))
    amount = gateway.sandbox.store.payments[pay_id]["amount"]
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 10_000}})
    later(clock)
    run_day(world)
    case_id = case_for(pay_id).id
    resolve.accept(admin(world), case_id, NOTE)
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 15_000}})
    run = run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("discrepancy", None)
    return case_id, run, amount


def test_a_run_that_reopens_an_accepted_case_audits_what_it_undid(world, users, gateway, clock):
    case_id, run, amount = _accepted_then_altered_again(world, users, gateway, clock)
    [reopened] = entries(case_id, "reconcile.case_reopened")
    assert reopened.actor_id is None  # the run, no admin
    before, after = reopened.before, reopened.after
    assert (before["status"], before["resolution"], before["note"]) == (
        "resolved",
        "accepted",
        NOTE,
    )
    assert before["resolved_by_id"] == world.admin and before["resolved_at"]
    assert (after["status"], after["reason"], after["resolution"]) == (
        "discrepancy",
        "amount_differs",
        None,
    )
    assert after["run_id"] == run.id
    assert f"{amount + 10_000} → {amount + 15_000}" in after["because"]
    assert "gateway" in after["because"]
    # The order of the log: accepted, then reopened.
    assert [e.action for e in entries(case_id)][-2:] == [
        "reconcile.case_accepted",
        "reconcile.case_reopened",
    ]
    # A run that changes nothing more audits nothing more.
    run_day(world)
    assert len(entries(case_id, "reconcile.case_reopened")) == 1


def test_the_case_page_shows_the_earlier_resolution_and_the_reopening(
    app, client, world, users, gateway, clock
):
    with_known_passwords()
    case_id, run, _amount = _accepted_then_altered_again(world, users, gateway, clock)
    name = users(world.admin).name
    login(client, users(world.admin).email)
    html = client.get(f"/admin/reconciliation/cases/{case_id}").get_data(as_text=True)
    history = html[html.index('id="case-history"') :]
    text = markup.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", history)))
    assert f"Accepted by {name}" in text and NOTE in text
    assert f"Reopened by run #{run.id}" in text and "the gateway's record changed" in text
    assert f"; it had been accepted by {name} on " in text
    assert text.index("Accepted by") < text.index("Reopened by")


def test_a_run_that_finds_an_accepted_case_agreeing_now_audits_it_as_matched_again(
    world, users, gateway, clock
):
    pay_id = payment_id(paid(world, users, gateway, hour=10))
    amount = gateway.sandbox.store.payments[pay_id]["amount"]
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 10_000}})
    later(clock)
    run_day(world)
    case_id = case_for(pay_id).id
    resolve.accept(admin(world), case_id, NOTE)
    gateway.sandbox.set_faults(alter={})  # Razorpay put its record right
    run = run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("matched", None)
    assert not entries(case_id, "reconcile.case_reopened")
    [again] = entries(case_id, "reconcile.case_rematched")
    assert (again.before["resolution"], again.before["note"]) == ("accepted", NOTE)
    assert (again.after["status"], again.after["run_id"]) == ("matched", run.id)
    assert f"amount {amount + 10_000} → {amount} paise" in again.after["because"]
    [*_, event] = case_history(case_id)
    assert event.what == f"Matched again by run #{run.id}"
    assert (event.earlier.resolution, event.earlier.note) == ("accepted", NOTE)


def test_a_sync_that_changes_nothing_is_audited_as_such(world, users, gateway, clock):
    """Review finding: a sync that changed nothing (the gateway's amount altered: nothing
    of ours to apply) was audited as ``reconcile.case_synced`` with before = after."""
    pay_id = payment_id(paid(world, users, gateway, hour=10))
    amount = gateway.sandbox.store.payments[pay_id]["amount"]
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 100}})
    later(clock)
    run_day(world)
    case_id = case_for(pay_id).id
    with pytest.raises(resolve.ResolveError, match="still differ"):
        resolve.sync(admin(world), case_id)
    assert not entries(case_id, "reconcile.case_synced")
    [tried] = entries(case_id, "reconcile.case_sync_unchanged")
    assert tried.actor_id == world.admin and tried.before is None
    assert (tried.after["status"], tried.after["reason"]) == ("discrepancy", "amount_differs")
    [event] = case_history(case_id)
    assert event.what == f"Synced from the gateway by {users(world.admin).name}"
    assert event.detail == "nothing changed, still amount differs"
