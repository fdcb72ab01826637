"""GST credit notes and the GST report, seeded through the real use cases: a month of
paid visits (exempt care and a taxable cosmetic service), a full and a partial patient
cancellation, an admin cancellation with a lower override, gateway refunds settled. Every
total of the report equals the ledger's ``gst_payable`` movements to the paisa."""

import csv
import io

import sqlalchemy as sa

from portal.booking.credit_notes import CreditNote
from portal.booking.models import IndividualBooking
from portal.exports import build
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import balance
from portal.reports import gst
from portal.reports.periods import month_bounds, parse_month
from tests.booking.factories import GSTIN, at
from tests.refunds.helpers import (
    block,
    book_and_pay,
    consult_and_lab,
    hours,
    login,
    quoted_admin_cancel,
    quoted_cancel,
    settle_refunds,
    with_known_passwords,
)


def _gst_moves(month):
    """(credits, debits) on gst_payable posted in the month, clinic time."""
    low, high = month_bounds(parse_month(month))
    amounts = db.session.scalars(
        sa.select(LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerAccount.code == chart.GST_PAYABLE,
            LedgerTransaction.created_at >= low,
            LedgerTransaction.created_at < high,
        )
    ).all()
    return -sum(a for a in amounts if a < 0), sum(a for a in amounts if a > 0)


def _paise(text):
    sign = -1 if text.startswith("-") else 1
    whole, part = text.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(part))


def _seed_month(world, users, gateway, clock):
    p1, p2 = users(world.patients[0]), users(world.patients[1])
    v1 = book_and_pay(
        world,
        p1,
        gateway,
        consult_and_lab(world),
    )
    v2 = book_and_pay(world, p2, gateway, [(world.peel, [world.derm], at(4, 12))])
    v3 = book_and_pay(world, p1, gateway, [(world.consult, [world.doctors[1]], at(2, 10))])
    clock.move_to(at(2, 10) - hours(30))  # 2 June 04:00 IST
    lab_item = next(i for i in v1.items if i.service_id == world.lab)
    quoted_cancel(p1, v1.id, [lab_item.id])  # 100 %
    quoted_cancel(p1, v3.id, [v3.items[0].id])  # 75 % − ₹100
    admin = users(world.admin)
    quoted_admin_cancel(admin, v2.items[0].id, "Goodwill, partial refund agreed", override=50_000)
    settle_refunds(gateway)
    return v1, v2, v3


