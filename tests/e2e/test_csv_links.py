"""The CSV and export links in Chromium (one macro, ``file_link``): the admin pages', and a
provider's TDS by quarter.

Review findings (browser walk):

* The report pages' "Download CSV" (TDS, GST, audit: ``admin/reports/_filters.html``'s
  ``csv_link``) and the audit viewer's were boosted by htmx (``<body hx-boost="true">``):
  the click fetched the CSV with ``HX-Request`` and swapped its text into the page, no file.
  So were the exports' own download links.
* The transactions console's and the reconciliation screen's links had ``hx-boost="false"``
  but also ``download``: when the export is big enough to run in the background
  (``EXPORT_BACKGROUND_ROWS``), the answer is a redirect to the export's progress page, and
  the browser saved that HTML page as a file ("3.html") instead of showing it; the admin
  stayed on the console, the flash that says where the file will be lost in the saved page."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal.db import utcnow
from portal.extensions import db
from portal.transactions import models as mm
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

CONSOLE = ("/admin/transactions", "text=Download these movements as CSV")
CASES = ("/admin/reconciliation", "text=Download these cases as CSV")
RUNS = ("/admin/reconciliation", "text=Download the runs as CSV")


@pytest.fixture
def admin(make_user):
    return make_user("admin", email="finance-review@example.com")


@pytest.fixture
def movements(app, admin):
    now = utcnow()
    with app.app_context():
        for i in range(1, 4):
            db.session.add(
                mm.MoneyMovement(
                    source="review", source_id=i, type=mm.PAYMENT_ONLINE, status="SUCCESSFUL",
                    failed=False, bucket=mm.BUCKET_IN, occurred_at=now - timedelta(hours=i),
                    amount=100_00, net=100_00, reference=f"pay_REV{i}",
                )
            )  # fmt: skip
        db.session.commit()
    return admin


def _downloads(page):
    saved = []
    page.on("download", lambda d: saved.append(d.suggested_filename))
    return saved


@pytest.mark.parametrize(
    "path, link",
    [
        ("/admin/reports/tds", "text=Download CSV"),
        ("/admin/reports/gst", "text=Download CSV"),
        ("/admin/reports/audit", "text=Download CSV"),
        ("/admin/audit", "#audit-csv"),
        CONSOLE,
        CASES,
        RUNS,
    ],
)
def test_a_download_csv_link_gives_a_file_and_leaves_the_page_as_it_was(page, admin, path, link):
    sign_in(page, admin.email, PASSWORD)
    page.goto(path)
    heading = page.locator("h1").inner_text()
    # Not 5 s: the console's CSV once took 4.8 s to answer on a loaded 2-core machine.
    with page.expect_download(timeout=15_000) as download:
        page.click(link)
    assert download.value.suggested_filename.endswith(".csv")
    expect(page.locator("h1")).to_have_text(heading)  # not the CSV's text swapped in


@pytest.mark.parametrize("path, link", [CONSOLE, CASES, RUNS])
def test_a_background_export_shows_its_progress_page_not_a_saved_html_file(
    page, app, movements, monkeypatch, path, link
):
    # Any number of rows (none at all on the reconciliation screen) runs in the background.
    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", -1)
    saved = _downloads(page)
    sign_in(page, movements.email, PASSWORD)
    page.goto(path)
    page.click(link)
    expect(page).to_have_url(re.compile(r"/admin/exports/\d+$"))
    expect(page.locator("#flashes")).to_contain_text("runs in the background")
    assert saved == [], f"the browser saved {saved} instead of showing the export's page"


def test_an_exports_download_links_give_the_file(page, app, movements, monkeypatch):
    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", 1)  # 3 rows: a background export
    sign_in(page, movements.email, PASSWORD)
    page.goto("/admin/transactions.csv")  # answered with the export's progress page
    expect(page).to_have_url(re.compile(r"/admin/exports/\d+$"))
    # Jobs run inline in the tests: the file is written by the time the page shows.
    with page.expect_download(timeout=15_000) as download:
        page.click("#export-status a:has-text('Download')")
    assert download.value.suggested_filename.startswith("transactions-")
    assert download.value.suggested_filename.endswith(".csv")
    expect(page.locator("#export-status")).to_be_visible()

    page.goto("/admin/exports")
    with page.expect_download(timeout=15_000) as download:
        page.click("table a:text-is('download')")
    assert download.value.suggested_filename.endswith(".csv")
    expect(page.locator("h1")).to_have_text("My exports")


def test_the_audit_viewers_csv_link_follows_a_filter_made_in_place(page, admin):
    """The viewer filters in place (htmx swaps the results): its CSV link was in the form,
    outside what is swapped, and kept giving the unfiltered log."""
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/audit")
    page.fill("input[name=object_id]", "42")
    page.click("#audit-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"object_id=42"))
    expect(page.locator("#audit-csv")).to_have_attribute("href", re.compile(r"object_id=42"))


def test_a_providers_tds_by_quarter_csv_link_gives_their_file(page, app, make_user):
    """The doctor's and the lab's one download (``file_link`` too): from the earnings page's
    TDS card to "TDS by quarter", whose Download CSV saves their file and leaves the page."""
    from portal.catalog.models import Provider

    user = make_user("provider", email="tds-review@example.com", name="Dr Review")
    with app.app_context():
        db.session.add(
            Provider(
                user_id=user.id,
                display_name="Dr Review",
                commission_bps=0,
                payout_schedule="WEEKLY",
            )
        )
        db.session.commit()
    sign_in(page, user.email, PASSWORD)
    page.goto("/provider/earnings")
    page.click("#tds a:has-text('TDS by quarter')")
    expect(page.locator("h1")).to_have_text("TDS by quarter")
    expect(page.locator("#tds-q2")).to_contain_text("₹0.00")  # a nil quarter shows
    with page.expect_download(timeout=15_000) as download:
        page.click("#tds-csv")
    assert re.fullmatch(r"tds-\d{4}-\d\d-\d{8}-\d{6}\.csv", download.value.suggested_filename)
    expect(page.locator("h1")).to_have_text("TDS by quarter")  # not the CSV swapped in
