"""The free-times answers (/find/times over htmx, and /find's results block, which the htmx
answer and the whole page share) are kept per process
(portal.catalog.calendar); the next answer after any write that moves a provider's busy
times shows it: a hold, a cancellation, an expiry, a reschedule, a leave. A rolled-back
write changes nothing; a kept answer costs one statement (the catalog and policy stamps).

Each request runs in its own app context: the writes happen in ``with app.app_context()``
blocks between requests, as another request or job would make them."""

from contextlib import contextmanager
from datetime import timedelta

import pytest

from portal.accounts.models import User
from portal.booking import visits
from portal.booking.models import MasterBooking
from portal.booking.tasks import expire_holds
from portal.catalog import availability
from portal.db import unit_of_work
from portal.extensions import db
from tests.booking.factories import NOW, at, build_world, start_gateway
from tests.pages import without_csrf
from tests.querycount import counted_queries

HX = {"HX-Request": "true"}
CACHED = 1  # statements of a kept answer: the catalog and policy stamps in one
SHARED = 0  # with Redis: the stamps are read with the versions (one MGET)


@pytest.fixture
def w(app, still_clock):
    with app.app_context():
        world = build_world()
        db.session.remove()
    return world


@contextmanager
def inside(app):
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


def times_url(w, day, doctor=0):
    date = at(day, 12).date().isoformat()
    return (
        f"/find/times?provider={w.doctors[doctor]}&service={w.consult}"
        f"&clinic={w.clinic}&date={date}"
    )


def day_times(client, w, day, doctor=0):
    """The htmx answer's times of ``day`` ("10:00", …), and its statements."""
    with counted_queries() as statements:
        answer = client.get(times_url(w, day, doctor), headers={**HX, "HX-Target": "times"})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    return [t for t in ("10:00", "10:30", "11:00", "12:00") if f">{t}</a>" in html], statements


def kept(client, w, day, doctor=0, cached=CACHED):
    """The times, asserting that the answer was a kept one (and so could be stale)."""
    shown, statements = day_times(client, w, day, doctor)
    assert len(statements) == cached, statements
    return shown


def hold(app, w, patient=0, day=1, hour=10, doctor=0):
    from portal.accounts.models import User

    with inside(app):
        patient = db.session.get(User, w.patients[patient])
        return visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[doctor]],
            clinic_id=w.clinic,
            start_at=at(day, hour),
        ).master_id


def test_a_kept_answer_costs_one_statement_and_a_hold_shows_at_once(app, client, w):
    assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]
    assert kept(client, w, 1) == ["10:00", "10:30", "11:00", "12:00"]
    hold(app, w, hour=10)
    shown, statements = day_times(client, w, 1)
    assert shown == ["10:30", "11:00", "12:00"]
    assert len(statements) > CACHED
    # Another provider's answer was not thrown away.
    day_times(client, w, 1, doctor=1)
    hold(app, w, patient=1, hour=11)
    assert kept(client, w, 1, doctor=1) == ["10:00", "10:30", "11:00", "12:00"]


def test_the_find_results_show_a_hold_at_once(app, client, w):
    url = f"/find?clinic={w.clinic}&service={w.consult}&q=Dr+Doc+1&date={at(1, 9).date()}"
    headers = {**HX, "HX-Target": "results"}
    first = client.get(url, headers=headers).get_data(as_text=True)
    with counted_queries() as statements:
        again = client.get(url, headers=headers).get_data(as_text=True)
    assert again == first and len(statements) == CACHED, statements
    assert "Tue 2 Jun, 9:00<" in first
    hold(app, w, hour=9)
    assert "Tue 2 Jun, 9:00<" not in client.get(url, headers=headers).get_data(as_text=True)