def test_credit_notes_and_gst_report_equal_the_ledger(world, users, gateway, clock):
    v1, v2, v3 = _seed_month(world, users, gateway, clock)

    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [n.number for n in notes] == [f"CN/26-27/00000{i}" for i in (1, 2, 3)]
    for note in notes:
        txn = db.session.get(LedgerTransaction, note.ledger_transaction_id)
        debit = sum(e.amount for e in txn.entries if e.account.code == chart.GST_PAYABLE)
        assert note.gst == debit > 0
        assert note.cgst + note.sgst == note.gst and note.igst == 0
        assert note.clinic_gstin == GSTIN and note.issued_at == txn.created_at
    for note in notes:  # each note takes back exactly the refund it records
        assert note.taxable_value + note.exempt_value + note.gst == _refund_of(note)
    lab_note, v3_note, peel_note = notes
    lab = db.session.get(IndividualBooking, lab_note.booking_id)
    assert (lab_note.gst, lab_note.taxable_value, lab_note.exempt_value) == (
        lab.gst,
        lab.taxable,
        lab.fee,
    )  # a full refund reverses all of it
    assert 0 < v3_note.gst < v3.items[0].gst  # GST on the kept charge stays payable
    peel = v2.items[0]
    assert peel.fee_taxed and peel_note.exempt_value == 0
    assert 0 < peel_note.taxable_value < peel.taxable
    # Invoices are never edited: the visit keeps its invoice number and lines.
    assert {n.invoice_no for n in notes} == {v1.invoice_no, v2.invoice_no, v3.invoice_no}

    collected, reversed_ = _gst_moves("2026-06")
    report = gst.report(gst.parse({"month": "2026-06"}))
    assert (report.collected, report.reversed) == (collected, reversed_)
    assert report.reversed == sum(n.gst for n in notes)
    assert report.net == balance(chart.GST_PAYABLE)  # the whole ledger is this month
    items = db.session.scalars(sa.select(IndividualBooking)).all()
    assert report.collected == sum(i.gst for i in items)
    [line] = report.by_gstin
    assert line.gstin == GSTIN and line.documents == 3 + 3
    assert line.cgst + line.sgst + line.igst == line.net and line.igst == 0
    assert line.taxable == sum(i.taxable for i in items) - sum(n.taxable_value for n in notes)
    exempt = sum(i.fee for i in items if not i.fee_taxed)
    assert line.exempt == exempt - sum(n.exempt_value for n in notes)

    # The CSV: the same figures, per document, filters named in the header.
    body = "".join(build("gst", {"month": "2026-06"}).iter_csv()).lstrip("\ufeff")
    parsed = list(csv.reader(io.StringIO(body)))
    assert parsed[1] == ["Filters: Month: 2026-06; Clinic: all"]
    header, rows = parsed[5], parsed[6:]
    rows = rows[: rows.index([])]  # the documents; the totals follow an empty line
    col = {name: i for i, name in enumerate(header)}
    assert len(rows) == 6
    tax = [_paise(r[col["Total tax"]]) for r in rows]
    assert sum(t for t in tax if t > 0) == collected and -sum(t for t in tax if t < 0) == reversed_
    for r in rows:
        parts = sum(_paise(r[col[c]]) for c in ("CGST", "SGST", "IGST"))
        assert parts == _paise(r[col["Total tax"]])
    assert sorted(r[col["Document"]] for r in rows) == ["CREDIT_NOTE"] * 3 + ["INVOICE"] * 3

    # Another month has nothing; a clinic filter keeps only that clinic's documents.
    assert gst.report(gst.parse({"month": "2026-07"})).by_gstin == []
    other = gst.report(gst.parse({"month": "2026-06", "clinic_id": str(world.other_clinic)}))
    assert other.by_gstin == []


def test_a_month_is_a_clinic_month(world, users, gateway, clock):
    """An invoice issued at 23:59:30 IST on 30 June (18:29:30 UTC) is June's, one issued at
    00:00 IST on 1 July (still 30 June in UTC) is July's: the month's bounds are midnight
    in clinic time."""
    from datetime import date, timedelta

    clock.move_to(at(date(2026, 6, 30), 23, 59) + timedelta(seconds=30))
    june = book_and_pay(
        world, users(world.patients[0]), gateway, [(world.consult, [world.doctors[0]], at(32, 10))]
    )
    clock.move_to(at(date(2026, 7, 1), 0, 0))
    july = book_and_pay(
        world, users(world.patients[0]), gateway, [(world.consult, [world.doctors[0]], at(32, 11))]
    )
    for month, visit in (("2026-06", june), ("2026-07", july)):
        report = gst.report(gst.parse({"month": month}))
        assert [row.doc_no for row, _ in report.documents] == [visit.invoice_no], month


