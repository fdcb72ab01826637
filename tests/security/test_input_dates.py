"""Dates beyond 1900–2099 (``portal.domain.dates``) are a message beside the field, never
a 500: a filter's date arithmetic (the day after, midnight IST in UTC) leaves Python's
date range at the years 0001 and 9999 (review finding)."""

from datetime import date

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


@pytest.fixture
def booking_world(app, make_user):
    from tests.web.booking.helpers import build_catalog

    patient = make_user("patient")
    with app.app_context():
        world = build_catalog(make_user)
    world.patient = patient
    return world


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+05:30", "9999-12-31T23:00:00-05:00"])
def test_a_slot_link_at_the_edge_of_pythons_dates_is_not_a_500(client, login, booking_world, start):
    """Their way to UTC overflows (OverflowError, not ValueError): a start outside the
    span is no start, as a malformed one is (re-review finding)."""
    w = booking_world
    login(w.patient)
    args = {"provider": w.doc1, "service": w.consult, "clinic": w.clinic, "start": start}
    # No slot: the book page's 400 ("that time is not available"), nothing held.
    assert client.get("/me/book", query_string=args).status_code == 400
    assert client.post("/me/book", data={**args, "person": "self"}).status_code == 400


def test_a_keyset_cursor_at_year_one_is_ignored(admin, client):
    """A cursor that does not fit is ignored, never a 500 (portal.pagination)."""
    from datetime import datetime, timedelta, timezone

    from portal.pagination import encode_cursor

    east = timezone(timedelta(hours=5, minutes=30))
    cursor = encode_cursor([datetime(1, 1, 1, tzinfo=east), 1])
    assert client.get("/admin/audit", query_string={"after": cursor}).status_code == 200


@pytest.mark.parametrize(
    "url, after, kind",
    [
        ("/admin/approvals", "after", None),
        ("/admin/approvals", "decided_after", None),
        ("/admin/approvals", "decided_before", "policy"),
        ("/admin/audit", "after", None),
    ],
)
def test_a_date_in_a_cursor_of_times_is_ignored(admin, client, url, after, kind):
    """A tampered or stale cursor holding a day where the list sorts by a time (an aware
    ``UTCDateTime``, whose own type says ``object``) is ignored like any that does not fit:
    it was a 500 at the bind (review finding)."""
    from portal.pagination import encode_cursor

    cursor = encode_cursor([date(2026, 1, 1), "refund", 1])
    assert client.get(url, query_string={after: cursor}).status_code == 200
    assert (
        client.get(url, query_string={after: encode_cursor([date(2026, 1, 1), 1])}).status_code
        == 200
    )


@pytest.mark.parametrize("far", ["9999-12-31", "0001-01-01"])
def test_no_validate_method_sees_a_date_outside_the_span(app, far):
    """``PortalForm`` holds a far date back from every validator, a form's own
    ``validate_*`` methods included, which read other fields too (the reconciliation run's
    ``day_window`` overflowed on 9999-12-31: a 500, review rev2): its data None, its one
    message the span's."""
    from datetime import timedelta

    from werkzeug.datastructures import MultiDict
    from wtforms import DateField
    from wtforms.validators import InputRequired

    from portal.web.forms.base import MSG_DATE_SPAN, PortalForm

    seen = []

    class Range(PortalForm):
        first = DateField(validators=[InputRequired()])
        last = DateField(validators=[InputRequired()])

        def validate_last(self, field):
            seen.append((self.first.data, field.data))
            if self.first.data and field.data:
                self.first.data + timedelta(days=1)  # the arithmetic that overflowed
                field.data + timedelta(days=1)

    with app.test_request_context():
        form = Range(MultiDict({"first": far, "last": far}), meta={"csrf": False})
        assert not form.validate()
        assert seen == [(None, None)]
        assert form.first.errors == form.last.errors == [MSG_DATE_SPAN]
        assert form.first.data is form.last.data is None
        # A date within the span still reaches the validators.
        seen.clear()
        form = Range(MultiDict({"first": "2099-12-30", "last": far}), meta={"csrf": False})
        assert not form.validate()
        assert [first for first, _ in seen] == [date(2099, 12, 30)]
        assert form.first.errors == [] and form.last.errors == [MSG_DATE_SPAN]
