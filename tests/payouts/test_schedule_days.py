"""The provider's schedule by days: 14 days from ``?from=``, Earlier / Later up to the
booking horizon and into the past, a date field; a bad date never a 500 (review finding:
only the next 14 days were ever shown, a booking 3 weeks ahead was on no page)."""

import re
from datetime import datetime, timedelta

from portal.db import utcnow
from portal.domain.rates import INDIA_TZ
from portal.domain.slots import BOOK_DAYS_AHEAD
from portal.extensions import db


def _today():
    return utcnow().astimezone(INDIA_TZ).date()


def _at(day, hour=10):
    return datetime(day.year, day.month, day.day, hour, tzinfo=INDIA_TZ)


def _moved(booking, old):
    """A done, free move of ``booking`` from ``old`` (30 minutes) to where it is now."""
    from portal.booking.models import Reschedule

    db.session.add(
        Reschedule(
            booking_id=booking.id,
            visit_id=booking.master_id,
            old_start=old,
            old_end=old + timedelta(minutes=30),
            new_start=booking.start_at,
            new_end=booking.end_at,
            notice_minutes=3000,
            penalty_bps=0,
            penalty=0,
            platform_fee=0,
            gst=0,
            total=0,
            status="DONE",
            done_at=utcnow(),
        )
    )


def test_later_and_earlier_page_by_fourteen_days(world, client, login):
    provider, user = world.provider()
    today = _today()
    later = world.booking(provider, start=_at(today + timedelta(days=20)))
    past = world.booking(provider, start=_at(today - timedelta(days=5)), status="COMPLETED")
    db.session.commit()
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    assert f'id="booking-{later.id}"' not in html and f'id="booking-{past.id}"' not in html
    later_from = (today + timedelta(days=14)).isoformat()
    assert f'href="/provider/schedule?from={later_from}" rel="next"' in html
    assert 'type="date" id="schedule-from" name="from"' in html

    html = client.get(f"/provider/schedule?from={later_from}").get_data(as_text=True)
    assert f'id="booking-{later.id}"' in html
    earlier = client.get(f"/provider/schedule?from={today.isoformat()}").get_data(as_text=True)
    earlier_from = (today - timedelta(days=14)).isoformat()
    assert f'href="/provider/schedule?from={earlier_from}" rel="prev"' in earlier
    html = client.get(f"/provider/schedule?from={earlier_from}").get_data(as_text=True)
    assert f'id="booking-{past.id}"' in html and 'data-status="COMPLETED"' in html


def test_a_booking_near_the_horizon_is_on_its_days_page(world, client, login):
    """Patients book up to BOOK_DAYS_AHEAD days ahead; the doctor can see that day, and
    Later stops there."""
    provider, user = world.provider()
    day = _today() + timedelta(days=BOOK_DAYS_AHEAD)
    far = world.booking(provider, start=_at(day))
    db.session.commit()
    login(user)
    html = client.get(f"/provider/schedule?from={day.isoformat()}").get_data(as_text=True)
    assert f'id="booking-{far.id}"' in html
    assert "Later ›" not in html
    assert "these are the last days" in html  # the 14 days end on the horizon


def test_a_bad_date_falls_back_to_today_with_a_message(world, client, login):
    provider, user = world.provider()
    today = world.booking(provider, start=utcnow() + timedelta(hours=1))
    db.session.commit()
    login(user)
    for bad in ("tomorrow", "2026-02-30", "9999-99-99", "0001-01-01x", "2026-1-1"):
        answer = client.get(f"/provider/schedule?from={bad}")
        assert answer.status_code == 200, bad
        html = answer.get_data(as_text=True)
        assert "That is not a date" in html and f'id="booking-{today.id}"' in html, bad
    for extreme in ("9999-12-31", "0001-01-01"):
        answer = client.get(f"/provider/schedule?from={extreme}")
        assert answer.status_code == 200, extreme
        assert re.search(
            r"at most \d+ days ahead|goes back one year", answer.get_data(as_text=True)
        )