def test_receipt_lists_the_credit_note(app, client, world, users, gateway, clock):
    p1 = users(world.patients[0])
    visit = book_and_pay(world, p1, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    quoted_cancel(p1, visit.id, [visit.items[0].id])
    settle_refunds(gateway)
    note = db.session.scalars(sa.select(CreditNote)).one()
    email = p1.email
    with_known_passwords()
    login(client, email)
    page = client.get(f"/me/visits/{visit.id}/receipt")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert note.number in html and visit.invoice_no in html and "Credit notes" in html


def _rupees(paise):
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def test_the_receipt_states_the_cgst_and_sgst_of_each_line_its_total_and_each_note(
    app, client, world, users, gateway, clock
):
    """A tax invoice (Rule 46) states the central and state tax. The lines store their
    split (``bookings.cgst``/``sgst``) and the fee document printed it, but the visit's
    invoice printed one undivided GST per line and in its total, and its credit notes only
    "GST reversed" (review finding). In Hindi as in English."""
    p1 = users(world.patients[0])
    visit = book_and_pay(world, p1, gateway, consult_and_lab(world))
    lab = next(i for i in visit.items if i.service_id == world.lab)
    quoted_cancel(p1, visit.id, [lab.id])
    settle_refunds(gateway)
    note = db.session.scalars(sa.select(CreditNote)).one()
    items = [(i.id, i.cgst, i.sgst) for i in visit.items]
    assert all(c and s for _id, c, s in items)
    with_known_passwords()
    login(client, p1.email)
    for language in ("en", "hi"):
        client.post("/language", data={"language": language, "next": "/me/visits"})
        html = client.get(f"/me/visits/{visit.id}/receipt").get_data(as_text=True)
        for item_id, cgst, sgst in items:
            line = block(html, f"receipt-line-{item_id}")
            assert f"CGST {_rupees(cgst)}" in line and f"SGST {_rupees(sgst)}" in line
        cgst, sgst = sum(i[1] for i in items), sum(i[2] for i in items)
        assert f">{_rupees(cgst)}<" in block(html, "receipt-cgst")
        assert f">{_rupees(sgst)}<" in block(html, "receipt-sgst")
        assert 'id="receipt-igst"' not in html
        row = block(html, f"credit-note-{note.id}")
        assert f"CGST {_rupees(note.cgst)}" in row and f"SGST {_rupees(note.sgst)}" in row


def test_gst_page_and_bad_filters(app, client, world, users, gateway, clock):
    _seed_month(world, users, gateway, clock)
    with_known_passwords()
    login(client, users(world.admin).email)
    page = client.get("/admin/reports/gst?month=2026-06")
    assert page.status_code == 200 and GSTIN in page.get_data(as_text=True)
    for query, message in [
        ("month=2026-13", "Enter the month as YYYY-MM"),
        ("month=June", "Enter the month as YYYY-MM"),
        ("month=2026-06&clinic_id=abc", "Choose a clinic from the list"),
        ("month=2026-06&clinic_id=999999", "Choose a clinic from the list"),
    ]:
        r = client.get(f"/admin/reports/gst?{query}")
        assert r.status_code == 422 and message in r.get_data(as_text=True), query
        r = client.get(f"/admin/reports/gst?{query}&format=csv")
        assert r.status_code == 422 and r.mimetype == "text/html", query
    csv_answer = client.get("/admin/reports/gst?month=2026-06&format=csv")
    assert csv_answer.status_code == 200 and csv_answer.mimetype == "text/csv"
    assert csv_answer.get_data(as_text=True).startswith("\ufeffReport: GST")


def test_an_approved_further_refund_issues_its_own_credit_note(world, users, gateway, clock):
    from portal.accounts.models import User
    from portal.refunds import approvals

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item = visit.items[0]
    clock.move_to(at(4, 10) - hours(10))
    admin = users(world.admin)
    admin2 = User(email="admin2@example.com", name="Admin Two", role="admin", phone="+919812345678")
    db.session.add(admin2)
    db.session.commit()
    quoted_admin_cancel(admin, item.id, "Doctor was late, full refund", override=item.total)
    first = db.session.scalars(sa.select(CreditNote)).one()  # the calculated 50 % − ₹250
    assert 0 < first.gst < item.gst
    [approval] = approvals.pending_approvals()
    approvals.approve_override(admin2, approval.id, "Agreed")
    settle_refunds(gateway)
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [n.number for n in notes] == ["CN/26-27/000001", "CN/26-27/000002"]
    assert [n.reason for n in notes] == ["booking_cancelled", "refund_override"]
    assert sum(n.gst for n in notes) == item.gst  # all of the invoiced GST is reversed
    assert balance(chart.GST_PAYABLE) == 0
    report = gst.report(gst.parse({"month": "2026-06"}))
    assert (report.collected, report.reversed, report.net) == (item.gst, item.gst, 0)


def test_a_reschedule_fee_is_reported_and_its_refund_credited(world, users, gateway, clock):
    from portal.booking import reschedule as rs
    from tests.booking.factories import credit_wallet

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item = visit.items[0]
    clock.move_to(at(4, 10) - hours(60))  # the 10 % tier
    _, quote = rs.quote(patient, item.id)
    credit_wallet(patient.id, quote.total)
    rs.reschedule(
        patient,
        item.id,
        at(7, 11),
        pay_with="wallet",
        expected_fee=quote.total,
        shown_start=item.start_at,
    )
    report = gst.report(gst.parse({"month": "2026-06"}))
    kinds = sorted(row.doc_type for row, _tax in report.documents)
    assert kinds == [gst.INVOICE, gst.RESCHEDULE_FEE]
    assert report.collected == item.gst + quote.gst == _gst_moves("2026-06")[0]
    quoted_admin_cancel(
        users(world.admin), item.id, "Clinic closed for a fumigation", mode="clinic"
    )
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [(n.reason, n.gst) for n in notes] == [
        ("booking_cancelled", item.gst),
        ("reschedule_fee_refund", quote.gst),
    ]
    assert notes[1].reschedule_id is not None
    assert notes[1].taxable_value == quote.penalty + quote.platform_fee
    collected, reversed_ = _gst_moves("2026-06")
    report = gst.report(gst.parse({"month": "2026-06"}))
    assert (report.collected, report.reversed, report.net) == (collected, reversed_, 0)
    assert balance(chart.GST_PAYABLE) == 0


def test_a_gstin_edited_later_does_not_move_a_past_months_documents(world, users, gateway, clock):
    """Tax documents keep the GSTIN they were issued under: a June invoice, its reschedule
    fee and its June credit note stay filed under the old GSTIN after the clinic's GSTIN is
    corrected in July (the receipt too); documents issued after the edit use the new one."""
    from portal.booking import reschedule as rs
    from portal.booking.receipts import receipt
    from portal.catalog.clinics import update_clinic
    from portal.catalog.demo import _gstin
    from tests.booking.factories import credit_wallet

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.peel, [world.derm], at(4, 12))])
    other = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(3, 10))])
    clock.move_to(at(4, 12) - hours(60))
    _, quote = rs.quote(patient, other.items[0].id)
    credit_wallet(patient.id, quote.total)
    rs.reschedule(
        patient,
        other.items[0].id,
        at(7, 11),
        pay_with="wallet",
        expected_fee=quote.total,
        shown_start=other.items[0].start_at,
    )
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    before = gst.report(gst.parse({"month": "2026-06"}))
    assert [t.gstin for t in before.by_gstin] == [GSTIN]
    assert before.by_gstin[0].documents == 2 + 1 + 1

    corrected = _gstin("27", "AADCI4821K")
    update_clinic(users(world.admin), world.clinic, gstin=corrected)
    db.session.commit()

    after = gst.report(gst.parse({"month": "2026-06"}))
    assert [
        (t.gstin, t.documents, t.collected, t.reversed, t.cgst, t.sgst, t.igst)
        for t in after.by_gstin
    ] == [
        (t.gstin, t.documents, t.collected, t.reversed, t.cgst, t.sgst, t.igst)
        for t in before.by_gstin
    ]
    body = "".join(build("gst", {"month": "2026-06"}).iter_csv())
    assert corrected not in body
    assert {line.clinic_gstin for line in receipt(visit).lines} == {GSTIN}

    # A visit paid after the correction is invoiced under the new GSTIN.
    later = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[1]], at(8, 10))])
    assert {line.clinic_gstin for line in receipt(later).lines} == {corrected}
    now = gst.report(gst.parse({"month": "2026-06"}))
    assert sorted(t.gstin for t in now.by_gstin) == sorted([GSTIN, corrected])


