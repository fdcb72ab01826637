"""GST Rule 46(b): a tax invoice's (and a credit note's) serial number is consecutive,
unique within the financial year and "not exceeding sixteen characters" (letters, digits,
'-' and '/'). The portal's three series: invoices ``CP/26-27/000001``, reschedule fees
``RF/26-27/000001``, credit notes ``CN/26-27/000001`` (docs/reports.md, "Document
numbers"); issued before that, ``CP/2026-27/000001`` (17 characters) is kept as stored."""

import re
from datetime import datetime

import pytest
import sqlalchemy as sa
import time_machine

from portal.booking import credit_notes, invoices, lifecycle, series
from portal.booking import reschedule as rs
from portal.booking.credit_notes import CreditNote, CreditNoteCounter
from portal.booking.models import FeeDocumentCounter, InvoiceCounter
from portal.extensions import db
from portal.transactions import references
from tests.booking.factories import IST, credit_wallet
from tests.refunds.helpers import book_and_pay, quoted_cancel

# As docs/reports.md states it: the series' letters, the financial year's two-digit years,
# the serial (six digits, seven past 999,999).
DOCUMENTED = re.compile(r"(CP|RF|CN)/(\d{2})-(\d{2})/(\d{6,7})")
RULE_46B = re.compile(r"[A-Za-z0-9/-]{1,16}")

MARCH_30 = datetime(2026, 3, 30, 8, 0, tzinfo=IST)  # a Monday, FY 2025-26


def _conforms(number, prefix, fy):
    """``number`` is of ``prefix``'s series in financial year ``fy`` ("2026-27")."""
    assert RULE_46B.fullmatch(number), (number, len(number))
    m = DOCUMENTED.fullmatch(number)
    assert m, number
    assert m.group(1) == prefix and f"{m.group(2)}-{m.group(3)}" == fy[2:], (number, fy)


@pytest.fixture
def clock():
    with time_machine.travel(MARCH_30, tick=False) as traveller:
        yield traveller


def test_an_issued_invoice_fee_document_and_credit_note_are_at_most_16_characters(
    world, users, gateway, clock
):
    """Through the use cases: a visit paid on 30 March 2026 (FY 2025-26), its booking moved
    for a fee on 1 April (FY 2026-27), then cancelled: each document's number fits the rule
    and names the year it was issued in; each is found by the reference search."""
    patient = users(world.patients[0])
    start = datetime(2026, 4, 3, 10, 0, tzinfo=IST)
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    item_id = visit.items[0].id
    _conforms(visit.invoice_no, "CP", "2025-26")
    assert visit.invoice_no == "CP/25-26/000001"

    clock.move_to(datetime(2026, 4, 1, 9, 0, tzinfo=IST))  # 49 h ahead: a fee
    patient = users(world.patients[0])
    item, quote = rs.quote(patient, item_id)
    assert quote.total > 0
    credit_wallet(patient.id, quote.total)
    fee = rs.reschedule(
        patient,
        item_id,
        datetime(2026, 4, 3, 12, 0, tzinfo=IST),
        pay_with="wallet",
        expected_fee=quote.total,
        shown_start=item.start_at,
    ).reschedule
    _conforms(fee.document_no, "RF", "2026-27")
    assert fee.document_no == "RF/26-27/000001"

    quoted_cancel(users(world.patients[0]), visit.id, [item_id])
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert notes  # the visit's line's GST (and the fee's, if refunded) given back
    for n, note in enumerate(notes, start=1):
        _conforms(note.number, "CN", "2026-27")
        assert note.number == f"CN/26-27/{n:06d}"
        assert note.invoice_no in (visit.invoice_no, fee.document_no)  # cited as stored

    # Each as an operator pastes it (any case) finds its document.
    assert references.find(visit.invoice_no.lower()).visits.keys() == {visit.id}
    assert references.find(fee.document_no.lower()).movements == {("reschedule", fee.id)}
    assert references.find(notes[0].number.lower()).visits.keys() == {visit.id}


