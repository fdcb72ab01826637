"""Pay-in: the official razorpay SDK and our adapter over real HTTP against the sandbox."""

import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import httpx
import pytest
import razorpay

from portal.gateway import errors
from portal.gateway.sandbox.common import gateway_fee


def test_sdk_order_checkout_refund_round_trip(sandbox_server, sdk, sandbox):
    order = sdk.order.create(
        {"amount": 118_000, "currency": "INR", "receipt": "mb-1", "notes": {"master_booking": "1"}}
    )
    assert order["id"].startswith("order_") and order["status"] == "created"
    assert order["amount_due"] == 118_000 and isinstance(order["created_at"], int)

    params = sandbox_server.checkout(order["id"], method="card")
    assert params["razorpay_order_id"] == order["id"]
    assert sdk.utility.verify_payment_signature(params) is True

    payment = sdk.payment.fetch(params["razorpay_payment_id"])
    assert payment["status"] == "captured" and payment["method"] == "card"
    assert payment["order_id"] == order["id"]
    assert (payment["fee"], payment["tax"]) == gateway_fee(118_000) == (2785, 425)
    assert sdk.order.fetch(order["id"])["status"] == "paid"
    assert [p["id"] for p in sdk.order.payments(order["id"])["items"]] == [payment["id"]]

    refund = sdk.payment.refund(
        payment["id"],
        {"amount": 40_000, "speed": "normal"},
        headers={"X-Refund-Idempotency": "refund-item-1"},
    )
    assert refund["id"].startswith("rfnd_") and refund["status"] == "pending"
    assert sdk.payment.fetch(payment["id"])["refund_status"] == "partial"

    assert sdk.refund.fetch(refund["id"])["status"] == "pending"
    sandbox.advance(5)
    processed = sdk.refund.fetch(refund["id"])
    assert processed["status"] == "processed" and processed["amount"] == 40_000
    assert processed["acquirer_data"]["arn"]
    assert [e["event"] for e in sandbox.events()] == [
        "payment.authorized",
        "payment.captured",
        "order.paid",
        "refund.created",
        "refund.processed",
    ]


def test_refund_is_processed_as_time_passes(sandbox_server, payin, sandbox):
    sandbox.store.delays["refund"] = 0.3
    order = payin.create_order(50_000, receipt="r-2")
    params = sandbox_server.checkout(order["id"])
    refund = payin.create_refund(params["razorpay_payment_id"], 10_000, "rf-time")
    deadline = time.monotonic() + 5
    while payin.fetch_refund(refund["id"])["status"] == "pending":
        assert time.monotonic() < deadline, "refund never processed"
        time.sleep(0.1)
    assert payin.fetch_refund(refund["id"])["status"] == "processed"


def test_adapter_verifies_checkout_signature_with_the_sdk(sandbox_server, payin):
    order = payin.create_order(20_000, receipt="r-3")
    params = sandbox_server.checkout(order["id"])
    assert payin.verify_payment_signature(
        order["id"], params["razorpay_payment_id"], params["razorpay_signature"]
    )
    assert not payin.verify_payment_signature(order["id"], params["razorpay_payment_id"], "0" * 64)
    assert not payin.verify_payment_signature(
        "order_other", params["razorpay_payment_id"], params["razorpay_signature"]
    )


def test_failed_checkout_returns_razorpay_error_params(sandbox_server, payin, sandbox):
    order = payin.create_order(20_000, receipt="r-4")
    params = sandbox_server.checkout(order["id"], outcome="failure")
    assert params["error[code]"] == "BAD_REQUEST_ERROR"
    assert params["error[reason]"] == "payment_failed"
    assert order["id"] in params["error[metadata]"]
    assert "razorpay_signature" not in params
    assert payin.fetch_order(order["id"])["status"] == "attempted"
    [failed] = payin.fetch_order_payments(order["id"])
    assert failed["status"] == "failed" and failed["captured"] is False
    assert sandbox.events()[-1]["event"] == "payment.failed"
    # A retry on the same order can still succeed.
    params = sandbox_server.checkout(order["id"])
    assert payin.fetch_order(order["id"])["status"] == "paid"
    assert len(payin.fetch_order_payments(order["id"])) == 2