def test_a_fully_reversed_invoice_leaves_no_cgst_or_sgst(world, users, gateway, clock):
    """An invoice line whose tax is all given back in two odd reversals (7,627 + 15,053
    paise of 22,680): each credit note's CGST is half of all the GST reversed so far on the
    line, less the CGST earlier notes took back, so the notes take back exactly the
    invoice's CGST and SGST and the month nets 0 in each."""
    from portal.accounts.models import ADMIN, User
    from portal.refunds import approvals

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.peel, [world.derm], at(4, 12))])
    item = visit.items[0]
    admin = users(world.admin)
    quoted_admin_cancel(admin, item.id, "Goodwill, partial refund agreed", override=50_000)
    checker = User(email="checker@example.com", name="Checker", role=ADMIN, phone=None)
    db.session.add(checker)
    db.session.commit()
    item = db.session.get(IndividualBooking, item.id)
    further = approvals.request_further_refund(
        admin, item.id, item.refundable, "The rest, after the clinic's review"
    )
    approvals.approve_override(checker, further.id)
    db.session.expire_all()

    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [n.gst for n in notes] == [7_627, 15_053]
    assert sum(n.gst for n in notes) == item.gst == 22_680
    assert sum(n.cgst for n in notes) == sum(n.sgst for n in notes) == 11_340
    report = gst.report(gst.parse({"month": "2026-06"}))
    [line] = report.by_gstin
    assert (line.collected, line.net) == (22_680, 0)
    assert (line.cgst, line.sgst, line.igst) == (0, 0, 0)
    shown = {row.doc_no: tax for row, tax in report.documents}
    assert [shown[n.number] for n in notes] == [(-n.cgst, -n.sgst, -n.igst) for n in notes]


