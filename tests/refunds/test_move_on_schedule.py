"""A move's new time held while the patient pays its fee is on the doctor's schedule
(review finding: it was on no page, so the doctor saw a free time that patients could not
book and that their leave and hours changes were refused over). Greyed at its new time
with where it comes from and when the hold lapses, the appointment's own row saying where
it is moving; gone once lapsed; once paid, the booking is simply at its new time, "Moved
from …". Booked, moved and paid through the real services on the sandbox gateway."""

import pytest
import sqlalchemy as sa

from portal.booking import reschedule_payment
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from tests.booking.factories import at
from tests.querycount import counted_queries
from tests.refunds.helpers import book_and_pay, hours, login, quoted_move, with_known_passwords
from tests.web.test_query_budgets import BUDGETS

OLD = at(2, 10)  # Wed 03 Jun 2026, 10:00 IST: the paid appointment
ASKED = at(0, 10)  # Mon 01 Jun, 10:00: 48 hours before it, so the move has a fee
NEW = at(0, 15)  # Mon 01 Jun, 15:00 (today): where it is moving
DOCTOR, OTHER_DOCTOR = "provider1@example.com", "provider2@example.com"
CALLBACK = "http://portal.test/me/reschedules/__ID__/paid"


def _pending_move(world, users, gateway, clock, old=OLD, new=NEW, service=None):
    """The first patient's appointment with the first doctor at ``old``, paid, and a move
    to ``new`` asked at ``ASKED`` with its fee to pay online (not paid yet): the
    Reschedule row, PENDING_PAYMENT, its new time held."""
    with_known_passwords()
    clock.move_to(at(0, 8))
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, [(service or world.online, [world.doctors[0]], old)]
    )
    clock.move_to(ASKED)
    resched = quoted_move(
        patient, visit.items[0].id, new, pay_with="gateway", callback_url=CALLBACK
    ).reschedule
    db.session.commit()
    assert resched.status == "PENDING_PAYMENT" and resched.total > 0
    return resched


def _walk(page, label):
    """The rows' labels paged one way to the end (``after``), and back from the last page
    to the first (``before``): both must be the full list's order."""
    pages = [page()]
    while pages[-1].next_cursor:
        pages.append(page(after=pages[-1].next_cursor))
    later = [label(row) for p in pages for row in p.items]
    earlier, cursor = [label(row) for row in pages[-1].items], pages[-1].prev_cursor
    while cursor:
        back = page(before=cursor)
        earlier = [label(row) for row in back.items] + earlier
        cursor = back.prev_cursor
    return later, earlier


def _page(app, email, url="/provider/schedule"):
    client = app.test_client()
    login(client, email)
    answer = client.get(url)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def _row(html, element_id):
    return html.split(f'id="{element_id}"', 1)[1].split("</tr>", 1)[0]


def _held_until(resched):
    return resched.expires_at.astimezone(INDIA_TZ).strftime("%H:%M")


def test_a_pending_moves_new_time_is_greyed_at_that_time_and_its_old_row_says_so(
    app, world, users, gateway, clock
):
    resched = _pending_move(world, users, gateway, clock)
    until, name = _held_until(resched), users(world.patients[0]).name
    html = _page(app, DOCTOR)
    assert f'<tr id="move-{resched.id}" class="held">' in html
    held = _row(html, f"move-{resched.id}")
    assert "15:00–15:30" in held
    assert "Moving here from Wed 03 Jun 10:00" in held
    assert f"Awaiting the patient's fee — held until {until}" in held
    assert name in held  # already the doctor's patient: named, unlike a new booking's hold
    assert "<form" not in held and "Start" not in held and "Cancel" not in held
    # At its new time: today's section, before Wednesday's (where the appointment still is).
    assert html.index(f'id="move-{resched.id}"') < html.index(f'id="booking-{resched.booking_id}"')
    old = _row(html, f"booking-{resched.booking_id}")
    assert "10:00–10:30" in old and "Moving to Mon 01 Jun 15:00 if the fee is paid" in old

    today = _page(app, DOCTOR, "/provider/")
    assert "Moving here from Wed 03 Jun 10:00" in _row(today, f"move-{resched.id}")
    assert f'id="booking-{resched.booking_id}"' not in today  # Wednesday's, not today's


def test_the_held_row_and_the_note_in_hindi(app, world, users, gateway, clock):
    resched = _pending_move(world, users, gateway, clock)
    client = app.test_client()
    login(client, DOCTOR)
    client.post("/language", data={"language": "hi", "next": "/"})
    with app.app_context():  # Flask-Babel keeps the locale on the app context
        html = client.get("/provider/schedule").get_data(as_text=True)
    held = _row(html, f"move-{resched.id}")
    assert "बुध 03 जून 10:00 से यहाँ बदला जा रहा है" in held
    assert f"मरीज़ के शुल्क की प्रतीक्षा — {_held_until(resched)} तक रोका गया" in held
    old = _row(html, f"booking-{resched.booking_id}")
    assert "शुल्क चुकाने पर सोम 01 जून 15:00 पर बदला जाएगा" in old


