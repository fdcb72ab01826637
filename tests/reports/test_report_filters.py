"""Bad report filters are a message beside the field (422), for the page and its CSV;
the audit report keeps approval steps and honours actor, action and dates as the audit
viewer does, so the viewer's CSV link exports the rows the viewer shows."""

import csv
import html as htmlmod
import io
import re
from datetime import UTC, datetime

import pytest

from portal.audit.models import AuditEntry
from portal.audit.queries import MSG_BACKWARDS, MSG_NO_ACTOR, MSG_TOO_LONG
from portal.audit.service import record
from portal.db import unit_of_work
from portal.extensions import db
from portal.reports import audit_log, periods


@pytest.mark.parametrize(
    "query, message",
    [
        ("date_from=2026-11-30&date_to=2026-11-01", MSG_BACKWARDS),
        ("date_from=2025-01-01&date_to=2026-01-02", MSG_TOO_LONG),
        ("date_from=30/11/2026", periods.MSG_DATE),
        ("date_to=2026-02-30", periods.MSG_DATE),
        ("action=%1b", periods.MSG_TEXT),
        ("actor=a%07b", periods.MSG_TEXT),
    ],
)
def test_bad_audit_dates_are_messages(client, make_user, login, query, message):
    login(make_user("admin"))
    for suffix in ("", "&format=csv"):
        r = client.get(f"/admin/reports/audit?{query}{suffix}")
        assert r.status_code == 422 and r.mimetype == "text/html"
        assert message in r.get_data(as_text=True)


def test_a_nul_in_a_filter_is_refused_before_the_report(client, make_user, login):
    login(make_user("admin"))
    assert client.get("/admin/reports/audit?actor=a%00b&format=csv").status_code == 400


@pytest.mark.parametrize(
    "query, message",
    [
        ("fy=2026", periods.MSG_FY),
        ("fy=2026-28", periods.MSG_FY),
        ("fy=2026-27&quarter=Q5", periods.MSG_QUARTER),
        ("fy=2026-27&provider_id=x", "Choose a provider from the list"),
    ],
)
def test_bad_tds_filters_are_messages(client, make_user, login, query, message):
    login(make_user("admin"))
    r = client.get(f"/admin/reports/tds?{query}")
    assert r.status_code == 422 and message in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "date_from, date_to, refused",
    [
        ("2025-04-01", "2026-03-31", False),  # a year
        ("2025-04-01", "2026-04-01", True),  # a year and a day: 366 days, not a leap year
        ("2024-01-01", "2024-12-31", False),  # a leap year's 366 days
        ("2024-02-29", "2025-02-28", False),
        ("2024-02-29", "2025-03-01", True),
    ],
)
def test_the_audit_report_refuses_the_ranges_the_audit_viewer_refuses(
    client, make_user, login, date_from, date_to, refused
):
    """docs/wallet.md: 1 April – 31 March is a year, 1 April – 1 April is not. The viewer
    (``AuditFilter.problems``) refused 2025-04-01 – 2026-04-01; the report and its CSV
    (366 days) accepted it, so the viewer's CSV link gave rows the viewer did not show."""
    login(make_user("admin"))
    query = f"date_from={date_from}&date_to={date_to}"
    viewer = client.get(f"/admin/audit?{query}")
    assert viewer.status_code == (422 if refused else 200)
    for suffix in ("", "&format=csv"):
        report = client.get(f"/admin/reports/audit?{query}{suffix}")
        assert report.status_code == viewer.status_code, (suffix, report.status_code)
        if refused:
            assert MSG_TOO_LONG in report.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        # The edges of the dates a filter takes (1900–2099): a period's end or the day after
        # its last day is computed from them. Beyond the edges: tests/security/test_input_dates.py.
        "/admin/reports/gst?month=2099-12&format=csv",
        "/admin/reports/gst?month=1900-01&format=csv",
        "/admin/reports/tds?fy=2099-00&format=csv",
        "/admin/reports/tds?fy=1899-00&format=csv",
        "/admin/reports/tds?fy=2098-99&format=csv",
        "/admin/reports/audit?date_from=2099-12-31&date_to=2099-12-31&format=csv",
        "/admin/reports/audit?date_from=1900-01-01&date_to=1900-01-01&format=csv",
        "/admin/transactions.csv?from=2099-12-31&to=2099-12-31",
        "/admin/transactions.csv?from=1900-01-01&to=1900-01-01",
        # What Python's int() or fromisoformat() takes and a filter must not trip on.
        "/admin/reports/gst?month=2026-%2B6",
        "/admin/reports/gst?month=%2B2026-06",
        "/admin/reports/gst?month=2_26-06",
        "/admin/reports/gst?month=2026-06-01",
        "/admin/reports/gst?month=2026-00",
        "/admin/reports/tds?fy=2_26-27",
        "/admin/reports/tds?fy=2026-%2B7",
        "/admin/reports/audit?date_from=2026-W01-1",
        "/admin/reports/audit?date_from=20261101",
        # Cursors that are not ours.
        "/admin/reports/audit?after=zzzz",
        "/admin/reports/audit?after=WzEsMl0",
        "/admin/reports/audit?before=WyJ4IiwieCJd",
        # Amounts a float would take.
        "/admin/transactions.csv?min=nan",
        "/admin/transactions.csv?min=inf",
        "/admin/transactions.csv?min=1e308",
        "/admin/transactions?max=-5",
        "/admin/exports/0/download",
    ],
)
def test_edge_filter_values_are_answered_not_a_500(client, make_user, login, url):
    login(make_user("admin"))
    assert client.get(url).status_code < 500, url


