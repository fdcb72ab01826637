"""A visitor paging through a doctor's days in Chromium: the htmx answers come back
replayed before Flask (portal.web.replay) once kept, with the browser's own session cookie
(the layout's CSRF token), under the production CSP, and swap in as Flask's do."""

from datetime import datetime, time, timedelta

import pytest
import time_machine

from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from tests.web.booking.helpers import build_catalog, weekday_ahead

pytestmark = pytest.mark.e2e


def _shows(page, day):
    heading = day.strftime("%A %d %B %Y").replace(" 0", " ")
    page.wait_for_function(
        "text => document.querySelector('#times-day').textContent.replace(' 0', ' ') === text",
        arg=heading,
    )
    assert f"date={day.isoformat()}" in page.url  # the address follows (hx-push-url)


@pytest.fixture
def noon():
    """Today's noon in India, ticking: a kept answer expires at India's midnight (the days'
    times change with the day), so a test paging across it would see fewer replayed."""
    today = utcnow().astimezone(CLINIC_TZ).date()
    with time_machine.travel(datetime.combine(today, time(12), tzinfo=CLINIC_TZ), tick=True):
        yield


def test_a_visitor_paging_through_days_gets_replayed_answers(noon, app, page, make_user):
    with app.app_context():
        cat = build_catalog(make_user)
    day = weekday_ahead(5)
    if day.weekday() == 4:  # a Friday: the Monday, so that the next day is open too
        day += timedelta(days=3)
    following = day + timedelta(days=1)
    page.goto(
        f"/find/times?provider={cat.doc1}&service={cat.consult}&clinic={cat.clinic}"
        f"&date={day.isoformat()}"
    )
    assert page.context.cookies()  # the whole page gave the browser its session
    replay = app.extensions["replay"]
    # The first htmx answer marks the session not fresh (a Set-Cookie: not kept); the
    # next two are kept; from then on each day's answer is replayed.
    for shown in (following, day, following):
        page.click("a[rel=next]" if shown == following else "a[rel=prev]")
        _shows(page, shown)
    before = replay.stats["replayed"]
    page.click("a[rel=prev]")
    _shows(page, day)
    page.click("a[rel=next]")
    _shows(page, following)
    assert replay.stats["replayed"] == before + 2
    assert page.locator("#day-slots a.slot").count() > 0  # its times, as links to book
