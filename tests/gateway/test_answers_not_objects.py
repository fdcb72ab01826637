"""Answers whose body is JSON but not Razorpay's shape: an error answer that is not an
object (``[]``, ``"oops"``, ``null``, ``42``), or an object whose ``error`` is not one;
and a success whose body is not an object. The razorpay SDK indexes into such a body
(``'error' in None``, ``"an error"['error']``) and raised TypeError, which reached the
patient's pay page as a 500 and the refund and payout jobs as a crash. Both adapters
raise the portal's typed error instead, with a message that says what came back: a 4xx
is a refusal, a 5xx or a success that cannot be read a retryable error whose outcome is
unknown (the request may have been made)."""

import pytest

from portal.gateway import errors
from tests.gateway.test_payouts import bank_account  # noqa: F401

# Error bodies a proxy, a WAF or a broken release could send instead of Razorpay's
# {"error": {"code", "description", ...}}.
ODD_ERROR_BODIES = [
    "[]",
    '"oops"',
    '"an error"',  # the SDK looks for 'error' in it, finds it and indexes the string
    "null",
    "42",
    '{"error": null}',
    '{"error": "bad description"}',
    '{"error": ["description"]}',
    '{"error": 42}',
]
ODD_SUCCESS_BODIES = ["[]", '"ok"', "null", "42", "true"]


def _paid(sandbox_server, payin):
    order = payin.create_order(40_000, receipt="r-odd")
    return sandbox_server.checkout(order["id"])["razorpay_payment_id"]


def _assert_typed(error, status, body):
    assert isinstance(error, errors.GatewayError), repr(error)
    assert error.status_code == status
    if status >= 500:
        assert isinstance(error, errors.GatewayUnavailable) and error.retryable
        assert error.ambiguous
    else:
        assert isinstance(error, errors.BadRequest) and not error.retryable
    said = str(error)
    assert f"HTTP {status}" in said and "without its error object" in said, said


def _payin_calls(sandbox_server, payin):
    payment_id = _paid(sandbox_server, payin)
    return {
        "POST /v1/orders": lambda: payin.create_order(10_000, receipt="r-odd-2"),
        "GET /v1/payments/": lambda: payin.fetch_payment(payment_id),
        "/refund": lambda: payin.create_refund(payment_id, 10_000, "rf-odd"),
    }


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("body", ODD_ERROR_BODIES)
def test_payin_error_answers_not_shaped_as_razorpay_are_typed(
    sandbox_server, make_payin, sandbox, body, status
):
    payin = make_payin(retries=0)
    for match, call in _payin_calls(sandbox_server, payin).items():
        sandbox.set_faults(answer_next=1, answer_status=status, answer_body=body, match=match)
        with pytest.raises(errors.GatewayError) as raised:
            call()
        _assert_typed(raised.value, status, body)
    assert not sandbox.store.refunds  # the refused answers made nothing


@pytest.mark.parametrize("body", ODD_SUCCESS_BODIES)
def test_payin_success_that_is_not_an_object_is_an_unknown_outcome(
    sandbox_server, make_payin, sandbox, body
):
    payin = make_payin(retries=0)
    for match, call in _payin_calls(sandbox_server, payin).items():
        sandbox.set_faults(answer_next=1, answer_status=200, answer_body=body, match=match)
        with pytest.raises(errors.GatewayUnavailable) as raised:
            call()
        error = raised.value
        assert error.retryable and error.ambiguous and error.status_code == 200
        assert "not a JSON object" in str(error), str(error)


def test_payin_success_that_is_not_json_says_so(sandbox_server, make_payin, sandbox):
    payin = make_payin(retries=0)
    payment_id = _paid(sandbox_server, payin)
    sandbox.set_faults(garbage_next=1, match="/refund")
    with pytest.raises(errors.GatewayUnavailable) as raised:
        payin.create_refund(payment_id, 10_000, "rf-garbage")
    error = raised.value
    assert error.ambiguous and error.status_code == 200
    assert "not JSON" in str(error), str(error)
    # Its retry under the same key is answered as usual.
    assert payin.create_refund(payment_id, 10_000, "rf-garbage")["id"] in sandbox.store.refunds


def test_payin_retries_an_odd_5xx_like_any_5xx(sandbox_server, make_payin, sandbox):
    payin = make_payin(retries=2)
    payment_id = _paid(sandbox_server, payin)
    sandbox.set_faults(answer_next=2, answer_status=503, answer_body="null", match="/refund")
    refund = payin.create_refund(payment_id, 10_000, "rf-odd-retried")
    assert list(sandbox.store.refunds) == [refund["id"]]


