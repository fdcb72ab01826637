"""POLICY.md: "The audit log is append-only". Review finding: the only guard was the ORM's
``before_update`` / ``before_delete`` mapper events, which fire for a unit-of-work flush
only: the ORM's own bulk statements through the same session rewrote or deleted entries,
and the database refused nothing. Now the session refuses a bulk UPDATE or DELETE of the
log (but the privacy redaction's), and PostgreSQL's trigger refuses a DELETE, a TRUNCATE
and any UPDATE of a column but before/after, whoever sends it (portal/audit/models.py)."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from portal.append_only import AppendOnly
from portal.audit.models import AuditEntry
from portal.audit.service import ERASED, record, redact_personal
from portal.db import unit_of_work
from portal.extensions import db
from tests.plugin import empty_tables


def _entry(actor):
    with unit_of_work():
        record(actor, "refund.processed", "refund", 1, before={"status": "INITIATED"},
               after={"status": "PROCESSED", "amount": 50_000})  # fmt: skip
    return db.session.scalar(sa.select(sa.func.max(AuditEntry.id)))


@pytest.fixture
def entry_id(ctx, make_user):
    return _entry(make_user("admin"))


def _action(entry_id):
    db.session.rollback()
    return db.session.get(AuditEntry, entry_id, populate_existing=True).action


def test_an_orm_bulk_update_cannot_rewrite_an_entry(entry_id):
    with pytest.raises(AppendOnly):
        db.session.execute(
            sa.update(AuditEntry)
            .where(AuditEntry.id == entry_id)
            .values(action="refund.refused", after={"amount": 1})
        )
        db.session.commit()
    assert _action(entry_id) == "refund.processed", (
        "an ORM bulk UPDATE rewrote the append-only audit log"
    )


def test_an_orm_bulk_delete_cannot_remove_an_entry(entry_id):
    with pytest.raises(AppendOnly):
        db.session.execute(sa.delete(AuditEntry).where(AuditEntry.id == entry_id))
        db.session.commit()
    db.session.rollback()
    assert db.session.get(AuditEntry, entry_id, populate_existing=True) is not None, (
        "an ORM bulk DELETE removed an entry of the append-only audit log"
    )


def test_the_tables_statements_and_the_legacy_query_are_refused_through_the_session(entry_id):
    """The redaction's own form (a Core UPDATE of the table) without its mark, and the
    ``Query.update`` / ``Query.delete`` of the 1.x API, go through the same event."""
    table = AuditEntry.__table__
    attempts = [
        lambda: db.session.execute(sa.update(table).values(action="x")),
        lambda: db.session.execute(sa.delete(table)),
        lambda: db.session.query(AuditEntry).update({"action": "x"}),
        lambda: db.session.query(AuditEntry).delete(),
    ]
    for attempt in attempts:
        with pytest.raises(AppendOnly):
            attempt()
        db.session.rollback()
    assert _action(entry_id) == "refund.processed"


def test_a_flush_cannot_rewrite_or_delete_an_entry(entry_id):
    entry = db.session.get(AuditEntry, entry_id)
    entry.action = "refund.refused"
    with pytest.raises(AppendOnly):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry_id))
    with pytest.raises(AppendOnly):
        db.session.flush()
    assert _action(entry_id) == "refund.processed"


def test_the_privacy_redaction_still_erases_personal_data(ctx, make_user):
    """The one rewrite allowed (docs/privacy.md), on either database: before/after only."""
    admin = make_user("admin")
    with unit_of_work():
        record(admin, "user.register", "user", 7, after={"name": "Priya", "email": "p@x.in"})
    with unit_of_work():
        assert redact_personal([("user", 7)]) == 1
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_id == "7")).one()
    assert (entry.action, entry.actor_id) == ("user.register", admin.id)
    assert entry.after == {"name": ERASED, "email": ERASED}


@pytest.fixture
def pg_entry(pg_app):
    from tests.plugin import user_maker

    admin = user_maker(pg_app)("admin")
    with pg_app.app_context():
        yield _entry(admin)
        db.session.remove()


def _refused(sql, params):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text(sql), params)
        db.session.commit()
    db.session.rollback()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET action = 'nothing.happened' WHERE id = :id",
        "UPDATE audit_log SET actor_id = NULL WHERE id = :id",
        "UPDATE audit_log SET at = at - interval '1 day' WHERE id = :id",
        "UPDATE audit_log SET ip = '10.0.0.1', after = '{}' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "TRUNCATE audit_log",
    ],
)
def test_the_database_refuses_to_rewrite_who_did_what(pg_entry, sql):
    """PostgreSQL: the trigger, for whatever sends the statement (plain SQL here)."""
    _refused(sql, {"id": pg_entry})
    assert _action(pg_entry) == "refund.processed"


@pytest.mark.postgres
def test_the_database_allows_the_redactions_change_of_before_and_after(pg_entry):
    db.session.execute(
        sa.text('UPDATE audit_log SET before = NULL, after = \'{"amount": "x"}\' WHERE id = :id'),
        {"id": pg_entry},
    )
    db.session.commit()
    assert db.session.get(AuditEntry, pg_entry).after == {"amount": "x"}


@pytest.mark.postgres
def test_a_core_connection_outside_the_session_is_refused_too(pg_entry):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with db.engine.begin() as conn:
            conn.execute(sa.delete(AuditEntry.__table__))
    assert _action(pg_entry) == "refund.processed"


@pytest.mark.postgres
def test_the_test_reset_empties_the_log_past_the_trigger(pg_app, pg_entry):
    empty_tables(pg_app)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_no_code_of_the_portal_opens_the_way_past_the_trigger():
    """``portal.emptying_tables`` lets a DELETE or TRUNCATE past the trigger: the tests'
    reset sets it; the portal's code only names it in the trigger it writes."""
    root = Path(__file__).resolve().parents[2]
    naming = {
        str(path.relative_to(root))
        for folder in ("portal", "migrations", "tools")
        for path in (root / folder).rglob("*.py")
        if "emptying_tables" in path.read_text(encoding="utf-8")
    }
    assert naming == {
        "portal/append_only.py",
        "migrations/versions/aud1t0nly0001_audit_log_append_only.py",
        "migrations/versions/ledg0nly0001_ledger_append_only.py",
    }
