"""The earnings page says when the provider's cycle next pays (review finding: a ₹950
balance on a weekly schedule with no word of when it would be paid), and that a balance
below the minimum carries forward."""

from datetime import date, datetime

import pytest
import time_machine

from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.payouts import runs


@pytest.mark.parametrize(
    "schedule, today, expected",
    [
        ("WEEKLY", date(2026, 12, 10), date(2026, 12, 14)),  # Thursday → Monday
        ("WEEKLY", date(2026, 12, 13), date(2026, 12, 14)),  # Sunday → tomorrow
        ("MONTHLY", date(2026, 12, 10), date(2027, 1, 1)),
        ("INSTANT", date(2026, 12, 10), None),
    ],
)
def test_the_next_run_is_the_next_due_day_once_the_latest_run_is_done(
    app, ctx, schedule, today, expected
):
    now = datetime(today.year, today.month, today.day, 10, 0, tzinfo=INDIA_TZ)
    with time_machine.travel(now, tick=False):
        if schedule != "INSTANT":
            runs.run_cycle(schedule, runs.latest_period_end(schedule, today))
            db.session.commit()
        assert runs.next_run_day(schedule) == expected


@pytest.mark.parametrize(
    "schedule, today, expected",
    [
        ("WEEKLY", date(2026, 12, 14), date(2026, 12, 21)),  # Monday → next Monday
        ("WEEKLY", date(2026, 12, 13), date(2026, 12, 14)),  # Sunday → tomorrow
        ("WEEKLY", date(2026, 12, 31), date(2027, 1, 4)),  # across the year's end
        ("WEEKLY", date(2027, 2, 28), date(2027, 3, 1)),  # Sunday, the month's last day
        ("MONTHLY", date(2026, 12, 1), date(2027, 1, 1)),  # the 1st → next month's
        ("MONTHLY", date(2026, 12, 31), date(2027, 1, 1)),  # the year's last day
        ("MONTHLY", date(2027, 1, 31), date(2027, 2, 1)),
        ("MONTHLY", date(2028, 2, 29), date(2028, 3, 1)),  # a leap day
        ("INSTANT", date(2026, 12, 31), date(2027, 1, 1)),
    ],
)
def test_the_next_due_day_is_the_first_after_today(schedule, today, expected):
    due = runs.next_due_day(schedule, today)
    assert due == expected
    # the calendar agrees with itself: a run is due then, and on no day in between
    assert runs.period_end_for(schedule, due) is not None
    between = (date.fromordinal(n) for n in range(today.toordinal() + 1, due.toordinal()))
    assert all(runs.period_end_for(schedule, day) is None for day in between)


def test_a_schedule_the_calendar_does_not_know_is_refused():
    with pytest.raises(ValueError):
        runs.next_due_day("FORTNIGHTLY", date(2026, 12, 14))


def test_a_due_day_whose_run_is_not_done_yet_is_today(app, ctx):
    monday = datetime(2026, 12, 14, 0, 5, tzinfo=INDIA_TZ)
    with time_machine.travel(monday, tick=False):
        assert runs.next_run_day("WEEKLY") == date(2026, 12, 14)


def test_the_earnings_page_names_the_next_run_and_what_carries_forward(world, x, client, login):
    thursday = datetime(2026, 12, 10, 10, 0, tzinfo=INDIA_TZ)
    with time_machine.travel(thursday, tick=True):
        provider, user = world.ready_provider("WEEKLY", commission_bps=500)
        runs.run_cycle("WEEKLY", runs.latest_period_end("WEEKLY", thursday.date()))
        world.earn(provider, user, 100_000)  # ₹950
        db.session.commit()
        login(user)
        card = client.get("/provider/earnings").get_data(as_text=True)
        card = card.split('id="payable"', 1)[1].split("</section>", 1)[0]
        assert "Next payout run: Monday 14 Dec." in card
        assert "carries forward" not in card
        world.penalty(provider, 50_000)  # ₹450 left: below the ₹500 minimum
        card = client.get("/provider/earnings").get_data(as_text=True)
        card = card.split('id="payable"', 1)[1].split("</section>", 1)[0]
        assert "Next payout run: Monday 14 Dec." in card
        assert "Your balance carries forward until it reaches ₹500." in card
