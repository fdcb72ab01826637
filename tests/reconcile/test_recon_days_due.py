"""The daily schedule's days (``window.days_due``) as a plain function: yesterday once its
run time has come, and missed days back to the first scheduled run, at most the
``RECON_CATCH_UP_DAYS`` setting back."""

from datetime import date, timedelta

from portal.config import TUNABLES
from portal.reconcile.window import days_due

YESTERDAY = date(2026, 7, 15)


def _back(*ks):
    return [YESTERDAY - timedelta(days=k) for k in ks]


def test_yesterday_only_once_its_run_time_has_come():
    assert days_due(YESTERDAY, True, YESTERDAY, 7) == [YESTERDAY]
    assert days_due(YESTERDAY, False, YESTERDAY, 7) == []


def test_no_finished_scheduled_run_yet_catches_nothing_up():
    assert days_due(YESTERDAY, True, None, 7) == [YESTERDAY]


def test_missed_days_newest_first_back_to_the_first_scheduled_run():
    assert days_due(YESTERDAY, True, YESTERDAY - timedelta(days=3), 7) == _back(0, 1, 2, 3)
    assert days_due(YESTERDAY, False, YESTERDAY - timedelta(days=2), 7) == _back(1, 2)


def test_at_most_the_catch_up_days_back():
    long_ago = YESTERDAY - timedelta(days=30)
    assert days_due(YESTERDAY, True, long_ago, 7) == _back(0, 1, 2, 3, 4, 5, 6, 7)
    assert days_due(YESTERDAY, True, long_ago, 2) == _back(0, 1, 2)
    assert days_due(YESTERDAY, True, long_ago, 0) == [YESTERDAY]


def test_the_catch_up_is_a_setting_of_a_week_by_default():
    assert TUNABLES["RECON_CATCH_UP_DAYS"].default_value == 7