def test_three_notes_take_back_exactly_the_lines_taxable_and_exempt_value(
    world, users, gateway, clock
):
    """A cancellation with an override, then two approved further refunds: the taxable and
    exempt values the notes take back add up to the line's own, as CGST and SGST do (each
    note rounded on its own took back 2,501 of 2,500 taxable and 49,999 of 50,000 exempt)."""
    from portal.accounts.models import ADMIN, User
    from portal.booking.credit_notes import CreditNote
    from portal.booking.models import IndividualBooking
    from portal.refunds import approvals
    from tests.refunds.helpers import book_and_pay

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item = visit.items[0]
    assert (item.fee, item.taxable, item.gst, item.paid_amount) == (50_000, 2_500, 450, 52_950)
    admin = users(world.admin)
    checker = User(email="checker@example.com", name="Checker", role=ADMIN, phone=None)
    db.session.add(checker)
    db.session.commit()
    # Cancelled for the clinic with a lower refund (keeps 2,824: GST kept 24).
    quoted_admin_cancel(
        admin, item.id, "Partial refund agreed with the patient", mode="clinic", override=50_126
    )
    for _ in range(2):  # two further refunds of 1,412 each (GST 12 each)
        item = db.session.get(IndividualBooking, item.id)
        further = approvals.request_further_refund(
            admin, item.id, 1_412, "More back after the clinic's review"
        )
        approvals.approve_override(checker, further.id)
        db.session.expire_all()

    item = db.session.get(IndividualBooking, item.id)
    assert item.refunded_amount == item.paid_amount
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [n.gst for n in notes] == [426, 12, 12]
    assert sum(n.gst for n in notes) == item.gst
    assert sum(n.cgst for n in notes) == item.cgst
    assert sum(n.sgst for n in notes) == item.sgst
    # The values taken back: all of the line's, never a paisa more or less.
    assert sum(n.taxable_value for n in notes) == item.taxable, [n.taxable_value for n in notes]
    assert sum(n.exempt_value for n in notes) == item.fee, [n.exempt_value for n in notes]
    report = gst.report(gst.parse({"month": "2026-06"}))
    [line] = report.by_gstin
    assert (line.net, line.taxable, line.exempt) == (0, 0, 0)


def _refund_of(note):
    """What the note's ledger transaction sent back: its credits to the patient's wallet
    and to ``refunds_payable``."""
    txn = db.session.get(LedgerTransaction, note.ledger_transaction_id)
    return -sum(
        e.amount
        for e in txn.entries
        if e.amount < 0
        and (
            e.account.code == chart.REFUNDS_PAYABLE or e.account.code.startswith("patient_wallet:")
        )
    )


