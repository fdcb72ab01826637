"""Finding a payment by its Razorpay id (review finding: an operator pasting ``pay_…`` found
nothing: the visit search matched names and numbers only, the transactions console refused
``q`` and its party filter found nothing, and the reconciliation link of a reference with
no case was a bare 404). The visit search, the console's Reference filter and that link
now find what a gateway reference (or an invoice number) belongs to, by exact index reads."""

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import time_machine

from portal.booking.models import MasterBooking
from portal.db import utcnow
from portal.domain.states import PaymentStatus, RefundStatus
from portal.extensions import db
from portal.payments.models import LINK, ORDER, Payment, PaymentAttempt
from portal.refunds.models import GATEWAY, Refund
from portal.transactions import references
from portal.transactions.models import MoneyMovement
from tests.querycount import counted_queries
from tests.web.booking.helpers import hold, hx, slot

ROW = re.compile(r'<tr id="visit-(\d+)"')
MOVEMENT = re.compile(r'<tr id="movement-(\d+)"')

PAID = "pay_0kXvoDwfDiSvZV"
FAILED_TRY = "pay_0kFailedTry001"
ORDER_ID = "order_0kOrderOne0001"
LINK_ID = "plink_0kLinkOne00001"
REFUND_ID = "rfnd_0kRefundOne001"
INVOICE = "CP/2026-27/000042"  # issued before the 16-character form: found as stored


@pytest.fixture
def paid(app, world):
    """Priya's visit: an order whose one try failed, then a link paid 60 days ago (so
    outside the console's default 7 days) and partly refunded; Other's visit beside it."""
    visit_id, item_id = hold(app, world)
    other_id, _ = hold(app, world, patient=world.other, start=slot(world.day, 11))
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        visit.invoice_no = INVOICE
        tried = Payment(
            master_id=visit_id,
            kind=ORDER,
            amount=50_000,
            status=PaymentStatus.FAILED,
            razorpay_order_id=ORDER_ID,
        )
        link = Payment(
            master_id=visit_id,
            kind=LINK,
            amount=50_000,
            status=PaymentStatus.SUCCESSFUL,
            razorpay_link_id=LINK_ID,
            razorpay_payment_id=PAID,
            captured_amount=50_000,
            paid_at=utcnow() - timedelta(days=60),
        )
        beside = Payment(
            master_id=other_id,
            kind=ORDER,
            amount=50_000,
            status=PaymentStatus.PENDING,
            razorpay_order_id="order_0kOtherVisit01",
        )
        db.session.add_all([tried, link, beside])
        db.session.flush()
        db.session.add(
            PaymentAttempt(
                payment_id=tried.id,
                event="payment.failed",
                status=PaymentStatus.FAILED,
                razorpay_payment_id=FAILED_TRY,
            )
        )
        db.session.add(
            Refund(
                booking_id=item_id,
                visit_id=visit_id,
                patient_id=visit.patient_id,
                amount=10_000,
                destination=GATEWAY,
                payment_id=link.id,
                razorpay_payment_id=PAID,
                razorpay_refund_id=REFUND_ID,
                idempotency_key="test-refund-1",
                status=RefundStatus.PROCESSED,
            )
        )
        db.session.commit()
        rows = {
            (source, source_id): row_id
            for source, source_id, row_id in db.session.execute(
                sa.select(MoneyMovement.source, MoneyMovement.source_id, MoneyMovement.id)
            )
        }
        return SimpleNamespace(
            visit=visit_id,
            number=visit.number,
            other=other_id,
            tried=rows[("payment", tried.id)],
            link=rows[("payment", link.id)],
            beside=rows[("payment", beside.id)],
            refund=next(v for (s, _), v in rows.items() if s == "refund"),
        )


def _visits(client, q):
    html = client.get("/admin/visits", query_string={"q": q}).get_data(as_text=True)
    return [int(i) for i in ROW.findall(html)], html


