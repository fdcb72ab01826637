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


def test_on_sqlite_a_nested_unit_of_work_and_another_writer_take_turns(tmp_path):
    """The embedded mode (``make run``): a job's use case, a unit of work nested in the
    job's, read its payout, another connection wrote and began its commit, then the use
    case wrote: "database is locked" at once, as SQLite refuses a reader's upgrade to a
    writer while a writer waits on that reader (no busy wait: it would never end). The
    savepoint's transaction now takes the write lock when it opens, so the other writer
    waits for it instead, and both commit. The other writer is one outside any unit of
    work (as ``notify.deliveries.record_transient_failure``'s ``engine.begin()``): a unit
    of work would wait for the process lock the job's holds before SQLite is asked."""
    import threading
    import time

    from portal import create_app
    from tests.plugin import _test_config, create_schema
    from tests.threads import run_together

    app = create_app(_test_config("sqlite:///" + str(tmp_path / "turns.sqlite3")))
    create_schema(app)
    read = threading.Event()

    def job():
        with unit_of_work(), unit_of_work():
            _count()  # the nested block's read, inside its transaction
            read.set()
            time.sleep(0.3)  # the other writer has written and waits to commit
            db.session.add(_entry("job"))
            db.session.flush()
        return "job"

    def writer():
        assert read.wait(10)
        table = AuditEntry.__table__
        with db.engine.begin() as conn:
            conn.execute(table.insert().values(action="writer", object_type="test", object_id="1"))
        return "writer"

    assert run_together(app, job, writer) == ["job", "writer"]
    with app.app_context():
        assert sorted(e.action for e in db.session.scalars(sa.select(AuditEntry))) == [
            "job",
            "writer",
        ]
        db.session.remove()
        db.engine.dispose()
