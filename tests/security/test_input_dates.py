"""Dates beyond 1900–2099 (``portal.domain.dates``) are a message beside the field, never
a 500: a filter's date arithmetic (the day after, midnight IST in UTC) leaves Python's
date range at the years 0001 and 9999 (review finding)."""

import pytest

from portal.domain.dates import EARLIEST, LATEST, in_span
from tests.booking.conftest import clock  # noqa: F401


@pytest.fixture
def admin(app, clock, make_user, login):  # noqa: F811
    user = make_user("admin")
    login(user)
    return user


@pytest.mark.parametrize(
    "url",
    [
        "/admin/reports/gst?month=9999-12",
        "/admin/reports/gst?month=9999-12&format=csv",
        "/admin/reports/gst?month=0001-01",
        "/admin/reports/tds?fy=9998-99",
        "/admin/reports/audit?date_from=9999-12-31&date_to=9999-12-31",
        "/admin/reports/audit?date_from=0001-01-01&date_to=0001-01-02",
        "/admin/audit?date_from=9999-12-31&date_to=9999-12-31",
        "/admin/audit?date_from=0001-01-01",
        "/admin/transactions?from=9999-12-31&to=9999-12-31",
        "/admin/transactions.csv?from=9999-12-31&to=9999-12-31",
        "/admin/transactions?from=0001-01-01&to=0001-01-01",
    ],
)
def test_far_dates_in_filters_are_a_message(admin, client, url):
    answer = client.get(url)
    assert answer.status_code == 422, url
    assert "<html" in answer.get_data(as_text=True)  # the page with its form, not a bare error


def test_a_far_date_in_a_form_is_refused_beside_its_field(client, login, make_user):
    login(make_user("patient"))
    answer = client.post(
        "/me/dependents",
        data={"name": "Anya Rao", "relationship": "child", "date_of_birth": "0001-01-01"},
    )
    assert answer.status_code == 422
    assert "Enter a date between 1900 and 2099." in answer.get_data(as_text=True)


def test_the_span():
    assert in_span(EARLIEST) and in_span(LATEST)
    assert not in_span(EARLIEST.replace(year=1899)) and not in_span(LATEST.replace(year=2100))
