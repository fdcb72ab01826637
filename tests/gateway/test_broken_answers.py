"""Answers broken on the way back from Razorpay (cut off mid-body, a proxy's HTML 502
page, a body marked gzip that is not): the request was made, so both adapters raise a
retryable, ambiguous typed error, and a retry under the same idempotency key makes
nothing twice. Nothing untyped escapes to the callers, which catch ``GatewayError``."""

import pytest

from portal.gateway import errors
from tests.broken_answers import BAD_GZIP, CUT, HTML_502, broken_proxy
from tests.gateway.test_payouts import bank_account  # noqa: F401

# What each broken answer is to the adapters: no answer (the outcome unknown), or an
# error answer (a 502 from something in front of Razorpay).
EXPECTED = {CUT: errors.GatewayTimeout, BAD_GZIP: errors.GatewayTimeout, HTML_502: None}


def _assert_ambiguous(error, mode, key=None):
    assert isinstance(error, errors.GatewayUnavailable), repr(error)
    assert error.retryable and error.ambiguous
    if EXPECTED[mode]:
        assert isinstance(error, EXPECTED[mode]) and error.idempotency_key == key
    else:
        assert error.status_code == 502 and not isinstance(error, errors.GatewayTimeout)


@pytest.mark.parametrize("mode", [CUT, HTML_502, BAD_GZIP])
def test_payin_refund_answer_broken_is_typed_and_its_retry_makes_one_refund(
    sandbox_server, make_payin, sandbox, mode
):
    payin = make_payin()
    order = payin.create_order(40_000, receipt=f"r-broken-{mode}")
    payment_id = sandbox_server.checkout(order["id"])["razorpay_payment_id"]
    with broken_proxy(sandbox_server.url, match="/refund", mode=mode) as url:
        broken = make_payin(base_url=url, retries=1)  # its own retry: the same key
        with pytest.raises(errors.GatewayError) as lost:
            broken.create_refund(payment_id, 15_000, "rf-broken")
        _assert_ambiguous(lost.value, mode, "rf-broken")
        # Reads are broken alike (Send to wallet asks for the payment's refunds).
        with broken_proxy(sandbox_server.url, match="/refunds", method="GET", mode=mode) as read:
            with pytest.raises(errors.GatewayError) as unread:
                make_payin(base_url=read, retries=0).fetch_payment_refunds(payment_id)
            _assert_ambiguous(unread.value, mode)
    [made] = sandbox.store.refunds  # made once, though never heard of
    assert payin.create_refund(payment_id, 15_000, "rf-broken")["id"] == made
    assert list(sandbox.store.refunds) == [made]


@pytest.mark.parametrize("mode", [CUT, HTML_502, BAD_GZIP])
def test_payouts_answer_broken_is_typed_and_its_retry_pays_once(
    sandbox_server,
    make_payouts,
    sandbox,
    bank_account,
    mode,  # noqa: F811
):
    with broken_proxy(sandbox_server.url, match="/v1/payouts", mode=mode) as url:
        broken = make_payouts(base_url=url, retries=1)
        with pytest.raises(errors.GatewayError) as lost:
            broken.create_payout("po-broken", fund_account_id=bank_account["id"], amount=10_000)
        _assert_ambiguous(lost.value, mode, "po-broken")
    [made] = sandbox.store.payouts
    again = make_payouts().create_payout(
        "po-broken", fund_account_id=bank_account["id"], amount=10_000
    )
    assert again["id"] == made and list(sandbox.store.payouts) == [made]