def _payouts_calls(payouts, bank_account):  # noqa: F811
    return {
        "POST /v1/payouts": lambda: payouts.create_payout(
            "po-odd", fund_account_id=bank_account["id"], amount=10_000
        ),
        "GET /v1/payouts/": lambda: payouts.fetch_payout("pout_00000000000000"),
        "POST /v1/fund_accounts": lambda: payouts.create_fund_account(
            bank_account["contact_id"], vpa="meera@okaxis"
        ),
    }


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("body", ODD_ERROR_BODIES)
def test_razorpayx_error_answers_not_shaped_as_razorpay_are_typed(
    make_payouts,
    sandbox,
    bank_account,  # noqa: F811
    body,
    status,
):
    payouts = make_payouts(retries=0)
    for match, call in _payouts_calls(payouts, bank_account).items():
        sandbox.set_faults(answer_next=1, answer_status=status, answer_body=body, match=match)
        with pytest.raises(errors.GatewayError) as raised:
            call()
        _assert_typed(raised.value, status, body)
    assert not sandbox.store.payouts


@pytest.mark.parametrize("body", ODD_SUCCESS_BODIES)
def test_razorpayx_success_that_is_not_an_object_is_an_unknown_outcome(
    make_payouts,
    sandbox,
    bank_account,  # noqa: F811
    body,
):
    payouts = make_payouts(retries=0)
    for match, call in _payouts_calls(payouts, bank_account).items():
        sandbox.set_faults(answer_next=1, answer_status=200, answer_body=body, match=match)
        with pytest.raises(errors.GatewayUnavailable) as raised:
            call()
        error = raised.value
        assert error.retryable and error.ambiguous and error.status_code == 200
        assert "not a JSON object" in str(error), str(error)


def test_razorpayx_success_that_is_not_json_says_so(make_payouts, sandbox, bank_account):  # noqa: F811
    payouts = make_payouts(retries=0)
    sandbox.set_faults(garbage_next=1, match="POST /v1/payouts")
    with pytest.raises(errors.GatewayUnavailable) as raised:
        payouts.create_payout("po-garbage", fund_account_id=bank_account["id"], amount=10_000)
    assert raised.value.ambiguous and "not JSON" in str(raised.value), str(raised.value)


def test_only_razorpay_says_an_id_does_not_exist(sandbox_server, make_payin, payouts, sandbox):
    """A 404 whose body is not Razorpay's error (a proxy's page, a wrong base URL) is a
    refusal, not ``NotFound``: that one parks a real payment's event as unknown to the
    gateway and makes a provider's RazorpayX contact anew. Razorpay's own "does not
    exist" still is, and fields of its error that are not text are dropped, not kept to
    be split or compared."""
    payin = make_payin(retries=0)
    payment_id = _paid(sandbox_server, payin)
    for body in ("[]", "<html><body>404 Not Found</body></html>"):
        sandbox.set_faults(answer_next=2, answer_status=404, answer_body=body, match="GET /v1/")
        with pytest.raises(errors.BadRequest) as read:
            payin.fetch_payment(payment_id)
        with pytest.raises(errors.BadRequest) as fetched:
            payouts.fetch_payout("pout_00000000000000")
        for error in (read.value, fetched.value):
            assert not isinstance(error, errors.NotFound) and error.status_code == 404
            assert "without its error object" in str(error), str(error)
    sandbox.set_faults(
        answer_next=1,
        answer_status=400,
        answer_body='{"error": {"description": "The id provided does not exist", '
        '"code": 7, "field": ["id"], "reason": {}}}',
        match="GET /v1/payouts",
    )
    with pytest.raises(errors.NotFound) as missing:
        payouts.fetch_payout("pout_00000000000000")
    assert (missing.value.code, missing.value.field, missing.value.reason) == (None, None, None)


@pytest.mark.parametrize("body", ["{}", '{"items": null}', '{"items": {}}'])
def test_a_list_answered_without_its_items_is_unreadable(
    sandbox_server, make_payin, payouts, sandbox, body
):
    """The callers index ``items`` (Send to wallet reads the payment's refunds): an
    object without a list of them was a KeyError or TypeError, a 500 or a job's crash."""
    payin = make_payin(retries=0)
    payment_id = _paid(sandbox_server, payin)
    for match, call in (
        ("GET /v1/payments/", lambda: payin.fetch_payment_refunds(payment_id)),
        ("GET /v1/payouts", lambda: payouts.list_payouts()),
    ):
        sandbox.set_faults(answer_next=1, answer_status=200, answer_body=body, match=match)
        with pytest.raises(errors.GatewayUnavailable) as raised:
            call()
        assert "no list of items" in str(raised.value), str(raised.value)
