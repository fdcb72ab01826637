"""An invoice priced under two GST rates (an item added to an open visit after a rate
change) is two rows of the report, one per rate, but one document: once on its GSTIN's
line and in the month's Total, once under each rate (review finding: counted twice)."""

from portal.booking import checkout, lookup, visits
from portal.extensions import db
from portal.reports import gst
from tests.booking.factories import at, quoted_checkout
from tests.policies.test_policy_receipts import change_gst


def test_an_invoice_with_lines_at_two_rates_counts_as_one_document(world, users, gateway, admins):
    admin_ids = [a.id for a in admins]
    patient = users(world.patients[0])
    first = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(4, 10),
    )
    visit_id = first.master_id
    change_gst(admin_ids, 1_200)  # maker-checker rate change, 18% -> 12%
    patient = users(world.patients[0])
    visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.peel,
        provider_ids=[world.derm],
        clinic_id=world.clinic,
        start_at=at(4, 12),
        visit_id=visit_id,
    )
    result = quoted_checkout(patient, visit_id, 0, callback_url="http://portal.test/cb")
    checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
    gateway.deliver()
    db.session.expire_all()
    assert lookup.get_visit(visit_id).status == "CONFIRMED"

    report = gst.report(gst.parse({"month": "2026-06"}))
    assert sorted(r.gst_bps for r, _ in report.documents) == [1_200, 1_800]
    assert len({r.doc_no for r, _ in report.documents}) == 1  # one tax invoice issued
    (line,) = report.by_gstin
    assert line.documents == 1
    assert [r.documents for r in line.by_rate] == [1, 1]
    assert report.total.documents == 1