def test_a_credit_note_takes_back_exactly_the_refund_it_records(world, users, gateway, clock):
    """Review (demo V000074): ₹529.50 paid, cancelled 26 hours ahead, ₹297.13 back (75 % −
    ₹100); pro rata to the 253 paise of GST reversed the note took back ₹297.70. Then a
    further ₹102.87: the notes hold ₹400.00 in all and the invoice keeps what the ledger
    keeps."""
    from portal.accounts.models import ADMIN, User
    from portal.refunds import approvals

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item = visit.items[0]
    assert (item.fee, item.taxable, item.gst, item.paid_amount) == (50_000, 2_500, 450, 52_950)
    clock.move_to(at(4, 10) - hours(26))
    quoted_cancel(patient, visit.id, [item.id])
    [note] = db.session.scalars(sa.select(CreditNote)).all()
    assert _refund_of(note) == 29_713
    assert (note.taxable_value, note.exempt_value, note.gst) == (1_403, 28_057, 253)

    admin = users(world.admin)
    checker = User(email="checker@example.com", name="Checker", role=ADMIN, phone=None)
    db.session.add(checker)
    db.session.commit()
    further = approvals.request_further_refund(admin, item.id, 10_287, "Goodwill after review")
    approvals.approve_override(checker, further.id)
    settle_refunds(gateway)
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    assert [_refund_of(n) for n in notes] == [29_713, 10_287]
    for n in notes:
        assert n.taxable_value + n.exempt_value + n.gst == _refund_of(n), n.number
    [line] = gst.report(gst.parse({"month": "2026-06"})).by_gstin
    kept = item.paid_amount - 40_000
    assert line.taxable + line.exempt + line.net == kept == 12_950
    assert line.net == balance(chart.GST_PAYABLE)


def test_the_gst_csv_ends_with_the_pages_totals(world, users, gateway, clock):
    """Review finding: the CSV had only the documents, not the page's per-GSTIN summary
    and total (whose row itself lacked taxable, CGST and SGST totals)."""
    _seed_month(world, users, gateway, clock)
    report = gst.report(gst.parse({"month": "2026-06"}))
    [line] = report.by_gstin
    body = "".join(build("gst", {"month": "2026-06"}).iter_csv()).lstrip("\ufeff")
    parsed = list(csv.reader(io.StringIO(body)))
    header = parsed[5]
    col = {name: i for i, name in enumerate(header)}
    # The data, an empty line, the summary: the GSTIN's row per rate, its total, the total.
    assert parsed[-4] == [] and parsed[-3][col["Document"]] == "Total for GSTIN and rate"
    by_gstin, total = parsed[-2], parsed[-1]
    assert by_gstin[col["Document"]] == "Total for GSTIN" and by_gstin[col["GSTIN"]] == GSTIN
    assert total[col["Document"]] == "Total"
    for row in (by_gstin, total):
        assert _paise(row[col["Taxable value"]]) == line.taxable
        assert _paise(row[col["CGST"]]) == line.cgst and _paise(row[col["SGST"]]) == line.sgst
        assert _paise(row[col["Total tax"]]) == line.net


MONEY_COLUMNS = ("Taxable value", "Exempt value", "CGST", "SGST", "IGST", "Total tax")


def test_the_gst_csv_totals_are_its_own_rows_sums_read_once(world, users, gateway, clock):
    """Review finding: the totals were a second read of the month (``report(f, show=0)``):
    a credit note issued while the rows streamed made the Total row disagree with the rows
    above it. They are now summed from the rows as they are written: one statement, and
    rows that differ from a fresh read (as a concurrent write would make them) still sum
    to the file's totals."""
    from tests.querycount import counted_queries

    _seed_month(world, users, gateway, clock)
    db.session.commit()
    spec = build("gst", {"month": "2026-06"})
    streamed = spec.iter_batches
    # The rows the file writes differ from what a second read would see: without the
    # credit notes (as if issued after the data statement's snapshot).
    spec.iter_batches = lambda: (
        [r for r in batch if r.doc_type != gst.CREDIT_NOTE] for batch in streamed()
    )
    with counted_queries() as statements:
        body = "".join(spec.iter_csv()).lstrip("\ufeff")
    assert len(statements) == 1, statements  # the documents' select, nothing else
    parsed = list(csv.reader(io.StringIO(body)))
    header, rest = parsed[5], parsed[6:]
    col = {name: i for i, name in enumerate(header)}
    rows, summary = rest[: rest.index([])], rest[rest.index([]) + 1 :]
    assert [r[col["Document"]] for r in rows] == ["INVOICE"] * 3
    by_rate, by_gstin, total = summary  # the month has one rate
    assert by_rate[col["Document"]] == "Total for GSTIN and rate"
    assert by_gstin[col["Document"]] == "Total for GSTIN" and total[col["Document"]] == "Total"
    for name in MONEY_COLUMNS:
        sums = sum(_paise(r[col[name]]) for r in rows)
        assert _paise(by_gstin[col[name]]) == sums == _paise(total[col[name]]), name
        assert _paise(by_rate[col[name]]) == sums, name