ISSUERS = [
    ("CP", InvoiceCounter, lifecycle.next_invoice_number),
    ("RF", FeeDocumentCounter, invoices.next_fee_document_number),
    ("CN", CreditNoteCounter, lambda at: credit_notes.next_credit_note_number(at)[1]),
]


@pytest.mark.parametrize(("prefix", "counter", "issue"), ISSUERS, ids=[p for p, *_ in ISSUERS])
def test_each_series_is_consecutive_and_starts_again_on_1_april_ist(world, prefix, counter, issue):
    """The year is India's: 31 March 23:59 IST is FY 2026-27, 1 April 00:00 IST (31 March
    18:30 UTC) FY 2027-28's first number; each year's numbers run on without a gap."""
    last_minute = datetime(2027, 3, 31, 23, 59, tzinfo=IST)
    new_year = datetime(2027, 4, 1, 0, 0, tzinfo=IST)
    numbers = [issue(last_minute), issue(last_minute), issue(new_year), issue(new_year)]
    numbers.append(issue(last_minute))
    assert numbers == [
        f"{prefix}/26-27/000001",
        f"{prefix}/26-27/000002",
        f"{prefix}/27-28/000001",
        f"{prefix}/27-28/000002",
        f"{prefix}/26-27/000003",
    ]
    for number in numbers:
        assert RULE_46B.fullmatch(number) and DOCUMENTED.fullmatch(number), number
    # The counters stay keyed by the full label, as the year's other records are.
    assert db.session.get(counter, "2026-27").last_number == 3
    assert db.session.get(counter, "2027-28").last_number == 2
    db.session.rollback()


@pytest.mark.parametrize(("prefix", "counter", "issue"), ISSUERS, ids=[p for p, *_ in ISSUERS])
def test_a_year_begun_in_the_old_form_runs_on_in_the_new_one(world, prefix, counter, issue):
    """Documents issued before the change keep their 17-character number (stored); the
    year's series goes on from the same counter, so the numbers stay consecutive and none
    repeats a serial of the year."""
    db.session.add(counter(financial_year="2026-27", last_number=41))  # up to …/2026-27/000041
    db.session.flush()
    assert issue(datetime(2026, 6, 1, 9, 0, tzinfo=IST)) == f"{prefix}/26-27/000042"
    db.session.rollback()


def test_a_serial_past_seven_digits_is_refused_not_issued_too_long():
    """Six digits, seven past 999,999 (16 characters); the 10,000,000th of a year would be
    17: refused with a clear error (its transaction rolls back) rather than issued."""
    assert series.document_number("CP", "2026-27", 1) == "CP/26-27/000001"
    assert series.document_number("CN", "2099-00", 9_999_999) == "CN/99-00/9999999"
    with pytest.raises(series.SeriesExhausted, match="CP.*2026-27"):
        series.document_number("CP", "2026-27", 10_000_000)


@pytest.mark.parametrize(
    ("typed", "kind", "text"),
    [
        ("cp/26-27/000042", "invoice", "CP/26-27/000042"),
        ("CP/2026-27/000042", "invoice", "CP/2026-27/000042"),  # issued before: kept
        ("rf/26-27/000007", "fee", "RF/26-27/000007"),
        ("RF/2026-27/000007", "fee", "RF/2026-27/000007"),
        ("cp/2026-27/000042/r12", "fee", "CP/2026-27/000042/R12"),  # a fee before its series
        ("cn/26-27/1234567", "cn", "CN/26-27/1234567"),
        ("CN/2026-27/000001", "cn", "CN/2026-27/000001"),
    ],
)
def test_the_reference_search_reads_both_forms(typed, kind, text):
    assert references.parse(typed) == references.Reference(kind, text)


@pytest.mark.parametrize("typed", ["CP/026-27/000001", "CP/26-2/000001", "CP/26/27/000001"])
def test_not_a_document_number(typed):
    assert references.parse(typed) is None
