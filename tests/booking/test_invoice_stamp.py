"""The GST stamp on a visit of several items: the clinics' GSTINs are read as plain values
(one statement), so the items' UPDATEs still go as one batch. A GSTIN assigned as a SQL
expression (one version of the stamp) made the ORM write each item on its own: N UPDATEs
on the checkout's return where there had been one. And the names an invoice was issued to
stay on it when the people are renamed."""

import sqlalchemy as sa

from portal.accounts import dependents
from portal.accounts.models import User
from portal.booking import checkout, invoices, lookup, receipts, visits
from portal.extensions import db
from tests.booking.factories import at, quoted_checkout
from tests.refunds.helpers import block, book_and_pay, login, with_known_passwords


def _statements_of_return(world, users, gateway, n_items, hour0):
    patient = users(world.patients[0])
    first = None
    doctors = [world.doctors[0], world.doctors[1]]
    for k in range(n_items):
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[doctors[k % 2]],
            clinic_id=world.clinic,
            start_at=at(1, hour0 + k),
            visit_id=first.master_id if first else None,
        )
        first = first or item
    result = quoted_checkout(patient, first.master_id, 0, callback_url="http://portal.test/cb")
    params = gateway.pay(result.payment.razorpay_order_id)
    db.session.expire_all()
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE BOOKINGS"):
            seen.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        checkout.complete_checkout_callback(params)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_three_item_visits_return_updates_its_items_in_one_statement(
    world, users, gateway, monkeypatch
):
    with_stamp = _statements_of_return(world, users, gateway, 3, 10)
    monkeypatch.setattr(invoices, "issue_lines", lambda items: None)
    without = _statements_of_return(world, users, gateway, 3, 14)
    assert with_stamp == without, (with_stamp, without)


def test_an_issued_invoice_keeps_the_names_it_was_billed_to(world, users, gateway):
    """A child's visit is invoiced to the guardian, for "Little One"; the guardian then
    renames the child (and the account holder's name changes): the issued invoice keeps
    both names (review finding), a visit invoiced after the rename carries the new ones."""
    patient = users(world.patients[0])
    holder_then = patient.name
    issued = book_and_pay(
        world,
        patient,
        gateway,
        [(world.consult, [world.doctors[0]], at(3, 10))],
        dependent_id=world.child,
    )
    dependents.update_dependent(patient, world.child, "Aarav Sharma", "child", None)
    db.session.get(User, patient.id).name = "Priya S. Verma"
    db.session.commit()
    db.session.expire_all()

    kept = receipts.receipt(lookup.get_visit(issued.id))
    assert (kept.patient_name, kept.for_name) == (holder_then, "Little One")
    later = book_and_pay(
        world,
        users(world.patients[0]),
        gateway,
        [(world.consult, [world.doctors[0]], at(4, 10))],
        dependent_id=world.child,
    )
    fresh = receipts.receipt(later)
    assert (fresh.patient_name, fresh.for_name) == ("Priya S. Verma", "Aarav Sharma")


def test_an_issued_invoice_keeps_its_clinics_name_and_its_lines_description(
    app, client, world, users, gateway
):
    """docs/reports.md: the receipt reads the values stored at issue, never the clinic's
    row of today. It printed the clinic's name, the service's and the provider's of today
    beside the GSTIN stored at issue (review finding): renamed, an issued invoice changed.
    Now the line keeps them (``invoices.issue_lines``); a visit invoiced after carries the
    new names."""
    from portal.catalog.clinics import update_clinic
    from portal.catalog.models import Clinic, Provider, Service

    patient = users(world.patients[0])
    issued = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(3, 10))])
    then = receipts.receipt(lookup.get_visit(issued.id)).lines[0]
    clinic = db.session.get(Clinic, world.clinic)
    update_clinic(users(world.admin), clinic, base_version=clinic.version, name="Renamed Care LLP")
    db.session.get(Service, world.consult).name = "Consultation (renamed)"
    db.session.get(Provider, world.doctors[0]).display_name = "Dr Renamed"
    db.session.commit()
    db.session.expire_all()

    kept = receipts.receipt(lookup.get_visit(issued.id)).lines[0]
    assert (kept.clinic_name, kept.description) == (then.clinic_name, then.description)
    assert "renamed" not in (kept.clinic_name + kept.description).lower()
    with_known_passwords()
    login(client, patient.email)
    html = client.get(f"/me/visits/{issued.id}/receipt").get_data(as_text=True)
    line = block(html, f"receipt-line-{kept.item_id}")
    assert then.clinic_name in line and then.description in line and "Renamed" not in line

    later = book_and_pay(
        world, users(world.patients[0]), gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
    )
    fresh = receipts.receipt(later).lines[0]
    assert fresh.clinic_name == "Renamed Care LLP"
    assert fresh.description == "Consultation (renamed) — Dr Renamed"
