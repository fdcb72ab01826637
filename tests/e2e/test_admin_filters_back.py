"""Back to a filtered list shows the filter it lists by.

Review finding: /admin/visits, Status = Completed (the rows swapped in by htmx), then a
visit, then Back: the rows were the completed ones but the Status select said "Any", so the
next filter change silently dropped Completed. htmx's history snapshot is the page's HTML,
and a control chosen after the page loaded had changed only its live value, not its markup.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_back_to_the_visits_list_keeps_its_filter_controls(page, make_user):
    admin = make_user("admin", email="desk@example.com")
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/visits")
    page.select_option("select[name=status]", "COMPLETED")
    expect(page).to_have_url(re.compile(r"[?&]status=COMPLETED(&|$)"))
    page.fill("input[name=q]", "V0000")
    expect(page).to_have_url(re.compile(r"[?&]q=V0000(&|$)"))
    page.wait_for_load_state("networkidle")

    page.click("#nav-money > summary")
    page.click("#nav-money a[href='/admin/transactions']")  # a boosted link, as a visit's is
    expect(page).to_have_url(re.compile(r"/admin/transactions"))
    page.wait_for_load_state("networkidle")
    page.go_back()

    expect(page).to_have_url(re.compile(r"/admin/visits\?.*status=COMPLETED"))
    expect(page.locator("select[name=status]")).to_have_value("COMPLETED")
    expect(page.locator("input[name=q]")).to_have_value("V0000")
