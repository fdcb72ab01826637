"""A reschedule fee's tax document has a number series of its own, per financial year of
its issue (GST Rule 46(b): consecutive and unique within the year): ``RF/26-27/000001``
(docs/reports.md)."""

from datetime import datetime

import pytest
import sqlalchemy as sa
import time_machine

from portal.booking import reschedule as rs
from portal.booking.models import FeeDocumentCounter, Reschedule
from portal.extensions import db
from portal.reports import gst
from portal.transactions import references
from tests.booking.factories import IST, credit_wallet
from tests.refunds.helpers import book_and_pay

MARCH_30 = datetime(2026, 3, 30, 8, 0, tzinfo=IST)  # a Monday, FY 2025-26


@pytest.fixture
def clock():
    with time_machine.travel(MARCH_30, tick=False) as traveller:
        yield traveller


def test_a_reschedule_fee_invoiced_in_a_new_financial_year_is_numbered_in_that_year(
    world, users, gateway, clock
):
    """A visit invoiced on 30 March 2026 (FY 2025-26); its booking on Friday 3 April is
    moved on 1 April (FY 2026-27) for a fee. The fee's tax invoice is a document issued in
    FY 2026-27: it was numbered its visit's invoice number + /R<id>, "CP/2025-26/…/R1" then."""
    patient = users(world.patients[0])
    start = datetime(2026, 4, 3, 10, 0, tzinfo=IST)
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    assert visit.invoice_no == "CP/25-26/000001"
    item = visit.items[0]
    clock.move_to(datetime(2026, 4, 1, 9, 0, tzinfo=IST))  # 49 h ahead: the 10 % tier
    patient = users(world.patients[0])
    _, quote = rs.quote(patient, item.id)
    assert quote.total > 0
    credit_wallet(patient.id, quote.total)
    row = rs.reschedule(
        patient,
        item.id,
        datetime(2026, 4, 3, 12, 0, tzinfo=IST),
        pay_with="wallet",
        expected_fee=quote.total,
        shown_start=item.start_at,
    ).reschedule
    [fee_row] = [
        r
        for r, _ in gst.report(gst.parse({"month": "2026-04"})).documents
        if r.doc_type == gst.RESCHEDULE_FEE
    ]
    assert fee_row.doc_no == row.document_no
    assert fee_row.invoice_no == visit.invoice_no  # the invoice it is against, beside it
    # Issued in April 2026: it belongs to FY 2026-27's series.
    assert "/26-27/" in fee_row.doc_no, fee_row.doc_no

    assert fee_row.doc_no == "RF/26-27/000001"


def _move(patient_id, users, item_id, hour, **kwargs):
    """Move the booking to 3 April ``hour``:00, paying any fee from the wallet."""
    patient = users(patient_id)
    item, quote = rs.quote(patient, item_id)
    if quote.total:
        credit_wallet(patient.id, quote.total)
    return rs.reschedule(
        patient,
        item_id,
        datetime(2026, 4, 3, hour, 0, tzinfo=IST),
        pay_with="wallet" if quote.total else None,
        expected_fee=quote.total,
        shown_start=item.start_at,
        **kwargs,
    ).reschedule


def test_fee_documents_are_numbered_consecutively_whatever_moves_come_between(
    world, users, gateway, clock, monkeypatch
):
    """A free move (no document), a fee whose charge is rolled back (its number given
    back with it), then two fees: RF/26-27/000001 and 000002, no gap, though the
    reschedules' ids run 1, 3, 4 (or 1, 2, 3: a rolled-back id is the database's)."""
    patient = users(world.patients[0])
    start = datetime(2026, 4, 3, 10, 0, tzinfo=IST)
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    item_id = visit.items[0].id
    free = _move(world.patients[0], users, item_id, 11)  # 99 h ahead: no fee
    assert free.total == 0 and free.document_no is None
    clock.move_to(datetime(2026, 4, 1, 9, 0, tzinfo=IST))  # 50 h ahead: a fee

    taken = []

    def fails(*args, **kwargs):  # after the document is issued, in its transaction
        taken.append(db.session.scalar(sa.select(FeeDocumentCounter.last_number)))
        raise RuntimeError("the move fails after its fee")

    with monkeypatch.context() as patched:
        # The number is taken last, after the fee's posting (the lock order): the move
        # fails in the step after it.
        patched.setattr(rs, "after_move", fails)
        with pytest.raises(RuntimeError):
            _move(world.patients[0], users, item_id, 12)
    assert taken == [1]  # the number was taken, then given back with the rest
    db.session.rollback()
    first = _move(world.patients[0], users, item_id, 12)
    second = _move(world.patients[0], users, item_id, 13)
    db.session.expire_all()
    numbers = db.session.scalars(
        sa.select(Reschedule.document_no)
        .where(Reschedule.document_no.is_not(None))
        .order_by(Reschedule.id)
    ).all()
    assert numbers == ["RF/26-27/000001", "RF/26-27/000002"]
    assert [first.document_no, second.document_no] == numbers
    assert db.session.get(FeeDocumentCounter, "2026-27").last_number == 2
    # The number the operator pastes finds its fee (the unique column, as typed).
    assert references.find("rf/26-27/000002").movements == {("reschedule", second.id)}