def test_another_provider_does_not_see_the_held_time(app, world, users, gateway, clock):
    resched = _pending_move(world, users, gateway, clock)
    for url in ("/provider/schedule", "/provider/"):
        assert f'id="move-{resched.id}"' in _page(app, DOCTOR, url)  # the doctor's own
        html = _page(app, OTHER_DOCTOR, url)
        assert f'id="move-{resched.id}"' not in html and "Moving here" not in html
        assert "Moving to" not in html


def test_a_lapsed_hold_shows_nothing_extra(app, world, users, gateway, clock):
    """Lapsed (the checkout's time ran out), whether or not the sweep has expired it yet:
    the new time is free again, the appointment is where it was."""
    resched = _pending_move(world, users, gateway, clock)
    clock.move_to(resched.expires_at - hours(0, 1))
    assert f'id="move-{resched.id}"' in _page(app, DOCTOR)  # held to the last minute
    clock.move_to(resched.expires_at + hours(0, 1))
    html = _page(app, DOCTOR)
    assert f'id="move-{resched.id}"' not in html and "Moving here" not in html
    old = _row(html, f"booking-{resched.booking_id}")
    assert "10:00–10:30" in old and "Moving to" not in old
    reschedule_payment.expire_reschedules()
    db.session.commit()
    assert db.session.get(Reschedule, resched.id).status == "EXPIRED"
    html = _page(app, DOCTOR)
    assert f'id="move-{resched.id}"' not in html and "Moving to" not in html


def test_once_paid_the_booking_is_at_its_new_time_moved_from_the_old(
    app, world, users, gateway, clock
):
    resched = _pending_move(world, users, gateway, clock)
    assert f'id="move-{resched.id}"' in _page(app, DOCTOR)
    reschedule_payment.complete_callback(gateway.pay(resched.razorpay_order_id), resched.id)
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(IndividualBooking, resched.booking_id).start_at == NEW
    html = _page(app, DOCTOR)
    assert f'id="move-{resched.id}"' not in html
    assert "Moving here" not in html and "Moving to" not in html
    row = _row(html, f"booking-{resched.booking_id}")
    assert "15:00–15:30" in row and "Moved from Wed 03 Jun 10:00" in row


def test_the_row_alone_after_an_action_keeps_its_note(app, world, users, gateway, clock):
    """The row htmx swaps in after the meeting link is saved is read alone: it still says
    where the appointment is moving (read with its "Moved from", no statement more)."""
    resched = _pending_move(world, users, gateway, clock)
    client = app.test_client()
    login(client, DOCTOR)
    answer = client.post(
        f"/provider/schedule/{resched.booking_id}/meet-link",
        data={"meet_link": "https://meet.google.com/abc-defg-hij"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "Moving to Mon 01 Jun 15:00 if the fee is paid" in answer.get_data(as_text=True)


def test_the_held_times_cost_the_schedule_no_statement_more(app, world, users, gateway, clock):
    """The moves' held times and the notes come with the page's own query: the same number
    of statements with one pending move as with two, within the page's budget."""
    _pending_move(world, users, gateway, clock)
    client = app.test_client()
    login(client, DOCTOR)

    def count():
        client.get("/provider/schedule")  # warm: templates compiled, caches filled
        with counted_queries() as statements:
            html = client.get("/provider/schedule").get_data(as_text=True)
        return len(statements), html.count("Moving here from"), html.count("Moving to")

    one = count()
    _pending_move(world, users, gateway, clock, old=at(2, 11), new=at(0, 16))
    two = count()
    assert one[1:] == (1, 1) and two[1:] == (2, 2)
    assert one[0] == two[0] <= BUDGETS[("doctor", "/provider/schedule", False)]


def test_paged_the_held_time_takes_its_place_among_the_bookings(world, users, gateway, clock):
    """The held times are paged with the bookings, by time (one list: Later and Earlier
    neither repeat nor skip one), whichever way the pages are walked."""
    from portal.payouts.queries import HeldMove, schedule_page

    resched = _pending_move(world, users, gateway, clock)  # Wed 10:00 moving to Mon 15:00
    patient = users(world.patients[0])
    book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 9))])
    doctor = world.doctors[0]

    def label(row):
        return ("move", row.reschedule_id) if isinstance(row, HeldMove) else row.start_at

    def page(**cursor):
        return schedule_page(doctor, now=ASKED, per_page=1, **cursor)

    expected = [("move", resched.id), at(1, 9), OLD]  # Mon 15:00, Tue 09:00, Wed 10:00
    later, earlier = _walk(page, label)
    assert later == expected and earlier == expected