def test_hosted_checkout_form_renders_without_scripts(sandbox_server, payin):
    order = payin.create_order(20_000, receipt="r-5")
    action, fields = payin.hosted_checkout(
        order["id"], "http://merchant.test/cb", prefill={"email": "a@example.com"}
    )
    assert action == sandbox_server.url + "/v1/checkout/embedded"
    page = httpx.post(action, data=fields)
    assert page.status_code == 200
    assert "<script" not in page.text and "Pay ₹200.00" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'
    wrong = httpx.post(action, data={**fields, "key_id": "rzp_test_other"})
    assert wrong.status_code == 401


def test_refund_idempotency_key(sandbox_server, payin):
    order = payin.create_order(100_000, receipt="r-6")
    payment_id = sandbox_server.checkout(order["id"])["razorpay_payment_id"]
    first = payin.create_refund(payment_id, 25_000, "rf-key-1")
    again = payin.create_refund(payment_id, 25_000, "rf-key-1")
    assert again["id"] == first["id"]
    assert payin.fetch_payment(payment_id)["amount_refunded"] == 25_000
    with pytest.raises(errors.IdempotencyConflict):
        payin.create_refund(payment_id, 30_000, "rf-key-1")
    with pytest.raises(errors.BadRequest) as too_much:
        payin.create_refund(payment_id, 80_000, "rf-key-2")
    assert too_much.value.field == "amount" and not too_much.value.retryable
    full = payin.create_refund(payment_id, 75_000, "rf-key-3", speed="optimum")
    assert full["speed_requested"] == "optimum"
    assert payin.fetch_payment(payment_id)["status"] == "refunded"
    assert len(payin.fetch_payment_refunds(payment_id)) == 2


def test_refund_retried_through_a_timeout_is_made_once(sandbox_server, make_payin, sandbox):
    payin = make_payin(timeout=0.3, retries=3)
    order = payin.create_order(60_000, receipt="r-7")
    payment_id = sandbox_server.checkout(order["id"])["razorpay_payment_id"]
    sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="/refund")
    refund = payin.create_refund(payment_id, 60_000, "rf-timeout")
    assert list(sandbox.store.refunds) == [refund["id"]]


def test_failed_refund_gives_the_amount_back(sandbox_server, payin, sandbox):
    order = payin.create_order(30_000, receipt="r-8")
    payment_id = sandbox_server.checkout(order["id"])["razorpay_payment_id"]
    sandbox.set_faults(refund_outcome="failed")
    refund = payin.create_refund(payment_id, 30_000, "rf-fail")
    sandbox.advance(10)
    assert payin.fetch_refund(refund["id"])["status"] == "failed"
    payment = payin.fetch_payment(payment_id)
    assert payment["amount_refunded"] == 0 and payment["status"] == "captured"
    assert sandbox.events()[-1]["event"] == "refund.failed"


def test_typed_errors(make_payin, payin, sandbox):
    with pytest.raises(errors.NotFound):
        payin.fetch_payment("pay_doesnotexist00")
    with pytest.raises(errors.BadRequest) as small:
        payin.create_order(50, receipt="too-small")
    assert small.value.field == "amount" and small.value.status_code == 400
    with pytest.raises(errors.AuthenticationFailed):
        make_payin(key_secret="not-the-secret").fetch_order("order_x")
    # A 5xx on a read is retried; too many surface as GatewayUnavailable.
    order = payin.create_order(10_000, receipt="r-9")
    sandbox.set_faults(fail_next=1, error_status=502)
    assert payin.fetch_order(order["id"])["id"] == order["id"]
    sandbox.set_faults(fail_next=10, error_status=500)
    with pytest.raises(errors.GatewayUnavailable) as down:
        payin.fetch_order(order["id"])
    assert down.value.retryable and down.value.status_code == 500
    sandbox.reset_faults()
    with pytest.raises(errors.GatewayUnavailable):
        make_payin(base_url="http://127.0.0.1:9", retries=1).fetch_order("order_x")


