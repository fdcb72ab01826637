"""A payment row of the transactions console (and its CSV) carries a price breakup only
when it paid the visit's invoice, and then it adds up to its amount: Fee + Platform fee +
GST − Discount − From wallet = Amount (POLICY.md: "every breakdown adds up exactly").
The invoice's GST is on one row, so a column of GST sums to the GST invoiced.

Review finding: every payment row carried its whole visit's breakup, whatever it paid:

* a visit paid partly from the wallet and with a coupon: the gateway payment's row read
  Amount ₹694.25 beside Fee ₹833.33 + Platform fee ₹41.67 + GST ₹7.50 = ₹882.50;
* a capture of the wrong amount, which confirmed nothing (the money went to the wallet),
  still read Fee ₹500, Platform fee ₹25, GST ₹4.50 — GST that was never charged. Summing
  the file's GST column then over-stated the GST collected."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import coupons, visits
from portal.exports import build
from portal.extensions import db
from portal.transactions import projection
from portal.transactions.models import MoneyMovement
from tests.booking.factories import (
    at,
    captured_event,
    credit_wallet,
    post_webhook,
    quoted_checkout,
    quoted_desk_payment,
)
from tests.payments.test_payments_checkout import CALLBACK, hold
from tests.refunds.helpers import book_and_pay, consult_and_lab
from tests.transactions.csv_file import read

PARTS = ("Fee", "Platform fee", "GST")
LESS = ("Discount", "From wallet")


def _paise(text):
    if not text:
        return None
    sign = -1 if text.startswith("-") else 1
    whole, part = text.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(part))


def _rows(params):
    return read("".join(build("transactions", params).iter_csv())).records()


def _adds_up(row):
    """The row's breakup, asserted to add up to its amount; None when it has none."""
    cells = [_paise(row[c]) for c in PARTS + LESS]
    if all(c is None for c in cells):
        return None
    assert None not in cells, row
    fee, platform, gst, discount, wallet = cells
    assert fee + platform + gst - discount - wallet == _paise(row["Amount"]), row
    return fee, platform, gst, discount, wallet


def _two_items(world):
    return consult_and_lab(world)


def test_a_payments_breakup_adds_up_to_its_amount(world, users, gateway, clock):
    admin = users(world.admin)
    coupons.create_coupon(admin, code="SAVE10", kind="PERCENT", value=1_000)
    db.session.commit()
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit = book_and_pay(world, patient, gateway, _two_items(world), coupon="SAVE10", wallet=10_000)
    rows = _rows({"preset": "today"})
    [online] = [r for r in rows if r["Type"] == "payment_online"]
    [from_wallet] = [r for r in rows if r["Type"] == "wallet_debit"]
    fee, platform, gst, discount, wallet = _adds_up(online)  # it paid the invoice: shown
    assert (fee, platform, gst) == (
        sum(i.fee for i in visit.items),
        sum(i.platform_fee for i in visit.items),
        sum(i.gst for i in visit.items),
    )
    assert discount == sum(i.discount_share for i in visit.items) > 0
    assert wallet == 10_000
    assert _adds_up(from_wallet) is None  # its part is the gateway row's "From wallet"
    # The GST column sums to the GST invoiced, once.
    assert sum(_paise(r["GST"]) or 0 for r in rows) == gst
    # ``flask transactions rebuild`` writes the same rows (the same projector).
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    projection.rebuild()
    db.session.expire_all()
    assert [{k: r[k] for k in r if k != "Id"} for r in _rows({"preset": "today"})] == [
        {k: r[k] for k in r if k != "Id"} for r in rows
    ]


def test_a_capture_that_confirmed_nothing_claims_no_gst(app, world, users, gateway, clock):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    paid = gateway.pay(result.payment.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, paid["razorpay_payment_id"], 100), "evt_wrong")
    db.session.expire_all()
    rows = [r for r in _rows({"preset": "today"}) if r["Type"] == "payment_online"]
    # The capture has a row of its own; the order's row still waits for the right amount.
    [row] = [r for r in rows if r["Gateway reference"] == paid["razorpay_payment_id"]]
    [waiting] = [r for r in rows if r is not row]
    assert _paise(row["Amount"]) == 100 and waiting["Status"] == "PENDING"
    # Nothing was confirmed or invoiced: no GST was charged on this ₹1, no breakup shown.
    for shown in (row, waiting):
        assert (_paise(shown["GST"]) or 0) == 0, shown
        assert _adds_up(shown) is None


def test_a_visit_paid_from_the_wallet_alone_has_its_breakup_on_the_wallet_row(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 200_000)
    visit = book_and_pay(world, patient, gateway, _two_items(world), wallet=200_000)
    rows = _rows({"preset": "today"})
    assert [r["Type"] for r in rows] == ["wallet_debit"]
    fee, platform, gst, discount, wallet = _adds_up(rows[0])
    assert (gst, discount, wallet) == (sum(i.gst for i in visit.items), 0, 0)


def test_a_desk_payment_carries_its_visits_breakup(world, users, gateway, clock):
    admin = users(world.admin)
    patient = db.session.get(User, world.patients[0])
    item = visits.add_item(
        admin,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(4, 10),
    )
    quoted_desk_payment(admin, item.master_id, "R-7")
    [row] = [r for r in _rows({"preset": "today"}) if r["Type"] == "payment_desk"]
    assert _adds_up(row) == (item.fee, item.platform_fee, item.gst, 0, 0)


def test_the_console_shows_the_breakup_less_discount_and_wallet(
    world, users, gateway, clock, client, login, make_user
):
    admin = users(world.admin)
    coupons.create_coupon(admin, code="SAVE10", kind="PERCENT", value=1_000)
    db.session.commit()
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    book_and_pay(world, patient, gateway, _two_items(world), coupon="SAVE10", wallet=10_000)
    [online] = [r for r in _rows({"preset": "today"}) if r["Type"] == "payment_online"]
    login(make_user("admin", email="finance@example.com"))
    page = client.get("/admin/transactions?preset=today").get_data(as_text=True)
    assert '<th class="num">Discount</th><th class="num">From wallet</th>' in page
    detail = client.get(f"/admin/transactions/{online['Id']}")
    assert detail.status_code == 200
    html = detail.get_data(as_text=True)
    assert 'Less discount</td><td class="num">−₹88.25<' in html
    assert 'Less paid from the wallet</td><td class="num">−₹100<' in html
