"""Issue #16: the patient's payment timeline said "checkout: retry", "payment: captured:
captured" and showed "authorized" after "captured". It now says what happened, once, in
time order."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from portal.payments.timeline import plain_steps

T0 = datetime(2026, 6, 1, 4, 30, tzinfo=UTC)


def _row(n, event, status, payment, pay_id=None):
    attempt = SimpleNamespace(
        id=n, at=T0 + timedelta(seconds=n), event=event, status=status, razorpay_payment_id=pay_id
    )
    return attempt, payment


def test_steps_in_plain_words_in_order_each_once():
    order = SimpleNamespace(id=1, kind="ORDER", amount=90015, captured_amount=90015)
    wallet = SimpleNamespace(id=2, kind="WALLET", amount=5000, captured_amount=None)
    rows = [
        _row(6, "authorized", "AUTHORIZED", order, "pay_1"),  # arrived after the capture
        _row(5, "payment.captured", "SUCCESSFUL", order, "pay_1"),
        _row(1, "order.created", "PENDING", order),
        _row(2, "wallet.reserved", "PENDING", wallet),
        _row(3, "failed", "FAILED", order, "pay_0"),
        _row(4, "checkout.retry", "PENDING", order),
        _row(7, "wallet.used", "SUCCESSFUL", wallet),
    ]
    texts = [s.text for s in plain_steps(rows)]
    assert texts == [
        "Payment started",
        "Wallet amount set aside for this payment",
        "Payment failed; no money was taken",
        "Payment started again",
        "Payment received",
        "Paid from your wallet",
    ]
    joined = " ".join(texts).lower()
    assert "captured" not in joined and "authorized" not in joined and "retry" not in joined


def test_the_paid_visit_page_speaks_plainly(app, client, world, users, gateway):
    from tests.booking.factories import at
    from tests.refunds.helpers import book_and_pay, login, with_known_passwords

    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    login(client, patient.email)
    html = client.get(f"/me/visits/{visit.id}").get_data(as_text=True)
    assert "Payment received" in html
    assert "captured" not in html.lower() and "checkout: " not in html
