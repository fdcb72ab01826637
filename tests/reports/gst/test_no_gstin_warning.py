"""GST collected under "no GSTIN": a clinic open without a GSTIN still invoices GST on the
platform fee (it supplies the fee), which the report files under "no GSTIN", on no GST
return (review finding). The report's page says how much above its table, with a link to
the clinics page; a month with none says nothing."""

import re
from html import unescape

from portal.catalog.clinics import update_clinic
from portal.extensions import db
from portal.reports import gst
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, login, quoted_cancel, with_known_passwords

WARNING = re.compile(r'<p class="notice warn" role="note" id="gst-no-gstin">(.*?)</p>', re.S)


def _warning(client):
    page = client.get("/admin/reports/gst?month=2026-06")
    assert page.status_code == 200
    found = WARNING.search(page.get_data(as_text=True))
    return found and re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", found.group(1))))


def test_the_report_says_how_much_gst_no_return_carries(app, client, world, users, gateway, clock):
    patient, admin = users(world.patients[0]), users(world.admin)
    book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(3, 10))])
    with_known_passwords()
    login(client, admin.email)
    assert gst.report(gst.parse({"month": "2026-06"})).collected_without_gstin == 0
    assert _warning(client) is None  # every document carries a GSTIN

    update_clinic(admin, world.clinic, gstin=None)
    db.session.commit()
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[1]], at(4, 10))])
    book_and_pay(world, patient, gateway, [(world.peel, [world.derm], at(4, 12))])
    report = gst.report(gst.parse({"month": "2026-06"}))
    # ₹4.50 on the consultation's platform fee, ₹226.80 on the taxable peel's fee and
    # platform fee (18% of ₹1,260).
    assert report.collected_without_gstin == 450 + 22_680
    said = _warning(client)
    assert said.startswith("₹231.30 of GST was collected in June 2026 under “no GSTIN”")
    assert "no GST return carries it" in said and "Indiranagar Clinic" in said
    page = client.get("/admin/reports/gst?month=2026-06").get_data(as_text=True)
    assert 'href="/admin/clinics"' in WARNING.search(page).group(1)

    # A credit note given back under "no GSTIN" is not tax collected: the amount stays.
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    assert gst.report(gst.parse({"month": "2026-06"})).collected_without_gstin == 23_130
    # Another month with none, and a clinic filter with none, say nothing.
    assert gst.report(gst.parse({"month": "2026-07"})).collected_without_gstin == 0
    other = gst.parse({"month": "2026-06", "clinic_id": str(world.other_clinic)})
    assert gst.report(other).collected_without_gstin == 0
