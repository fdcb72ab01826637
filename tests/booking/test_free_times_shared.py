"""Free-times answers kept with Redis (portal.catalog.calendar): the catalog and policy
stamps are Redis counters read in the same MGET as the calendar versions, so a kept answer
reads no database at all; a catalog edit or a policy change made through another app
instance (another gunicorn worker) is seen by the next answer; a Redis that does not answer
sends every answer to the database, never a 500.

Two app instances on one PostgreSQL database share one Redis database: the ``reader``
answers, the ``writer`` writes, each in its own app context."""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa
from redis import Redis

from portal import create_app
from portal.accounts.models import ADMIN, User
from portal.catalog.models import Service
from portal.db import unit_of_work
from portal.extensions import db
from portal.policies import service as policies
from tests.booking.factories import NOW, at, build_world
from tests.booking.test_free_times_cache import day_times, hold, inside, times_url
from tests.plugin import _test_config

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FREE = ["10:00", "10:30", "11:00", "12:00"]
TIMES = {"HX-Request": "true", "HX-Target": "times"}
RESULTS = {"HX-Request": "true", "HX-Target": "results"}
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there: refused at once


@pytest.fixture
def apps(pg_app, still_clock):
    redis_url = os.environ["TEST_REDIS_URL"]
    Redis.from_url(redis_url).flushdb()
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    reader, writer = (create_app(_test_config(database, REDIS_URL=redis_url)) for _ in "ab")
    try:
        yield reader, writer
    finally:
        for app in (reader, writer):
            with app.app_context():
                db.engine.dispose()


@pytest.fixture
def w(apps):
    with inside(apps[1]):
        return build_world()


def find_url(w):
    return f"/find?clinic={w.clinic}&service={w.consult}&q=Dr+Doc+1&date={at(1, 9).date()}"


def answer(client, w, results=False):
    """The times answer's (or the find results') HTML, and the statements and pool
    checkouts it cost."""
    with client.application.app_context():
        engine = db.engine
    checkouts, statements = [], []

    def checkout(*args):
        checkouts.append(args)

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "checkout", checkout)
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        if results:
            response = client.get(find_url(w), headers=RESULTS)
        else:
            response = client.get(times_url(w, 1), headers=TIMES)
    finally:
        sa.event.remove(engine, "checkout", checkout)
        sa.event.remove(engine, "before_cursor_execute", before)
    assert response.status_code == 200
    return response.get_data(as_text=True), statements, checkouts


def warm(client, w, results=False):
    """The first answer sets the epoch on an empty Redis (not kept); the second is kept;
    the third is that kept answer, read without the database: returned."""
    for _ in "12":
        answer(client, w, results)
    html, statements, checkouts = answer(client, w, results)
    assert statements == [] and checkouts == [], statements
    return html


def test_a_kept_answer_reads_no_database(apps, w):
    client = apps[0].test_client()
    html = warm(client, w)
    assert all(f">{t}</a>" in html for t in FREE)
    for _ in "123":
        assert answer(client, w)[0] == html


def test_a_catalog_edit_through_another_instance_shows_at_once(apps, w):
    reader, writer = apps
    client = reader.test_client()
    assert "= ₹529.50" in warm(client, w, True)  # F 500 + P 25 + GST 4.50
    with inside(writer), unit_of_work():
        db.session.get(Service, w.consult).fee_paise = 60_000  # no calendar moves
    html, statements, _ = answer(client, w, True)
    assert "= ₹635.40" in html and statements  # F 600 + P 30 + GST 5.40, from the database
    assert warm(client, w, True) == html


def _two_admins(w):
    second = User(email="checker@example.com", name="Checker", role=ADMIN, phone=None)
    with unit_of_work():
        db.session.add(second)
    return db.session.get(User, w.admin), second


def test_a_policy_change_through_another_instance_shows_at_once(apps, w):
    reader, writer = apps
    client = reader.test_client()
    assert "= ₹529.50" in warm(client, w, True)
    with inside(writer):
        maker, checker = _two_admins(w)
        version = policies.propose(maker, {"platform_fee_bps": 1_000}, reason="A dearer app")
        policies.approve(checker, version.id)
    html, statements, _ = answer(client, w, True)
    assert "= ₹559<" in html and statements  # F 500 + P 50 + GST 9
    assert warm(client, w, True) == html


def test_a_scheduled_policy_takes_over_on_time(apps, w, still_clock):
    reader, writer = apps
    client = reader.test_client()
    with inside(writer):
        maker, checker = _two_admins(w)
        version = policies.propose(
            maker,
            {"platform_fee_bps": 1_000},
            reason="A dearer app",
            effective_from=NOW + timedelta(seconds=10),
        )
        policies.approve(checker, version.id)
    assert "= ₹529.50" in warm(client, w, True)  # kept, though its prices change in 10 s
    still_clock.move_to(NOW + timedelta(seconds=11))
    assert "= ₹559<" in answer(client, w, True)[0]


def test_redis_away_sends_answers_to_the_database(apps, w, still_clock):
    reader, writer = apps
    client = reader.test_client()
    warm(client, w)
    versions = reader.extensions["calendar_versions"]
    working, versions.client = versions.client, Redis.from_url(DEAD_REDIS)
    hold(writer, w, hour=10)
    shown, statements = day_times(client, w, 1)
    assert shown == FREE[1:] and statements  # from the database, no 500
    versions.client = working
    assert warm(client, w) == answer(client, w)[0]
    # The writer's Redis away: its hold commits; the readers' kept answers stay until
    # MAX_AGE at most (the bump is lost).
    writer.extensions["calendar_versions"].client = Redis.from_url(DEAD_REDIS)
    hold(writer, w, patient=1, hour=11)
    assert day_times(client, w, 1)[0] == FREE[1:]
    still_clock.move_to(NOW + timedelta(seconds=31))
    assert day_times(client, w, 1)[0] == ["10:30", "12:00"]
