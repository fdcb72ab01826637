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