@pytest.mark.parametrize("role", ["patient", "provider"])
def test_reports_and_their_files_are_for_admins_only(client, make_user, login, role):
    login(make_user(role))
    for url in (
        "/admin/reports",
        "/admin/reports/audit",
        "/admin/exports",
        "/admin/reports/gst?format=csv",
        "/admin/reports/tds?format=csv",
        "/admin/reports/audit?format=csv",
        "/admin/transactions.csv",
        "/admin/exports/1",
        "/admin/exports/1/download",
        "/admin/reconciliation/cases.csv",
        "/admin/reconciliation/runs.csv",
    ):
        assert client.get(url).status_code == 403, url


def test_audit_report_filters_and_approval_trail(app, client, make_user, login):
    maker = make_user("admin", email="maker@example.com")
    checker = make_user("admin", email="checker@example.com")
    with app.app_context():
        with unit_of_work():
            record(maker.id, "refund.override_requested", "booking", 7, after={"approval_id": 3})
            record(checker.id, "refund.override_approved", "booking", 7, after={"approval_id": 3})
            record(maker.id, "visit.confirm", "visit", 9, after={"status": "CONFIRMED"})
        f = audit_log.parse({"approvals": "1"})
        rows = list(db.session.execute(audit_log.query(f)))
        assert {r.AuditEntry.action for r in rows} == {
            "refund.override_requested",
            "refund.override_approved",
        }
        f = audit_log.parse({"actor": "Checker@Example.com"})
        assert [r.AuditEntry.action for r in db.session.execute(audit_log.query(f))] == [
            "refund.override_approved"
        ]
        f = audit_log.parse({"action": "refund."})  # a prefix ends in "."
        assert len(list(db.session.execute(audit_log.query(f)))) == 2
        f = audit_log.parse({"action": "refund"})
        assert list(db.session.execute(audit_log.query(f))) == []
        f = audit_log.parse(
            {"action": "visit.", "date_from": "2000-01-01", "date_to": "2000-12-31"}
        )
        assert list(db.session.execute(audit_log.query(f))) == []
        db.session.remove()
    login(maker)
    page = client.get("/admin/reports/audit?approvals=1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "refund.override_approved" in html and "visit.confirm" not in html
    body = client.get("/admin/reports/audit?approvals=1&format=csv").get_data(as_text=True)
    assert body.count("refund.override_") == 2 and ",3," in body  # the approval id column


def test_report_pages_render_for_an_admin(client, make_user, login):
    login(make_user("admin"))
    index = client.get("/admin/reports")
    assert index.status_code == 200 and b"/admin/reports/gst" in index.data
    tds_page = client.get("/admin/reports/tds?fy=2026-27&quarter=Q2")
    assert tds_page.status_code == 200 and b"No payouts in this period." in tds_page.data
    gst_page = client.get("/admin/reports/gst?month=2026-06")
    assert gst_page.status_code == 200 and b"Nothing invoiced or reversed" in gst_page.data
    assert client.get("/admin/exports").status_code == 200
    csv_answer = client.get("/admin/reports/tds?fy=2026-27&format=csv")
    assert csv_answer.mimetype == "text/csv"
    assert "Filters: Financial year: 2026-27; Quarter: all" in csv_answer.get_data(as_text=True)


def test_the_audit_viewer_links_its_filters_to_the_csv(app, client, make_user, login):
    admin = make_user("admin", email="viewer@example.com")
    with app.app_context():
        with unit_of_work():
            record(admin.id, "visit.confirm", "visit", 9, after={"status": "CONFIRMED"})
            record(admin.id, "visit.confirm", "visit", 10, after={"status": "CONFIRMED"})
        db.session.remove()
    login(admin)
    page = client.get("/admin/audit?object_type=visit&object_id=9")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="audit-csv"' in html and "object_id=9" in html and "format=csv" in html
    body = client.get(
        f"/admin/reports/audit?actor={admin.id}&object_type=visit&object_id=9&format=csv"
    ).get_data(as_text=True)
    assert body.count("visit.confirm") == 1
    assert "Object: visit 9" in body.splitlines()[1]


def _audit_entry(app, action, at, actor_id):
    with app.app_context():
        db.session.add(
            AuditEntry(action=action, object_type="user", object_id="1", at=at, actor_id=actor_id)
        )
        db.session.commit()


def _viewer_and_its_csv(client, query):
    """The entry ids the viewer shows for ``query``, and those its Download CSV link gives."""
    page = client.get(f"/admin/audit?{query}").get_data(as_text=True)
    shown = re.findall(r'<tr id="audit-(\d+)">', page[page.index('id="audit-entries"') :])
    link = htmlmod.unescape(re.search(r'href="([^"]+)" id="audit-csv"', page).group(1))
    body = client.get(link).get_data(as_text=True).lstrip("\ufeff")
    lines = [line for line in csv.reader(io.StringIO(body)) if line]
    header = next(i for i, line in enumerate(lines) if line[0] == "Entry")
    return sorted(shown), sorted(line[0] for line in lines[header + 1 :])


def test_the_audit_viewers_csv_has_the_rows_the_viewer_shows(app, client, make_user, login):
    maker = make_user("admin", email="maker@example.com")
    shoemaker = make_user("admin", email="shoemaker@example.com")  # contains maker's email
    day = datetime(2026, 3, 2, 5, tzinfo=UTC)
    for action, actor in (
        ("login", maker),
        ("login_failed", maker),  # "login" is its prefix, not its name
        ("clinic.update", maker),
        ("clinic.create", shoemaker),
    ):
        _audit_entry(app, action, day, actor.id)
    login(maker)
    dates = "date_from=2026-03-02&date_to=2026-03-02"
    for query, count in (
        ("action=login", 1),
        ("action=clinic.", 2),
        ("actor=maker@example.com", 3),
        (f"actor={shoemaker.id}", 1),
        ("actor=MAKER@example.com&action=clinic.", 1),
    ):
        shown, exported = _viewer_and_its_csv(client, f"{query}&{dates}")
        assert len(shown) == count, query
        assert exported == shown, f"{query}: the viewer shows {shown}, its CSV has {exported}"


def test_an_actor_no_user_has_is_a_message_on_the_report_and_its_csv(client, make_user, login):
    login(make_user("admin", email="maker@example.com"))
    for suffix in ("", "&format=csv"):
        r = client.get(f"/admin/reports/audit?actor=maker@example{suffix}")
        assert r.status_code == 422 and MSG_NO_ACTOR in r.get_data(as_text=True)


def test_a_quarter_names_its_months_and_their_calendar_year():
    assert [periods.quarter_months("2026-27", q) for q in ("Q1", "Q2", "Q3", "Q4")] == [
        "Apr–Jun 2026",
        "Jul–Sep 2026",
        "Oct–Dec 2026",
        "Jan–Mar 2027",
    ]