def test_sdk_sees_razorpay_error_shape(sdk):
    with pytest.raises(razorpay.errors.BadRequestError, match="does not exist"):
        sdk.order.fetch("order_missing000000")


def test_payment_link_lifecycle(sandbox_server, payin, sandbox):
    expire_by = datetime.now(UTC) + timedelta(hours=2)
    link = payin.create_payment_link(
        150_000,
        reference_id="mb-42",
        expire_by=expire_by,
        description="Visit on Monday",
        customer={"name": "Asha", "email": "asha@example.com", "contact": "+919800000001"},
        notify={"sms": True, "email": True},
        callback_url="http://merchant.test/links/cb",
    )
    assert link["id"].startswith("plink_") and link["status"] == "created"
    assert link["expire_by"] == int(expire_by.timestamp())
    assert link["short_url"] == f"{sandbox_server.url}/pl/{link['id']}"
    assert {n["medium"] for n in sandbox.store.notifications} == {"sms", "email"}
    payin.notify_payment_link(link["id"], "sms")
    assert len(sandbox.store.notifications) == 3

    with httpx.Client() as browser:
        page = browser.get(link["short_url"])
        assert page.status_code == 200 and "₹1,500.00" in page.text
        answer = browser.post(link["short_url"], data={"method": "upi", "outcome": "success"})
    assert answer.status_code == 303
    params = dict(httpx.URL(answer.headers["location"]).params)
    assert params["razorpay_payment_link_status"] == "paid"
    assert payin.verify_payment_link_signature(
        link["id"], "mb-42", "paid", params["razorpay_payment_id"], params["razorpay_signature"]
    )
    paid = payin.fetch_payment_link(link["id"])
    assert paid["status"] == "paid" and paid["amount_paid"] == 150_000
    assert payin.fetch_payment(params["razorpay_payment_id"])["order_id"] == paid["order_id"]
    assert "payment_link.paid" in [e["event"] for e in sandbox.events()]
    assert payin.find_payment_link("mb-42")["id"] == link["id"]
    with pytest.raises(errors.BadRequest):
        payin.cancel_payment_link(link["id"])


def test_payment_link_expires_and_cancels(payin, sandbox):
    soon = int(time.time()) + 16 * 60
    expiring = payin.create_payment_link(10_000, reference_id="exp-1", expire_by=soon)
    cancelled = payin.create_payment_link(10_000, reference_id="can-1", expire_by=soon)
    assert payin.cancel_payment_link(cancelled["id"])["status"] == "cancelled"
    sandbox.advance(17 * 60)
    assert payin.fetch_payment_link(expiring["id"])["status"] == "expired"
    assert [e["event"] for e in sandbox.events()] == [
        "payment_link.cancelled",
        "payment_link.expired",
    ]
    with pytest.raises(errors.BadRequest) as early:
        payin.create_payment_link(10_000, reference_id="early", expire_by=sandbox.store.now() + 60)
    assert early.value.field == "expire_by"


def test_payment_link_create_survives_a_lost_answer(make_payin, sandbox):
    payin = make_payin(timeout=0.3)
    sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="POST /v1/payment_links")
    link = payin.create_payment_link(
        10_000, reference_id="lost-1", expire_by=sandbox.store.now() + 3600
    )
    assert list(sandbox.store.links) == [link["id"]]


