"""A reschedule fee is a tax invoice of its own (``RF/…``): it prints what was true when it
was issued, as an invoice line does (``invoices.issue_lines``, tests/booking/
test_invoice_stamp.py). It printed the clinic's and the service's name of today beside the
GSTIN stored at issue (review finding): rename the clinic or the service after the move
and the fee's old document, its GST report row and its row in the data download changed.
Now the fee keeps its clinic's name and its description (service — providers) from when
its number was taken, and the credit note reversing it names what the fee names."""

import json

import sqlalchemy as sa

from portal.booking.credit_notes import CreditNote
from portal.booking.models import Reschedule
from portal.catalog.clinics import update_clinic
from portal.catalog.models import Clinic, Provider, Service
from portal.exports import build
from portal.extensions import db
from portal.reports import gst
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    block,
    booked_consult,
    hours,
    login,
    post_move,
    quoted_admin_cancel,
)

START, NEW, LATER = at(4, 10), at(7, 11), at(8, 11)
CLINIC_THEN, DESCRIPTION_THEN = "Indiranagar Clinic", "Consultation — Dr Doc 1"
CLINIC_NOW, DESCRIPTION_NOW = "Renamed Care LLP", "Consultation (renamed) — Dr Renamed"


def _wallet_move(client, item_id, new):
    moved = post_move(
        client,
        f"/me/bookings/{item_id}/reschedule",
        {"slot": new.isoformat(), "pay_with": "wallet"},
    )
    assert moved.status_code == 303


def _rename(world, users):
    """The clinic, the service and the doctor renamed, as the catalog's screens do it."""
    clinic = db.session.get(Clinic, world.clinic)
    update_clinic(users(world.admin), clinic, base_version=clinic.version, name=CLINIC_NOW)
    db.session.get(Service, world.consult).name = "Consultation (renamed)"
    db.session.get(Provider, world.doctors[0]).display_name = "Dr Renamed"
    db.session.commit()
    db.session.expire_all()


def _gst_rows(doc_type):
    """{document number: clinic} of the month's GST report rows of one kind, and the same
    read from its CSV file (the background export's and the download's one select)."""
    report = gst.report(gst.parse({"month": "2026-06"}))
    rows = {r.doc_no: r.clinic_name for r, _t in report.documents if r.doc_type == doc_type}
    body = "".join(build("gst", {"month": "2026-06"}).iter_csv())
    return rows, body


def _fee_documents(client, visit_id, fee_id):
    """The fee's document on the receipt and its line on the visit page."""
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    return block(receipt, f"fee-document-{fee_id}", "section"), block(page, f"fee-{fee_id}")


def test_a_fee_document_keeps_the_clinic_and_service_names_it_was_issued_with(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    admin_email = users(world.admin).email
    credit_wallet(world.patients[0], 20_000)
    login(client, email)
    clock.move_to(START - hours(60))
    _wallet_move(client, item_id, NEW)
    fee = db.session.scalars(sa.select(Reschedule)).one()
    issued = _fee_documents(client, visit_id, fee.id)

    _rename(world, users)

    document, line = _fee_documents(client, visit_id, fee.id)
    assert (document, line) == issued  # as it was printed when issued, to the letter
    assert fee.document_no in document
    assert CLINIC_THEN in document and DESCRIPTION_THEN in document
    assert DESCRIPTION_THEN in line
    for shown in (document, line):
        assert "renamed" not in shown.lower()
    (row,) = json.loads(client.get("/me/account/data.json").get_data(as_text=True))[
        "reschedule_fees"
    ]
    assert (row["document_number"], row["service"]) == (fee.document_no, DESCRIPTION_THEN)
    rows, body = _gst_rows(gst.RESCHEDULE_FEE)
    assert rows == {fee.document_no: CLINIC_THEN}
    (csv_line,) = [r for r in body.splitlines() if fee.document_no in r and "RESCHEDULE" in r]
    assert CLINIC_THEN in csv_line and CLINIC_NOW not in csv_line
    login(client, admin_email)
    admin_row = block(
        client.get(f"/admin/visits/{visit_id}").get_data(as_text=True), f"fee-{fee.id}"
    )
    assert DESCRIPTION_THEN in admin_row and "renamed" not in admin_row.lower()

    # A fee issued after the rename carries the new names; the first keeps its own.
    login(client, email)
    clock.move_to(NEW - hours(60))
    _wallet_move(client, item_id, LATER)
    later = db.session.scalars(sa.select(Reschedule).where(Reschedule.id != fee.id)).one()
    document, line = _fee_documents(client, visit_id, later.id)
    assert CLINIC_NOW in document and DESCRIPTION_NOW in document and DESCRIPTION_NOW in line
    rows, _body = _gst_rows(gst.RESCHEDULE_FEE)
    assert rows == {fee.document_no: CLINIC_THEN, later.document_no: CLINIC_NOW}


def test_a_refunded_fees_credit_note_names_what_the_fee_document_names(
    app, client, world, users, gateway, clock
):
    """The note reversing a fee cites its RF/ document and is issued under its GSTIN as
    issued: where it names a clinic or a service (the GST report, the data download), it
    names the fee's, as issued; the visit's own note names its line's, as issued."""
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    credit_wallet(world.patients[0], 10_000)
    login(client, email)
    clock.move_to(START - hours(60))
    _wallet_move(client, item_id, NEW)
    fee = db.session.scalars(sa.select(Reschedule)).one()
    quoted_admin_cancel(
        users(world.admin), item_id, "Clinic closed for a fumigation", mode="clinic"
    )
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert {n.reschedule_id for n in notes} == {None, fee.id}

    _rename(world, users)

    rows, body = _gst_rows(gst.CREDIT_NOTE)
    assert rows == {n.number: CLINIC_THEN for n in notes}
    for note in notes:
        (csv_line,) = [r for r in body.splitlines() if note.number in r]
        assert CLINIC_THEN in csv_line and CLINIC_NOW not in csv_line
    invoices, _body = _gst_rows(gst.INVOICE)
    assert set(invoices.values()) == {CLINIC_THEN}
    (visit,) = json.loads(client.get("/me/account/data.json").get_data(as_text=True))["visits"]
    assert {n["number"]: n["service"] for n in visit["credit_notes"]} == {
        n.number: DESCRIPTION_THEN for n in notes
    }