def test_the_whole_find_page_shares_the_kept_results_and_shows_a_hold_at_once(app, client, w):
    url = f"/find?clinic={w.clinic}&service={w.consult}&q=Dr+Doc+1&date={at(1, 9).date()}"
    hx = {**HX, "HX-Target": "results"}
    first = client.get(url).get_data(as_text=True)  # computes the block, and keeps it
    with counted_queries() as statements:
        block = client.get(url, headers=hx).get_data(as_text=True)
    assert len(statements) == CACHED, statements
    results = block[: block.index('<div id="flashes"')].strip()
    assert "Tue 2 Jun, 9:00<" in results and results in first
    with counted_queries() as statements:
        page = client.get(url).get_data(as_text=True)
    assert len(statements) == CACHED, statements  # no slot lookup: the kept block
    # The CSRF token carries the second: blanked (``w``'s still clock alone kept it equal).
    assert without_csrf(page) == without_csrf(first) and 'id="find-q"' in page
    hold(app, w, hour=9)
    page = client.get(url).get_data(as_text=True)
    assert "Tue 2 Jun, 9:00<" not in page and "Tue 2 Jun, 9:30<" in page
    with counted_queries() as statements:  # the block the page computed, kept for htmx
        again = client.get(url, headers=hx).get_data(as_text=True)
    assert len(statements) == CACHED and "Tue 2 Jun, 9:00<" not in again


def test_an_expired_hold_frees_its_time_at_once(app, client, w):
    hold(app, w, hour=10)
    assert day_times(client, w, 1)[0] == ["10:30", "11:00", "12:00"]
    assert kept(client, w, 1) == ["10:30", "11:00", "12:00"]
    with inside(app):
        # The sweep, as if run after the hold's 15 minutes (the app's clock stays, so the
        # kept answer would still be served without the invalidation).
        assert expire_holds(now=NOW + timedelta(minutes=20)) == 1
    assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]


def test_an_item_taken_out_of_its_visit_frees_its_time_at_once(app, client, w):
    """The item goes as an orphan of its visit, and its claims by cascade, which the
    flush's listener does not see: it names the providers itself (review finding)."""
    visit_id = hold(app, w, hour=10)
    assert day_times(client, w, 1)[0] == ["10:30", "11:00", "12:00"]
    assert kept(client, w, 1) == ["10:30", "11:00", "12:00"]
    with inside(app):
        [item] = db.session.get(MasterBooking, visit_id).items
        visits.remove_item(db.session.get(User, w.patients[0]), item.id)
    assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]


@pytest.fixture
def paid(app, w):
    """A confirmed booking of doctor 0 on Friday at 10:00 (through the sandbox)."""
    from portal.accounts.models import User
    from tests.refunds.helpers import book_and_pay

    gateway = start_gateway(app)
    try:
        with inside(app):
            patient = db.session.get(User, w.patients[0])
            visit = book_and_pay(w, patient, gateway, [(w.consult, [w.doctors[0]], at(4, 10))])
            ids = patient.id, visit.id, visit.items[0].id
        yield ids
    finally:
        gateway.close()


def test_a_cancellation_frees_its_time_at_once(app, client, w, paid):
    from portal.accounts.models import User
    from tests.refunds.helpers import quoted_cancel

    patient_id, visit_id, item_id = paid
    assert "10:00" not in day_times(client, w, 4)[0]
    assert "10:00" not in kept(client, w, 4)
    with inside(app):
        quoted_cancel(db.session.get(User, patient_id), visit_id, [item_id])
    assert "10:00" in day_times(client, w, 4)[0]


def test_a_reschedule_shows_on_both_days_at_once(app, client, w, paid):
    from portal.accounts.models import User
    from tests.refunds.helpers import quoted_move

    patient_id, _, item_id = paid
    assert "10:00" not in day_times(client, w, 4)[0]
    assert "11:00" in day_times(client, w, 7)[0]
    assert "10:00" not in kept(client, w, 4) and "11:00" in kept(client, w, 7)
    with inside(app):
        assert quoted_move(db.session.get(User, patient_id), item_id, at(7, 11)).moved
    assert "10:00" in day_times(client, w, 4)[0]
    assert "11:00" not in day_times(client, w, 7)[0]


