"""The audit-log report page (/admin/reports/audit) and the audit viewer (/admin/audit).

Review findings:

* Before/After were written with ``|tojson`` (Flask's JSON: ``ensure_ascii``), so a Hindi
  name or reason read ``\\u0906\\u0930\\u0935`` on the page, while the CSV downloaded from the
  same page writes it as text: now both are ``portal.audit.queries.change_text``.
* A filter that matched nothing showed nothing at all under the form: the table and its
  "No entries match." row sat inside ``{% if data %}``, and an empty page of results is
  falsy, so "Show" seemed to do nothing."""

import pytest

from portal.audit.service import record
from portal.db import unit_of_work

CHILD = "आरव शर्मा"


@pytest.fixture
def admin(make_user, login):
    user = make_user("admin")
    login(user)
    return user


@pytest.fixture
def renamed(app, admin):
    with app.app_context(), unit_of_work():
        record(
            None, "dependent.update", "dependent", 1,
            before={"name": "Aarav Sharma"}, after={"name": CHILD},
        )  # fmt: skip


@pytest.mark.parametrize(
    "path", ["/admin/reports/audit?action=dependent.update", "/admin/audit?action=dependent.update"]
)
def test_the_audit_pages_show_hindi_as_written(client, renamed, path):
    page = client.get(path).get_data(as_text=True)
    assert "dependent.update" in page
    assert CHILD in page, "the page shows the name as \\u escapes"
    assert "\\u0906" not in page


def test_an_audit_report_filter_matching_nothing_says_so(client, admin):
    response = client.get("/admin/reports/audit?action=no.such.action")
    assert response.status_code == 200
    assert "No entries match." in response.get_data(as_text=True)


@pytest.fixture
def payout_created(app, admin):
    with app.app_context(), unit_of_work():
        record(
            None, "payout.created", "payout", 7,
            after={"status": "QUEUED", "gross": 665_000, "tds": 0, "net": 665_000, "held": False},
        )  # fmt: skip


@pytest.mark.parametrize(
    "path", ["/admin/reports/audit?object_type=payout", "/admin/audit?object_type=payout"]
)
def test_the_audit_pages_show_a_payouts_money_in_rupees(client, payout_created, path):
    """Re-read: the payout's history read its facts in ₹ (``facts_text``, then in the
    payouts view) while the audit pages printed the same entry's "gross": 665000. The rule
    lives beside the audit's reads (``portal.audit.queries.facts_text``), both use it."""
    page = client.get(path).get_data(as_text=True)
    assert "payout.created" in page
    assert "gross: ₹6,650.00" in page and "net: ₹6,650.00" in page and "tds: ₹0.00" in page
    assert "665000" not in page
    assert "status: QUEUED" in page


def test_a_booked_items_total_and_a_wallet_windows_sum_read_in_rupees_too(app):
    """Re-read: ``total`` (booking.hold / booking.remove) and ``window_total`` (a wallet
    adjustment's 24 hours) are paise too, but printed "total: 52950" beside "amount: ₹…"."""
    from portal.audit.queries import facts_text

    text = facts_text({"total": 52_950, "window_total": 500_000, "id": 12})
    assert text == "id: 12; total: ₹529.50; window_total: ₹5,000.00"


def _every_page(client, url):
    """The object ids of every page from ``url`` on, following "next" links."""
    import html
    import re

    seen = []
    for _ in range(20):
        body = client.get(url).get_data(as_text=True)
        seen += sorted(set(re.findall(r"\b(obj\d{3})\b", body)))
        following = re.search(r'href="([^"]*[?&](?:amp;)?after=[^"]*)"', body)
        if not following:
            return seen
        url = html.unescape(following.group(1))
    raise AssertionError("more than 20 pages")


def test_entries_of_one_instant_are_paged_once_each_and_dated_in_clinic_time(app, client, admin):
    """73 entries written at one instant (a batch job's, say), the last second of 30 June in
    India: both pages list each exactly once over 10-entry pages (the keyset's tie-break on
    the id), and the CSV's clinic days put them on 30 June, not 1 July."""
    from datetime import UTC, datetime

    import time_machine

    from portal.extensions import db

    with (
        app.app_context(),
        time_machine.travel(datetime(2026, 6, 30, 18, 29, 59, tzinfo=UTC), tick=False),
    ):
        with unit_of_work():
            for i in range(73):
                record(admin.id, "review.probe", "thing", f"obj{i:03d}")
        db.session.remove()
    for base in ("/admin/reports/audit", "/admin/audit"):
        seen = _every_page(client, f"{base}?action=review.probe&per_page=10")
        assert len(seen) == len(set(seen)) == 73, base
    csv_of = "/admin/reports/audit?action=review.probe&format=csv&"
    june = client.get(csv_of + "date_from=2026-06-30&date_to=2026-06-30").get_data(as_text=True)
    july = client.get(csv_of + "date_from=2026-07-01").get_data(as_text=True)
    assert (june.count(",review.probe,"), july.count(",review.probe,")) == (73, 0)