def test_a_team_bookings_held_move_is_on_each_team_doctors_schedule_once(
    app, world, users, gateway, clock
):
    """A team appointment (two doctors) moving: each of its doctors sees the held time
    once, and the appointment's own row once saying where it is moving (one claim a
    doctor: the page's join must not list it twice); a doctor not on the team and the lab
    see neither (re-read: asked for)."""
    with_known_passwords()
    clock.move_to(at(0, 8))
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, world.doctors[:2], OLD)])
    clock.move_to(ASKED)
    resched = quoted_move(
        patient, visit.items[0].id, NEW, pay_with="gateway", callback_url=CALLBACK
    ).reschedule
    db.session.commit()
    assert resched.status == "PENDING_PAYMENT"
    for email in (DOCTOR, OTHER_DOCTOR):
        html = _page(app, email)
        assert html.count(f'id="move-{resched.id}"') == 1, email
        assert html.count(f'id="booking-{resched.booking_id}"') == 1, email
        assert html.count("Moving here from Wed 03 Jun 10:00") == 1, email
        assert html.count("Moving to Mon 01 Jun 15:00 if the fee is paid") == 1, email
    for email in ("providerderm@example.com", "providerlab@example.com"):
        html = _page(app, email)
        assert f'id="move-{resched.id}"' not in html and "Moving" not in html, email


def test_a_held_move_and_a_booking_at_one_start_page_in_a_fixed_order(world, users, gateway, clock):
    """A tie: the held new time and bookings starting at the same minute (written there
    directly: the claims would refuse it, but the page's order must not rely on that).
    Paged one row at a time, Later and then Earlier, the rows come in the full list's
    order (time, booking, move), none repeated or skipped (re-read: asked for)."""
    from portal.payouts.queries import HeldMove, schedule_page

    with_known_passwords()
    clock.move_to(at(0, 8))
    patient, other = users(world.patients[0]), users(world.patients[1])
    doctor = world.doctors[0]
    # Booked in this order, so the moving appointment's id falls between the other two.
    before = book_and_pay(world, other, gateway, [(world.consult, [doctor], at(1, 9))])
    moving = book_and_pay(world, patient, gateway, [(world.consult, [doctor], OLD)])
    after = book_and_pay(world, other, gateway, [(world.consult, [doctor], at(1, 11))])
    clock.move_to(ASKED)
    resched = quoted_move(
        patient, moving.items[0].id, NEW, pay_with="gateway", callback_url=CALLBACK
    ).reschedule
    db.session.commit()
    tied = [v.items[0].id for v in (before, after)]
    db.session.execute(
        sa.update(IndividualBooking)
        .where(IndividualBooking.id.in_(tied))
        .values(start_at=NEW, end_at=NEW + hours(0, 30))
    )
    db.session.commit()

    def label(row):
        return ("move", row.booking.id) if isinstance(row, HeldMove) else ("booking", row.id)

    def page(per_page=1, **cursor):
        return schedule_page(doctor, now=ASKED, per_page=per_page, **cursor)

    full = [label(row) for row in page(per_page=50).items]
    assert full == [
        ("booking", tied[0]),
        ("move", resched.booking_id),
        ("booking", tied[1]),
        ("booking", resched.booking_id),  # at its own time, Wednesday
    ]
    later, earlier = _walk(page, label)
    assert later == full and earlier == full


@pytest.mark.parametrize(
    "new, shown",
    [
        (at(1, 9), True),  # Tue 02 Jun 09:00: the page's first day
        (at(14, 17, 30), True),  # Mon 15 Jun 17:30: its last (14th) day
        (at(15, 9), False),  # Tue 16 Jun 09:00: the day after its last
        (at(0, 17, 30), False),  # Mon 01 Jun 17:30: the day before its first
    ],
)
def test_a_held_move_at_the_pages_edges(app, world, users, gateway, clock, new, shown):
    """The page of 14 days from Tue 02 Jun (``?from=``) lists a move held at a time on its
    first or last day, not one on the day before or after (re-read: asked for); the
    appointment's own row (Wed 03 Jun) is on it either way, saying where it is moving."""
    resched = _pending_move(world, users, gateway, clock, new=new)
    html = _page(app, DOCTOR, "/provider/schedule?from=2026-06-02")
    assert (f'id="move-{resched.id}"' in html) is shown
    assert f'id="booking-{resched.booking_id}"' in html
    when = new.astimezone(INDIA_TZ).strftime("%a %d %b %H:%M")
    assert f"Moving to {when} if the fee is paid" in _row(html, f"booking-{resched.booking_id}")


@pytest.mark.parametrize(
    "language, said",
    [("en", "The new time could not be kept. ₹"), ("hi", "नया समय तय नहीं हो सका। ₹")],
)
def test_a_failed_move_without_a_stored_reason_says_a_sentence_not_the_catalogue_header(
    app, world, users, gateway, clock, language, said
):
    """``_("")`` is gettext's catalogue header in Hindi (its Project-Id-Version and
    Content-Type lines): a move closed with no reason must say one of its own (re-read
    finding)."""
    from portal.accounts.models import User
    from portal.notify import tasks
    from portal.notify.models import Notification

    resched = _pending_move(world, users, gateway, clock)
    resched.failure_reason = None
    db.session.get(User, resched.visit.patient_id).language = language
    db.session.commit()
    tasks.reschedule_failed(resched.id)
    db.session.commit()
    body = db.session.scalars(
        sa.select(Notification.body).where(Notification.kind == "booking.reschedule_failed")
    ).one()
    assert "Content-Type" not in body and "Project-Id" not in body
    assert body.startswith(said)