def test_a_leave_shows_at_once(app, client, w):
    from portal.accounts.models import User

    assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]
    assert kept(client, w, 1) == ["10:00", "10:30", "11:00", "12:00"]
    with inside(app):
        admin = db.session.get(User, w.admin)
        availability.add_leave(admin, w.doctors[0], at(1, 9), at(1, 11))
    assert day_times(client, w, 1)[0] == ["11:00", "12:00"]


def test_a_rolled_back_hold_changes_nothing(app, client, w):
    from portal.accounts.models import User
    from portal.catalog import calendar

    assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]
    with inside(app):
        before = calendar.read_versions([w.doctors[0]])
        patient = db.session.get(User, w.patients[0])
        with pytest.raises(RuntimeError), unit_of_work():
            visits.add_item(  # its own unit of work nests: a savepoint of this one
                patient,
                patient_id=patient.id,
                service_id=w.consult,
                provider_ids=[w.doctors[0]],
                clinic_id=w.clinic,
                start_at=at(1, 10),
            )
            raise RuntimeError("the use case fails after the hold")
        assert calendar.read_versions([w.doctors[0]]) == before
    assert kept(client, w, 1) == ["10:00", "10:30", "11:00", "12:00"]


@pytest.mark.postgres
@pytest.mark.redis
def test_app_instances_sharing_redis_see_each_others_writes(pg_app, still_clock):
    """Two instances (as two gunicorn workers): the one that answered keeps its answer;
    a hold made through the other is shown by the first's next answer. Without Redis each
    would bump only its own versions."""
    with two_instances(pg_app) as (reader, writer, w, redis):
        client = reader.test_client()
        # The first answer on an empty Redis sets the epoch and is not kept; the next is.
        for _ in "12":
            assert day_times(client, w, 1)[0] == ["10:00", "10:30", "11:00", "12:00"]
        assert kept(client, w, 1, cached=SHARED) == ["10:00", "10:30", "11:00", "12:00"]
        hold(writer, w, hour=10)
        assert day_times(client, w, 1)[0] == ["10:30", "11:00", "12:00"]
        # A Redis emptied (restarted) forgets the versions: nothing kept before is served.
        assert kept(client, w, 1, cached=SHARED) == ["10:30", "11:00", "12:00"]
        redis.flushdb()
        assert len(day_times(client, w, 1)[1]) > SHARED


@contextmanager
def two_instances(pg_app):
    """(reader, writer, their world, Redis): two app instances on one PostgreSQL database
    and one emptied Redis, as two gunicorn workers (or a worker and a web process)."""
    import os

    from redis import Redis

    from portal import create_app
    from tests.plugin import _test_config

    redis_url = os.environ["TEST_REDIS_URL"]
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    reader, writer = (create_app(_test_config(database, REDIS_URL=redis_url)) for _ in "ab")
    try:
        with inside(writer):
            world = build_world()
        yield reader, writer, world, redis
    finally:
        for app in (reader, writer):
            with app.app_context():
                db.engine.dispose()


def test_paying_for_a_hold_keeps_every_other_providers_answers(app, client, w):
    """Confirming a held item moves no busy time (it was busy while held), so a payment
    does not throw away every kept answer."""
    from portal.accounts.models import User
    from tests.refunds.helpers import book_and_pay

    others = day_times(client, w, 4, doctor=1)[0]
    gateway = start_gateway(app)
    try:
        with inside(app):
            patient = db.session.get(User, w.patients[0])
            book_and_pay(w, patient, gateway, [(w.consult, [w.doctors[0]], at(4, 10))])
    finally:
        gateway.close()
    assert kept(client, w, 4, doctor=1) == others
    assert "10:00" not in day_times(client, w, 4)[0]
