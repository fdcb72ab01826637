"""The policy cache: one stamp read per app context however often the policy is read, a
reload only when the stamp moved, and a change made by one app (process) seen by another
at its next request."""

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.config import policy
from portal.extensions import db
from portal.policies import service as svc
from tests.plugin import _dispose, _test_config

REASON = "Shorter notes were not enough"


class Statements:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.count += 1


def _second_app(first):
    return create_app(_test_config(first.config["SQLALCHEMY_DATABASE_URI"]))


def _check_two_apps(first, make_user):
    admin = make_user("admin")
    other = _second_app(first)
    try:
        with other.app_context():
            assert policy().payment_failures_for_intervention == 3
            cache = other.extensions["policies"]
            loads = cache.loads
        with first.app_context():
            svc.propose(
                db.session.get(type(admin), admin.id),
                {"payment_failures_for_intervention": 4},
                reason=REASON,
            )
        with other.app_context():
            with Statements(db.engine) as seen:
                values = [policy().payment_failures_for_intervention for _ in range(20)]
            assert values == [4] * 20
            assert seen.count == 2  # the stamp, then the versions (it moved)
            assert cache.loads == loads + 1
        with other.app_context():
            with Statements(db.engine) as seen:
                assert policy().payment_failures_for_intervention == 4
                assert policy().payment_failures_for_intervention == 4
            assert seen.count == 1  # the stamp only: nothing changed
            assert cache.loads == loads + 1
    finally:
        _dispose(other)


def test_a_change_reaches_another_app(app, make_user):
    _check_two_apps(app, make_user)


@pytest.mark.postgres
def test_a_change_reaches_another_app_on_postgresql(pg_app):
    from portal.accounts.models import ADMIN, User

    def make_user(role):
        with pg_app.app_context():
            user = User(email="pg-admin@example.com", name="PG Admin", role=ADMIN)
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    _check_two_apps(pg_app, make_user)


def test_an_emptied_table_is_noticed(app, make_user):
    """A random stamp, not a counter: tables emptied (or a change rolled back) and written
    again never leave an old cache looking current."""
    admin = make_user("admin")
    with app.app_context():
        svc.propose(
            db.session.get(type(admin), admin.id),
            {"payment_failures_for_intervention": 4},
            reason=REASON,
        )
    with app.app_context():
        assert policy().payment_failures_for_intervention == 4
        from portal.policies.models import PolicyStamp, PolicyVersion

        db.session.execute(sa.update(PolicyVersion).values(status="REJECTED"))
        db.session.execute(sa.delete(PolicyStamp))
        db.session.commit()
    with app.app_context():
        assert policy().payment_failures_for_intervention == 3