def _held(world, provider, start, lapses):
    """An unpaid hold: the item SCHEDULED, its visit awaiting payment until ``lapses``."""
    booking = world.booking(provider, start=start, status="SCHEDULED")
    booking.visit.status = "PENDING_PAYMENT"
    booking.visit.number = None
    booking.visit.hold_expires_at = lapses
    db.session.commit()
    return booking


def test_an_unpaid_hold_shows_greyed_without_actions_or_the_patients_name(
    mid_year, world, client, login
):
    """A hold blocks the doctor's leave ("1 patient is paying for a time in this period"),
    so the schedule shows it (review finding: it was on no page), as the refusal does:
    when it lapses, not who holds it (the doctor learns the name once it is paid). At
    mid-day (``mid_year``): after 23:40 IST the hold lapses tomorrow and is shown with
    its day."""
    provider, user = world.provider()
    now = utcnow().replace(microsecond=0)
    lapses = now + timedelta(minutes=20)
    held = _held(world, provider, now + timedelta(hours=2), lapses)
    lapsed = _held(world, provider, now + timedelta(hours=4), now - timedelta(minutes=1))
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    row = html.split(f'id="booking-{held.id}"', 1)[1].split("</tr>", 1)[0]
    until = lapses.astimezone(INDIA_TZ).strftime("%H:%M")
    assert f"Awaiting payment — held until {until}" in row
    assert f'<tr id="booking-{held.id}" class="held">' in html
    assert world.patient().name not in row
    assert "<form" not in row and "Cancel" not in row and "Start" not in row
    assert f'id="booking-{lapsed.id}"' not in html


