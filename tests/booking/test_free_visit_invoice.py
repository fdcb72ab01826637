"""A free visit's (100 % coupon) tax invoice keeps every line it was issued with: a line
cancelled later stays, as its credit note and the GST report's invoice row have it."""

from portal.booking import coupons, lookup, receipts, visits
from portal.extensions import db
from tests.booking.factories import at, quoted_checkout
from tests.refunds.helpers import quoted_cancel


def _visit(world, patient, slots):
    first = None
    for service, providers, start in slots:
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=service,
            provider_ids=providers,
            clinic_id=world.clinic,
            start_at=start,
            visit_id=first.master_id if first else None,
        )
        first = first or item
    return first.master_id


def test_a_free_visits_invoice_keeps_its_cancelled_line(world, users, clock):
    """A 100 % coupon: the visit is confirmed at once, GST charged on each line (decision).
    One item cancelled later: the tax invoice issued still has both lines and the same GST
    as the GST report's invoice row."""
    patient, admin = users(world.patients[0]), users(world.admin)
    coupons.create_coupon(admin, code="FREE", kind="PERCENT", value=10_000)
    visit_id = _visit(
        world,
        patient,
        [
            (world.consult, [world.doctors[0]], at(4, 10)),
            (world.lab, [world.lab_provider], at(4, 11)),
        ],
    )
    visits.apply_coupon(patient, visit_id, "FREE")
    quoted_checkout(patient, visit_id, 0, "http://portal.test/cb")
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED"
    before = receipts.receipt(visit)
    assert len(before.lines) == 2 and before.gst == 450 + 300
    quoted_cancel(patient, visit_id, [visit.items[1].id])
    db.session.expire_all()
    after = receipts.receipt(lookup.get_visit(visit_id))
    assert [line.item_id for line in after.lines] == [line.item_id for line in before.lines]
    assert after.gst == before.gst and after.subtotal == before.subtotal
    from portal.reports import gst

    invoice_rows = [
        r
        for r, _ in gst.report(gst.parse({"month": "2026-06"})).documents
        if r.doc_type == "INVOICE"
    ]
    assert sum(r.gst for r in invoice_rows) == after.gst
