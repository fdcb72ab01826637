"""The unit of work: one commit at the outermost level, a savepoint inside, rollback on error."""

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.db import db, unit_of_work


def _count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))


def _entry(action):
    return AuditEntry(action=action, object_type="test", object_id="1")


def test_outermost_block_commits_once(ctx):
    with unit_of_work():
        db.session.add(_entry("a"))
    db.session.rollback()  # nothing left to undo: it was committed
    assert _count() == 1


def test_error_rolls_everything_back(ctx):
    with pytest.raises(RuntimeError), unit_of_work():
        db.session.add(_entry("a"))
        db.session.flush()
        raise RuntimeError("boom")
    assert _count() == 0


def test_inner_failure_undoes_only_its_own_writes(ctx):
    with unit_of_work():
        db.session.add(_entry("outer"))
        with pytest.raises(RuntimeError), unit_of_work():
            db.session.add(_entry("inner"))
            db.session.flush()
            raise RuntimeError("inner fails")
    assert [e.action for e in db.session.scalars(sa.select(AuditEntry))] == ["outer"]


def test_inner_success_waits_for_the_outer_commit(ctx):
    with pytest.raises(RuntimeError), unit_of_work():
        with unit_of_work():
            db.session.add(_entry("inner"))
        raise RuntimeError("outer fails after the inner block")
    assert _count() == 0