def test_a_row_says_its_end_a_move_and_a_childs_guardian(world, client, login):
    """Review finding: rows had no end time, a moved appointment read as any other (only
    the notice said where it was), a child's visit was not marked. The move comes with the
    page's query (the same count for 1 row as for 24: tests/web/test_query_budgets.py)."""
    from portal.accounts.models import Dependent

    provider, user = world.provider()
    start = _at(_today() + timedelta(days=1), 9)
    moved = world.booking(provider, start=start.replace(minute=20))
    old = _at(_today() + timedelta(days=3), 11)
    _moved(moved, old)
    child = Dependent(guardian_id=world.patient().id, name="Aarav Sharma", relationship_="child")
    db.session.add(child)
    db.session.flush()
    kid = world.booking(provider, start=start.replace(hour=12))
    kid.visit.dependent_id = child.id
    db.session.commit()
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    row = html.split(f'id="booking-{moved.id}"', 1)[1].split("</tr>", 1)[0]
    assert "09:20–09:50" in row
    assert "Moved from " + old.strftime("%a %d %b %H:%M") in row
    row = html.split(f'id="booking-{kid.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Aarav Sharma" in row and f"child of {world.patient().name}" in row
    assert "Moved from" not in row


def _current_links(html):
    return re.findall(r'<a href="([^"]*)" aria-current="page"', html)


def test_today_shows_today_and_the_schedule_its_days_each_marked_in_the_nav(
    mid_year, world, client, login
):
    """Review finding: Today (/provider/) and Schedule were one page, and nothing marked
    the current page. The top bar's links are one cached piece per role: the mark is set
    after it (each page its own link, whichever was rendered first). At mid-day
    (``mid_year``): after 23:30 IST "in 30 minutes" is tomorrow, not on Today."""
    provider, user = world.provider()
    now = utcnow().replace(microsecond=0)
    soon = world.booking(provider, start=now + timedelta(minutes=30))
    tomorrow = world.booking(provider, start=_at(_today() + timedelta(days=1)))
    db.session.commit()
    login(user)
    for _ in range(2):  # the second time from the cached links
        today = client.get("/provider/").get_data(as_text=True)
        assert f'id="booking-{soon.id}"' in today and f'id="booking-{tomorrow.id}"' not in today
        assert _current_links(today) == ["/provider/"]
        schedule = client.get("/provider/schedule").get_data(as_text=True)
        assert f'id="booking-{soon.id}"' in schedule and f'id="booking-{tomorrow.id}"' in schedule
        assert _current_links(schedule) == ["/provider/schedule"]
        later = client.get("/provider/schedule?from=" + _today().isoformat())
        assert _current_links(later.get_data(as_text=True)) == ["/provider/schedule"]
        earnings = client.get("/provider/earnings").get_data(as_text=True)
        assert _current_links(earnings) == ["/provider/earnings"]


def test_each_cancel_link_names_its_appointment_in_english_and_hindi(app, make_user, client):
    """Review finding: six identical "Cancel" links said nothing of which appointment. Then
    (a doctor's week): the 14 days' links named the time and patient but not the day, so
    the same patient at 09:00 on two days had two identical names; the date is named too.
    No app context is held while pages render (Flask-Babel keeps the locale on it)."""
    from portal.i18n import _HINDI_NAMES
    from tests.payouts.conftest import World
    from tests.plugin import PASSWORD

    with app.app_context():
        world = World(app, make_user)
        provider, user = world.provider()
        days = [_today() + timedelta(days=n) for n in (1, 2)]
        ids = [world.booking(provider, start=_at(day, 9)).id for day in days]
        email, name = user.email, world.patient().name
        db.session.remove()
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    html = client.get("/provider/schedule").get_data(as_text=True)
    for booking_id, day in zip(ids, days, strict=True):
        when = f"{day:%a %d %b} 09:00"
        assert f'aria-label="Cancel {when} {name}">Cancel</a>' in _row_of(html, booking_id)
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get("/provider/schedule").get_data(as_text=True)
    for booking_id, day in zip(ids, days, strict=True):
        when = f"{_HINDI_NAMES[f'{day:%a}']} {day:%d} {_HINDI_NAMES[f'{day:%b}']} 09:00"
        row = _row_of(html, booking_id)
        assert f'aria-label="{when} {name} का अपॉइंटमेंट रद्द करें">रद्द करें</a>' in row, row


def _row_of(html, booking_id):
    return html.split(f'id="booking-{booking_id}"', 1)[1].split("</tr>", 1)[0]


def test_a_table_cell_of_actions_keeps_table_layout():
    """``.actions`` (a flex row with a top margin, for a form's buttons) also styled the
    schedule's ``td.actions``: a flex cell breaks the table's layout (review finding)."""
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static/css/portal.css").read_text()
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        for selector in selectors.split(","):
            selector = selector.split("*/")[-1].strip()
            if re.search(r"(^|\s)\.actions$", selector) and "display: flex" in body:
                raise AssertionError(f"{selector!r} makes td.actions a flex box")


def test_start_and_complete_name_their_appointment_in_english_and_hindi(
    mid_year, app, make_user, client
):
    """The doctor's-week review: Start and Complete, like Cancel, repeat down the schedule
    and said nothing of which appointment they act on; each names its day too (one still
    STARTED from an earlier day is on Today with today's). At mid-day (``mid_year``):
    after 23:30 IST "in 30 minutes" is tomorrow, not on Today."""
    from portal.domain.states import BookingStatus
    from portal.i18n import _HINDI_NAMES
    from tests.payouts.conftest import World
    from tests.plugin import PASSWORD

    with app.app_context():
        world = World(app, make_user)
        provider, user = world.provider()
        now = utcnow().replace(second=0, microsecond=0)
        soon = world.booking(provider, start=now + timedelta(minutes=30))
        started = world.booking(provider, start=now - timedelta(minutes=5))
        started.status = BookingStatus.STARTED
        db.session.commit()
        local = {b.id: b.start_at.astimezone(INDIA_TZ) for b in (soon, started)}
        ids, email, name = (soon.id, started.id), user.email, soon.visit.for_name
        db.session.remove()
    at = {i: f"{t:%a %d %b %H:%M}" for i, t in local.items()}
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    html = client.get("/provider/").get_data(as_text=True)
    assert f'aria-label="Start {at[ids[0]]} {name}">Start</button>' in _row_of(html, ids[0])
    assert f'aria-label="Complete {at[ids[1]]} {name}">Complete</button>' in _row_of(html, ids[1])
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get("/provider/").get_data(as_text=True)
    at = {
        i: f"{_HINDI_NAMES[f'{t:%a}']} {t:%d} {_HINDI_NAMES[f'{t:%b}']} {t:%H:%M}"
        for i, t in local.items()
    }
    assert f'aria-label="{at[ids[0]]} {name} का अपॉइंटमेंट शुरू करें">' in _row_of(html, ids[0])
    assert f'aria-label="{at[ids[1]]} {name} का अपॉइंटमेंट पूरा करें">' in _row_of(html, ids[1])


def test_acting_on_a_row_of_a_later_page_keeps_that_page(world, client, login):
    """Review finding: the row swapped in after a POST was read from today's 14 days (a
    booking moved to 20 days ahead lost its "Moved from" line), and without htmx the
    answer went back to today's page. The row's forms carry the page's ``from``."""

    provider, user = world.provider()
    first = _today() + timedelta(days=14)
    moved = world.booking(provider, start=_at(_today() + timedelta(days=20)))
    moved.service.mode = "ONLINE"
    old = _at(_today() + timedelta(days=22), 11)
    _moved(moved, old)
    db.session.commit()
    login(user)
    was = "Moved from " + old.strftime("%a %d %b %H:%M")
    row = _row_of(client.get(f"/provider/schedule?from={first}").get_data(as_text=True), moved.id)
    assert was in row
    assert f'<input type="hidden" name="from" value="{first}">' in row
    url = f"/provider/schedule/{moved.id}/meet-link"
    link = "https://meet.google.com/abc-defg-hij"
    answer = client.post(
        url, data={"meet_link": link, "from": first}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    row = answer.get_data(as_text=True)
    assert was in row and f'<input type="hidden" name="from" value="{first}">' in row
    plain = client.post(url, data={"meet_link": link, "from": first.isoformat()})
    assert plain.status_code == 303 and plain.location.endswith(f"/provider/schedule?from={first}")
    for bad in ("2026-02-30", "soon", ""):
        plain = client.post(url, data={"meet_link": link, "from": bad})
        assert plain.status_code == 303 and plain.location.endswith("/provider/schedule"), bad


def test_start_and_complete_without_javascript_return_to_the_page_they_were_on(
    mid_year, world, client, login
):
    """Review finding (a doctor's week): without JavaScript, Start or Complete on Today
    answered with the Schedule page. The row's forms on Today send ``page=today`` and the
    answer goes back there; on the schedule, to its ``from`` as before. The value is looked
    up in an allow-list of the provider's own pages, never used as an address."""
    provider, user = world.provider()
    now = utcnow().replace(second=0, microsecond=0)
    began = world.booking(provider, start=now - timedelta(minutes=5))
    soon = world.booking(provider, start=now + timedelta(minutes=20))
    soon.service.mode = "ONLINE"  # its meeting link's form stays on the row once started
    db.session.commit()
    login(user)
    today = client.get("/provider/").get_data(as_text=True)
    hidden = '<input type="hidden" name="page" value="today">'
    assert hidden in _row_of(today, began.id) and hidden in _row_of(today, soon.id)
    schedule = client.get("/provider/schedule").get_data(as_text=True)
    assert 'name="page"' not in _row_of(schedule, began.id)
    start = f"/provider/schedule/{began.id}/start"
    answer = client.post(start, data={"page": "today"})
    assert answer.status_code == 303 and answer.location.endswith("/provider/"), answer.location
    assert "Appointment started." in client.get(answer.location).get_data(as_text=True)
    answer = client.post(f"/provider/schedule/{began.id}/complete", data={"page": "today"})
    assert answer.status_code == 303 and answer.location.endswith("/provider/")
    # The row swapped in by htmx keeps saying which page it is on (its meeting link's form).
    row = client.post(
        f"/provider/schedule/{soon.id}/start",
        data={"page": "today"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert hidden in row
    # A refusal (started already) goes back the same way; anything not on the list is the
    # schedule (with its from when one is sent), never another address.
    answer = client.post(start, data={"page": "today"})
    assert answer.status_code == 303 and answer.location.endswith("/provider/")
    for bad in ("//evil.example/x", "https://evil.example/", "/admin/", "Today", ""):
        answer = client.post(start, data={"page": bad})
        assert answer.status_code == 303, bad
        assert answer.location.endswith("/provider/schedule"), (bad, answer.location)
    first = _today().isoformat()
    answer = client.post(start, data={"from": first})
    assert answer.location.endswith(f"/provider/schedule?from={first}")


def test_no_cancel_link_once_an_appointment_has_begun(mid_year, world, client, login):
    """A doctor cancels only before the start (``domain.cancellation``), and the leave
    refusal says an appointment begun is "too late to cancel or move": its row offered
    Cancel anyway, a link to a page that refuses. Ahead, the link stays."""
    provider, user = world.provider()
    now = utcnow().replace(second=0, microsecond=0)
    began = world.booking(provider, start=now - timedelta(minutes=5))
    soon = world.booking(provider, start=now + timedelta(minutes=20))
    db.session.commit()
    login(user)
    for path in ("/provider/", "/provider/schedule"):
        html = client.get(path).get_data(as_text=True)
        assert f"/provider/bookings/{soon.id}/cancel" in _row_of(html, soon.id)
        assert "/cancel" not in _row_of(html, began.id), path
        assert ">Start</button>" in _row_of(html, began.id)


def test_a_team_appointments_row_names_the_other_providers(mid_year, app, make_user, client):
    """Review finding (a doctor's week): a team appointment's row said only "team", never
    with whom. Each provider's row names the others ("with Dr Gopal Krishnan"; several,
    by name), on Today and the schedule, in Hindi too; read with the page's providers, so
    the page's statements do not grow. No app context is held while pages render
    (Flask-Babel keeps the locale on it)."""
    from tests.payouts.conftest import World
    from tests.plugin import PASSWORD
    from tests.querycount import counted_queries

    with app.app_context():
        world = World(app, make_user)
        me, user = world.provider(name="Dr Asha Rao")
        gopal, _ = world.provider(name="Dr Gopal Krishnan")
        meera, _ = world.provider(name="Dr Meera Iyer")
        now = utcnow().replace(second=0, microsecond=0)
        alone = world.booking(me, start=now + timedelta(hours=1)).id
        db.session.commit()
        email = user.email
        db.session.remove()
    client.post("/auth/login", data={"email": email, "password": PASSWORD})

    def statements(path):
        client.get(path)  # warm
        with counted_queries() as seen:
            client.get(path)
        return len(seen)

    before = {path: statements(path) for path in ("/provider/", "/provider/schedule")}
    with app.app_context():
        world._clinic, world._spec = map(db.session.merge, (world._clinic, world._spec))
        me, gopal, meera = (db.session.merge(p) for p in (me, gopal, meera))
        pair = world.booking([me, gopal], start=now + timedelta(hours=2)).id
        trio = world.booking([me, gopal, meera], start=now + timedelta(hours=3)).id
        db.session.remove()
    for path in ("/provider/", "/provider/schedule"):
        html = client.get(path).get_data(as_text=True)
        assert "with Dr Gopal Krishnan<" in _row_of(html, pair), path
        assert "with Dr Gopal Krishnan, Dr Meera Iyer<" in _row_of(html, trio)
        assert "Dr Asha Rao" not in _row_of(html, pair) + _row_of(html, trio)
        assert "with " not in _row_of(html, alone)
        assert statements(path) == before[path], path
    # The row htmx swaps in after an action names them too.
    row = client.post(f"/provider/schedule/{pair}/start", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "with Dr Gopal Krishnan<" in row
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get("/provider/").get_data(as_text=True)
    assert "Dr Gopal Krishnan, Dr Meera Iyer के साथ<" in _row_of(html, trio)
