"""The GST report split by rate. The rate is a policy value that changes (policy versions);
each document is charged at the rate of the version its booking was priced under
(``invoices.gst_bps``, what the receipt states). A month in which the rate changed has
documents at both rates, and GSTR-1 asks for the taxable value and the tax per rate: the
report summed the GSTIN into one undivided line (review finding). Now each document row
states its rate, and each GSTIN's summary is split by rate, on the page and in the CSV,
to the paisa; a credit note reduces the rate its booking was charged at."""

import csv
import io
import re

import pytest
import sqlalchemy as sa

from portal.booking.credit_notes import CreditNote
from portal.booking.invoices import gst_bps
from portal.booking.models import IndividualBooking
from portal.domain.rates import apply_bps
from portal.exports import build
from portal.extensions import db
from portal.reports import gst
from tests.booking.factories import GSTIN, at
from tests.policies.test_policy_receipts import change_gst
from tests.querycount import counted_queries
from tests.refunds.helpers import (
    book_and_pay,
    login,
    quoted_admin_cancel,
    quoted_cancel,
    settle_refunds,
    with_known_passwords,
)


@pytest.fixture
def admin_ids(admins):
    return [a.id for a in admins]


def _paise(text):
    sign = -1 if text.startswith("-") else 1
    whole, part = text.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(part))


def _month_at_two_rates(world, users, gateway, admin_ids):
    """June: a consultation and a peel priced at 18 %, the rate changed to 12 %, then a
    consultation and a peel at 12 %; the 18 % peel partly refunded (a credit note at
    18 %) and the 12 % consultation cancelled in full (a credit note at 12 %)."""
    p1, p2 = users(world.patients[0]), users(world.patients[1])
    book_and_pay(world, p1, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    peel18 = book_and_pay(world, p2, gateway, [(world.peel, [world.derm], at(4, 12))])
    peel18_item = peel18.items[0].id
    change_gst(admin_ids, 1_200)
    p1, p2 = users(world.patients[0]), users(world.patients[1])
    consult12 = book_and_pay(world, p1, gateway, [(world.consult, [world.doctors[1]], at(3, 10))])
    book_and_pay(world, p2, gateway, [(world.peel, [world.derm], at(3, 12))])
    consult12_id, consult12_item = consult12.id, consult12.items[0].id
    quoted_admin_cancel(
        users(world.admin), peel18_item, "Goodwill, partial refund agreed", override=50_000
    )
    quoted_cancel(users(world.patients[0]), consult12_id, [consult12_item])
    settle_refunds(gateway)
    db.session.expire_all()


def _expected_by_rate():
    """{rate: (taxable, exempt, cgst, sgst, igst, tax)} from the invoice lines and the
    credit notes themselves, each at its booking's rate (the receipt's)."""
    sums = {}

    def add(rate, *values):
        old = sums.get(rate, (0,) * 6)
        sums[rate] = tuple(a + b for a, b in zip(old, values, strict=True))

    for item in db.session.scalars(sa.select(IndividualBooking)):
        rate = gst_bps(item)
        assert item.gst == apply_bps(item.taxable, rate)
        exempt = 0 if item.fee_taxed else item.fee
        add(rate, item.taxable, exempt, item.cgst, item.sgst, item.igst, item.gst)
    for note in db.session.scalars(sa.select(CreditNote)):
        rate = gst_bps(db.session.get(IndividualBooking, note.booking_id))
        add(
            rate,
            -note.taxable_value,
            -note.exempt_value,
            -note.cgst,
            -note.sgst,
            -note.igst,
            -note.gst,
        )
    return sums


def test_a_month_with_two_rates_is_split_by_rate(world, users, gateway, clock, admin_ids):
    _month_at_two_rates(world, users, gateway, admin_ids)
    expected = _expected_by_rate()
    assert sorted(expected) == [1_200, 1_800]
    notes = db.session.scalars(sa.select(CreditNote)).all()
    assert len(notes) == 2

    report = gst.report(gst.parse({"month": "2026-06"}))
    [line] = report.by_gstin
    assert line.gstin == GSTIN
    split = {r.rate_bps: (r.taxable, r.exempt, r.cgst, r.sgst, r.igst, r.net) for r in line.by_rate}
    assert split == expected
    # The rates' rows add up to the GSTIN's line, to the paisa.
    assert tuple(map(sum, zip(*split.values(), strict=True))) == (
        line.taxable, line.exempt, line.cgst, line.sgst, line.igst, line.net,
    )  # fmt: skip
    # Each document row states the rate it was charged at.
    rates = {row.doc_no: row.gst_bps for row, _tax in report.documents}
    for note in notes:
        assert rates[note.number] == gst_bps(db.session.get(IndividualBooking, note.booking_id))

    # The CSV: a rate per document, and a summary row per GSTIN and rate.
    body = "".join(build("gst", {"month": "2026-06"}).iter_csv()).lstrip("\ufeff")
    parsed = list(csv.reader(io.StringIO(body)))
    header, rest = parsed[5], parsed[6:]
    col = {name: i for i, name in enumerate(header)}
    rows = rest[: rest.index([])]
    assert {r[col["GST rate"]] for r in rows} == {"18%", "12%"}
    by_rate = [r for r in rest if r and r[col["Document"]] == "Total for GSTIN and rate"]
    assert [(r[col["GSTIN"]], r[col["GST rate"]]) for r in by_rate] == [
        (GSTIN, "12%"), (GSTIN, "18%"),
    ]  # fmt: skip
    for r in by_rate:
        rate = {"12%": 1_200, "18%": 1_800}[r[col["GST rate"]]]
        documents = [d for d in rows if d[col["GST rate"]] == r[col["GST rate"]]]
        names = ("Taxable value", "Exempt value", "CGST", "SGST", "IGST", "Total tax")
        for i, name in enumerate(names):
            assert _paise(r[col[name]]) == expected[rate][i], (rate, name)
            assert _paise(r[col[name]]) == sum(_paise(d[col[name]]) for d in documents)


def test_the_gst_page_shows_the_split_by_rate(app, client, world, users, gateway, clock, admin_ids):
    _month_at_two_rates(world, users, gateway, admin_ids)
    expected = _expected_by_rate()
    with_known_passwords()
    login(client, users(world.admin).email)
    html = client.get("/admin/reports/gst?month=2026-06").get_data(as_text=True)
    table = re.search(r'<table id="gst-by-rate".*?</table>', html, re.S)
    assert table, "no split by rate on the page"
    rows = re.findall(
        r"<tr>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", table.group(0), re.S).group(1), re.S
    )  # noqa: E501
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S) for r in rows]
    assert [(c[0], c[1]) for c in cells] == [(GSTIN, "12%"), (GSTIN, "18%")]
    for c in cells:
        rate = {"12%": 1_200, "18%": 1_800}[c[1]]
        taxable = int(c[3].replace("₹", "").replace(",", "").replace(".", "").strip() or 0)
        assert "." in c[3] and taxable == expected[rate][0]


def test_the_gst_csv_is_still_one_statement_with_the_rates(world, users, gateway, clock, admin_ids):
    """The rates come from the policy versions the cache holds (as the receipt's do):
    the file is still the documents' one select, however many rates and documents."""
    _month_at_two_rates(world, users, gateway, admin_ids)
    spec = build("gst", {"month": "2026-06"})
    with counted_queries() as statements:
        body = "".join(spec.iter_csv())
    assert len(statements) == 1, statements
    assert "Total for GSTIN and rate" in body