def _page_paise(text):
    """An amount as the page prints it (``−₹1,234.50``, ``₹500``) in paise."""
    text = text.strip()
    sign = -1 if text.startswith("\u2212") else 1
    whole, _, part = text.lstrip("\u2212₹").replace(",", "").partition(".")
    return sign * (int(whole) * 100 + int(part or 0))


def _summary_table(html):
    """The page's per-GSTIN rows and its footer, each a list of cell texts."""
    import re

    table = re.search(r'<table id="gst-summary".*?</table>', html, re.S).group(0)
    body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
    foot = re.search(r"<tfoot>(.*?)</tfoot>", table, re.S).group(1)

    def cells(row):
        return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)

    return [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)], cells(foot)


def test_the_gst_pages_total_is_the_reports_own_and_equals_its_rows_and_the_csv(
    app, client, world, users, gateway, clock
):
    """Re-read: the footer summed the rows in the template (``|sum(attribute=…)``). The
    report carries its total (``GstReport.total``), the page prints it; on a month with
    two GSTINs it equals the sums of the page's rows and the CSV's Total row."""
    from portal.catalog.clinics import update_clinic
    from portal.catalog.demo import _gstin

    _seed_month(world, users, gateway, clock)
    corrected = _gstin("27", "AADCI4821K")
    update_clinic(users(world.admin), world.clinic, gstin=corrected)
    db.session.commit()
    patient = users(world.patients[1])
    book_and_pay(world, patient, gateway, [(world.peel, [world.derm], at(8, 12))])

    report = gst.report(gst.parse({"month": "2026-06"}))
    assert sorted(t.gstin for t in report.by_gstin) == sorted([GSTIN, corrected])
    names = ("documents", "taxable", "exempt", "cgst", "sgst", "igst", "collected", "reversed")
    for name in names:
        assert getattr(report.total, name) == sum(getattr(t, name) for t in report.by_gstin)
    assert report.total.net == report.net == report.collected - report.reversed

    with_known_passwords()
    login(client, users(world.admin).email)
    page = client.get("/admin/reports/gst?month=2026-06")
    assert page.status_code == 200
    rows, foot = _summary_table(page.get_data(as_text=True))
    assert len(rows) == 2 and foot[0] == "Total"
    assert int(foot[1]) == sum(int(r[2]) for r in rows) == report.total.documents
    for i in range(3, 11):  # taxable … net
        assert _page_paise(foot[i - 1]) == sum(_page_paise(r[i]) for r in rows), i
    assert _page_paise(foot[2]) == report.total.taxable and foot[2] != "₹0"

    body = "".join(build("gst", {"month": "2026-06"}).iter_csv()).lstrip("\ufeff")
    parsed = list(csv.reader(io.StringIO(body)))
    col = {name: i for i, name in enumerate(parsed[5])}
    total = parsed[-1]
    assert total[col["Document"]] == "Total"
    on_page = dict(zip(("taxable", "exempt", "cgst", "sgst", "igst"), foot[2:7], strict=True))
    on_page["net"] = foot[9]
    for name, header in [
        ("taxable", "Taxable value"), ("exempt", "Exempt value"), ("cgst", "CGST"),
        ("sgst", "SGST"), ("igst", "IGST"), ("net", "Total tax"),
    ]:  # fmt: skip
        assert _page_paise(on_page[name]) == _paise(total[col[header]]), name