def test_settlement_and_recon_for_a_day(sandbox_server, payin, sandbox):
    # One IST day's settlement: start the day's records clear of its midnight (run at
    # 23:59:57 IST, advance(5) settled the next, empty, day).
    from portal.gateway.sandbox.common import IST

    now = datetime.fromtimestamp(sandbox.store.now_f(), IST)
    to_midnight = (
        now.replace(hour=0, minute=0, second=0) + timedelta(days=1) - now
    ).total_seconds()
    if to_midnight < 60:
        sandbox.advance(to_midnight + 1)
    first = payin.create_order(100_000, receipt="s-1")
    second = payin.create_order(50_000, receipt="s-2")
    p1 = sandbox_server.checkout(first["id"])["razorpay_payment_id"]
    sandbox_server.checkout(second["id"], method="netbanking")
    payin.create_refund(p1, 20_000, "s-rf-1")
    sandbox.advance(5)
    settlement = sandbox.settle_day()
    fees = gateway_fee(100_000)[0] + gateway_fee(50_000)[0]
    taxes = gateway_fee(100_000)[1] + gateway_fee(50_000)[1]
    assert settlement["fees"] == fees and settlement["tax"] == taxes
    assert settlement["amount"] == 150_000 - fees - 20_000
    assert payin.fetch_settlement(settlement["id"])["id"] == settlement["id"]
    assert [s["id"] for s in payin.fetch_settlements()] == [settlement["id"]]
    today = sandbox.today()
    rows = payin.settlement_recon(today.year, today.month, today.day)
    assert sorted(r["type"] for r in rows) == ["payment", "payment", "refund"]
    assert sum(r["credit"] - r["debit"] for r in rows) == settlement["amount"]
    assert all(r["settlement_id"] == settlement["id"] for r in rows)


def test_days_settle_by_themselves_after_they_end(sandbox_server, payin, sandbox):
    order = payin.create_order(100_000, receipt="auto-1")
    sandbox_server.checkout(order["id"])
    assert payin.fetch_settlements() == []
    sandbox.advance(2 * 86400)
    [settlement] = payin.fetch_settlements()
    assert settlement["amount"] == 100_000 - gateway_fee(100_000)[0]


def test_a_payment_is_created_before_it_is_captured_and_settles_by_its_capture(
    sandbox_server, payin, sandbox
):
    """As at Razorpay, a payment's ``created_at`` is when the customer gave the details;
    its capture follows once the bank authorised it (an OTP, a UPI collect approved on
    the phone, a netbanking login): ``DELAYS["payment_approval"]`` later (by default
    beyond the reconciliation's 60 s, so development meets the gap production has:
    review rv_rzp). Razorpay settles a capture by its own day, so a payment created
    before an IST midnight and captured after it settles with the later day."""
    from portal.gateway.sandbox.common import DEFAULT_DELAYS, IST

    assert DEFAULT_DELAYS["payment_approval"] > 60
    sandbox.store.delays["payment_approval"] = 600
    now = datetime.fromtimestamp(sandbox.store.now_f(), IST)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    sandbox.advance((midnight - now).total_seconds() + 300)  # 00:05 IST
    order = payin.create_order(100_000, receipt="approve-1")
    pay_id = sandbox_server.checkout(order["id"])["razorpay_payment_id"]
    payment = payin.fetch_payment(pay_id)
    [captured] = sandbox.events("payment.captured")
    assert captured["created_at"] - payment["created_at"] == 600
    assert captured["payload"]["payment"]["entity"]["created_at"] == payment["created_at"]
    assert sandbox.settle_day(midnight.date() - timedelta(days=1)) is None
    settlement = sandbox.settle_day(midnight.date())
    assert settlement["amount"] == 100_000 - gateway_fee(100_000)[0]


def test_the_checkout_page_is_compiled_once_not_per_page(sandbox_server, payin, monkeypatch):
    """The sandbox's one page template is compiled once per app: compiled for every
    checkout page and every answer, it cost each a few milliseconds of CPU."""
    env = sandbox_server.app.jinja_env
    compiled = mock.Mock(wraps=env.compile)
    monkeypatch.setattr(env, "compile", compiled)
    client = sandbox_server.app.test_client()
    for _ in range(3):
        order = payin.create_order(50_000, receipt="mb-7")
        page = client.get(f"/checkout/{order['id']}")
        assert page.status_code == 200 and "₹500.00" in page.get_data(as_text=True)
    assert compiled.call_count <= 1