@pytest.mark.parametrize("reference", [PAID, FAILED_TRY, ORDER_ID, LINK_ID, REFUND_ID, INVOICE])
def test_the_visit_search_finds_the_visit_a_gateway_reference_belongs_to(
    client, login, world, paid, reference
):
    login(world.admin)
    found, html = _visits(client, f"  {reference} ")
    assert found == [paid.visit]
    assert f"/admin/visits/{paid.visit}" in html and "See its transactions" in html


def test_a_reference_in_none_of_our_records_finds_no_visit_and_says_so(client, login, world, paid):
    login(world.admin)
    found, html = _visits(client, "pay_0kNotOursAtAll1")
    assert found == [] and "No payment <code>pay_0kNotOursAtAll1</code> in our records" in html


def test_a_reference_search_is_one_indexed_statement_more_than_a_name_search(
    app, client, login, world, paid
):
    login(world.admin)
    client.get("/admin/visits?q=Priya")  # warm up
    with counted_queries() as by_name:
        assert client.get("/admin/visits?q=Priya", headers=hx("results")).status_code == 200
    with counted_queries() as by_reference:
        page = client.get(f"/admin/visits?q={PAID}", headers=hx("results"))
    assert page.status_code == 200
    assert len(by_reference) == len(by_name) + 1, "\n".join(s[:100] for s in by_reference)


def _console(client, **args):
    page = client.get("/admin/transactions", query_string=args)
    return page, [int(i) for i in MOVEMENT.findall(page.get_data(as_text=True))]


def test_the_console_reference_filter_lists_a_payments_rows_whatever_their_date(
    client, login, world, paid
):
    login(world.admin)
    page, rows = _console(client, reference=PAID)
    assert page.status_code == 200
    assert sorted(rows) == sorted([paid.link, paid.refund])  # the payment and its refund
    # the period select says "Last 7 days" and comes with every submit: a reference
    # reads every date all the same
    assert sorted(_console(client, reference=PAID, preset="7d")[1]) == sorted(rows)
    # typed dates still narrow it
    assert _console(client, reference=PAID, **{"from": str(utcnow().date())})[1] == [paid.refund]
    assert _console(client, reference=ORDER_ID)[1] == [paid.tried]
    assert _console(client, reference=FAILED_TRY)[1] == [paid.tried]
    assert _console(client, reference=LINK_ID)[1] == [paid.link]
    assert _console(client, reference=REFUND_ID)[1] == [paid.refund]
    assert _console(client, reference="pay_0kNotOursAtAll1")[1] == []


SEE_ITS_TRANSACTIONS = re.compile(r'<a href="([^"]+)">See its transactions</a>')


@pytest.mark.parametrize("reference", [PAID, INVOICE])
def test_a_reference_over_a_year_old_is_found_by_the_visit_pages_link(
    client, login, world, paid, reference
):
    """Re-read finding: the visit search has no date bound, so a payment paid over a year
    ago found its visit, but the page's "See its transactions" link opened the console on
    the last 366 days: an empty list. A reference now reads its rows whatever their date."""
    with time_machine.travel(utcnow() + timedelta(days=400), tick=True):
        login(world.admin)
        found, html = _visits(client, reference)
        assert found == [paid.visit]
        link = SEE_ITS_TRANSACTIONS.search(html).group(1).replace("&amp;", "&")
        page = client.get(link)
        rows = [int(i) for i in MOVEMENT.findall(page.get_data(as_text=True))]
        summary = client.get(link.replace("/transactions?", "/transactions/summary?"))
    assert page.status_code == 200
    assert paid.link in rows and paid.refund in rows
    assert summary.status_code == 200
    assert f"<strong>{len(rows)}</strong> movements" in summary.get_data(as_text=True)


def test_a_payouts_reference_finds_its_row_and_no_visit(app, client, login, world, paid):
    login(world.admin)
    with app.app_context():
        row = MoneyMovement(
            source="payout",
            source_id=999,
            type="payout",
            status="PROCESSED",
            failed=False,
            occurred_at=utcnow() - timedelta(days=30),
            amount=1_000_00,
            net=1_000_00,
            reference="pout_0kPayoutOne01",
        )
        db.session.add(row)
        db.session.commit()
        row_id = row.id
    assert _console(client, reference="pout_0kPayoutOne01")[1] == [row_id]
    found, html = _visits(client, "pout_0kPayoutOne01")
    assert found == [] and "transactions?reference=pout_0kPayoutOne01" in html


def test_the_console_reference_filter_stays_in_the_pager_summary_and_export(
    client, login, world, paid
):
    login(world.admin)
    html = _console(client, reference=PAID)[0].get_data(as_text=True)
    assert f'name="reference" type="text" value="{PAID}"' in html or f'value="{PAID}"' in html
    assert f"/admin/transactions/summary?reference={PAID}" in html
    assert f"/admin/transactions.csv?reference={PAID}" in html
    summary = client.get("/admin/transactions/summary", query_string={"reference": PAID})
    assert summary.status_code == 200 and "<strong>2</strong> movements" in summary.get_data(
        as_text=True
    )
    csv_file = client.get("/admin/transactions.csv", query_string={"reference": PAID})
    text = csv_file.get_data(as_text=True)
    assert csv_file.status_code == 200 and PAID in text and REFUND_ID in text
    assert "order_0kOtherVisit01" not in text


def test_bad_references_are_refused_with_a_message(client, login, world, paid):
    login(world.admin)
    page, _ = _console(client, reference="pay 0k; drop")
    assert page.status_code == 422 and "Enter a Razorpay id" in page.get_data(as_text=True)
    page, _ = _console(client, party=PAID)
    assert page.status_code == 422
    assert "That is a Razorpay id: enter it under Reference." in page.get_data(as_text=True)
    page, _ = _console(client, q=PAID)
    assert page.status_code == 422 and "reference" in page.get_data(as_text=True)


def test_the_reconciliation_link_without_a_case_goes_to_the_references_transactions(
    client, login, world, paid
):
    login(world.admin)
    page = client.get(f"/admin/reconciliation/cases/by-reference/{PAID}")
    assert page.status_code == 303
    assert page.headers["Location"].endswith(f"/admin/transactions?reference={PAID}")
    html = client.get(page.headers["Location"]).get_data(as_text=True)
    assert f"No discrepancy for {PAID}" in html
    assert sorted(int(i) for i in MOVEMENT.findall(html)) == sorted([paid.link, paid.refund])


def test_the_reconciliation_link_of_an_unknown_reference_says_so(client, login, world, paid):
    login(world.admin)
    page = client.get("/admin/reconciliation/cases/by-reference/pay_0kNotOursAtAll1")
    assert page.status_code == 404
    assert "No reconciliation case for <code>pay_0kNotOursAtAll1</code>" in page.get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("text", "kind", "stored"),
    [
        ("pay_0kXvoDwfDiSvZV", "pay", "pay_0kXvoDwfDiSvZV"),
        (" order_0kOrderOne0001 ", "order", "order_0kOrderOne0001"),
        ("pout_0kPayout00001", "pout", "pout_0kPayout00001"),
        ("v123", "visit", "V000123"),
        ("cp/2026-27/000042", "invoice", "CP/2026-27/000042"),
        ("CN/2026-27/000001", "cn", "CN/2026-27/000001"),
        ("rf/2026-27/000007", "fee", "RF/2026-27/000007"),
        # one issued before the fees' own series kept its number
        ("cp/2026-27/000042/r12", "fee", "CP/2026-27/000042/R12"),
        ("Priya", None, None),
        ("pay_", None, None),
        ("asha@example.com", None, None),
    ],
)
def test_what_counts_as_a_reference(text, kind, stored):
    ref = references.parse(text)
    assert (ref.kind, ref.text) == (kind, stored) if kind else ref is None
