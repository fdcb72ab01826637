"""The comparison rules as plain functions (no database, no gateway)."""

import pytest

from portal.domain.states import InvalidTransition
from portal.reconcile.matching import (
    CAPTURE_WINDOW,
    MATCHED,
    Existing,
    Garbage,
    Outcome,
    compare,
    gateway_side,
    next_status,
    our_side,
    what_changed,
)

NOW = 1_780_300_000


def theirs(status="captured", amount=50_000, at=NOW - 7200, kind="payment"):
    return gateway_side(kind, {"id": "pay_1", "status": status, "amount": amount, "created_at": at})


def ours(status="SUCCESSFUL", amount=50_000, at=NOW - 7200, kind="payment"):
    return our_side(kind, "pay_1", amount, status, at, our_type=kind, our_id=1, visit_id=7)


@pytest.mark.parametrize(
    "o, t, expected",
    [
        (ours(), theirs(), ("matched", None)),
        (ours(), theirs(status="refunded"), ("matched", None)),
        # A payment's gateway time is its creation, ours its capture (up to
        # CAPTURE_WINDOW later): test_a_payment_is_captured_from_its_creation_to_...
        (ours(at=NOW - 7200 - 60), theirs(), ("matched", None)),
        (ours(at=NOW - 7200 - 61), theirs(), ("discrepancy", "time_differs")),
        (ours(amount=49_999), theirs(), ("discrepancy", "amount_differs")),
        (ours("PENDING"), theirs(), ("discrepancy", "status_differs")),
        (ours("PENDING"), theirs(at=NOW - 60), ("pending", None)),  # its webhook on the way
        (ours(), theirs(status="authorized"), ("pending", None)),
        (ours("PENDING"), theirs(status="authorized"), ("pending", None)),
        (None, theirs(), ("discrepancy", "missing_ours")),
        (None, theirs(at=NOW - 5), ("pending", None)),
        (ours(), None, ("discrepancy", "missing_gateway")),
        (ours("EXPIRED"), theirs(), ("discrepancy", "status_differs")),
    ],
)
def test_compare(o, t, expected):
    outcome = compare(o, t, now=NOW, tolerance=60, grace=3600)
    assert (outcome.status, outcome.reason) == expected


def test_a_normal_upi_payment_approved_three_minutes_after_it_was_created_matches():
    """Razorpay's payment life cycle (https://razorpay.com/docs/payments/payments/):
    ``created`` "The customer has provided the payment details ... not processed yet",
    then ``authorized`` when the bank authenticates the customer, then ``captured``. The
    payment entity's ``created_at`` (https://razorpay.com/docs/api/payments/entity/) is
    the first of these. A UPI collect request the patient approves on the phone 3
    minutes later is captured (auto-capture) then, and our row's ``paid_at`` is that
    capture. Both records agree (same id, amount, captured): an operator expects MATCHED,
    not a HIGH "time differs" discrepancy for an everyday payment (review rv_rzp)."""
    captured_at = NOW - 7200
    created_at = captured_at - 180  # the customer took 3 minutes to approve the collect
    theirs = gateway_side(
        "payment",
        {
            "id": "pay_29QQoUBi66xm2f",
            "entity": "payment",
            "amount": 50_000,
            "currency": "INR",
            "status": "captured",
            "order_id": "order_9A33XWu170gUtm",
            "method": "upi",
            "captured": True,
            "vpa": "gaurav.kumar@exampleupi",
            "notes": [],
            "fee": 1180,
            "tax": 180,
            "error_code": None,
            "error_description": None,
            "created_at": created_at,
        },
    )
    ours = our_side(
        "payment",
        "pay_29QQoUBi66xm2f",
        50_000,
        "SUCCESSFUL",
        captured_at,
        our_type="payment",
        our_id=1,
        visit_id=7,
    )
    outcome = compare(ours, theirs, now=NOW, tolerance=60)
    assert outcome.status == MATCHED, (outcome.status, outcome.reason, outcome.detail)


def test_a_payment_is_captured_from_its_creation_to_the_capture_window_after_it():
    """What "time differs" means for a payment: ours (the capture) is not before the
    gateway's creation, nor later than Razorpay captures a payment (a late authorisation
    polled for 3 days from its creation day, its webhook retried for a day:
    ``CAPTURE_WINDOW``), the tolerance either side. Beyond, the detail says how far the
    gateway's time lies from ours. A refund's or payout's times are one moment on both
    sides: the tolerance either side, as before."""
    created = NOW - 7 * 86400
    for captured, expected in [
        (created - 60, None),
        (created + 15 * 60, None),  # a netbanking login
        (created + 9 * 3600, None),  # a late authorisation, overnight
        (created + CAPTURE_WINDOW + 60, None),
        (created - 61, ("time_differs", {"seconds": 61})),  # captured before it was made
        (created + CAPTURE_WINDOW + 61, ("time_differs", {"seconds": -CAPTURE_WINDOW - 61})),
    ]:
        outcome = compare(ours(at=captured), theirs(at=created), now=NOW, tolerance=60)
        got = (outcome.reason, outcome.detail) if outcome.reason else None
        assert got == expected, captured - created
    refund = compare(
        ours("PROCESSED", at=created + 61, kind="refund"),
        theirs("processed", at=created, kind="refund"),
        now=NOW,
        tolerance=60,
    )
    assert (refund.reason, refund.detail) == ("time_differs", {"seconds": -61})


def test_a_payout_asked_several_times_matches_anywhere_from_its_first_request_to_its_last():
    """A payout (or refund) sent under one key at T and again at T + 10 min: RazorpayX made
    it at one of those requests (a 5xx made nothing; an unanswered one may have made it and
    the next was answered with it). Its time matches from the first to the latest request,
    with the tolerance either side; beyond that it is time_differs, by how far."""
    first, last = NOW - 7200, NOW - 6600
    sent = our_side(
        "payout", "pout_1", 10_000, "PROCESSED", last, our_type="payout_attempt", our_id=1,
        since=first,
    )  # fmt: skip
    assert sent.since == first and sent.as_dict()["since"] == first
    for at, expected in [
        (first - 60, None),
        (first + 300, None),
        (last + 60, None),
        (first - 61, ("time_differs", {"seconds": -61})),
        (last + 61, ("time_differs", {"seconds": 61})),
    ]:
        outcome = compare(sent, theirs("processed", 10_000, at, "payout"), now=NOW, tolerance=60)
        got = (outcome.reason, outcome.detail) if outcome.reason else None
        assert got == expected, at
    once = our_side("refund", "rfnd_1", 1, "PROCESSED", last, our_type="refund", our_id=2,
                    since=last)  # fmt: skip
    assert once.since is None and "since" not in once.as_dict()  # sent once: one time


def test_a_duplicate_wins_over_everything():
    assert compare(ours(), theirs(), now=NOW, duplicate=True).reason == "duplicate"


def test_refund_and_payout_vocabularies():
    refund = compare(ours("PROCESSED", kind="refund"), theirs("processed", kind="refund"), now=NOW)
    assert refund.status == "matched"
    payout = compare(ours("REVERSED", kind="payout"), theirs("processed", kind="payout"), now=NOW)
    assert (payout.status, payout.reason) == ("discrepancy", "status_differs")
    assert (
        compare(
            ours("PROCESSING", kind="payout"), theirs("processing", kind="payout"), now=NOW
        ).status
        == "pending"
    )


@pytest.mark.parametrize(
    "record",
    [
        "not a dict",
        {"id": "", "status": "captured", "amount": 1, "created_at": 1},
        {"id": "pay_1", "status": "teleported", "amount": 1, "created_at": 1},
        {"id": "pay_1", "status": "captured", "amount": 1.5, "created_at": 1},
        {"id": "pay_1", "status": "captured", "amount": 1, "created_at": None},
    ],
)
def test_garbage_is_refused(record):
    with pytest.raises(Garbage):
        gateway_side("payment", record)


def test_only_changes_are_written_and_resolved_cases_stay():
    t, o = theirs(), ours()
    matched = Outcome("matched")
    same = Existing(1, "matched", None, t.key(), o.key())
    assert next_status(None, matched, t, o) == "matched"
    assert next_status(same, matched, t, o) is None
    accepted = Existing(1, "resolved", None, t.key(), o.key(), "accepted")
    assert next_status(accepted, Outcome("discrepancy", "time_differs"), t, o) is None
    moved = theirs(amount=1)
    assert next_status(accepted, Outcome("discrepancy", "amount_differs"), moved, o) == (
        "discrepancy"
    )


def test_a_resolved_case_stays_while_the_gateway_record_means_the_same():
    """Refunded after its capture is captured all the same (as ``compare`` reads it): no
    news for a case an admin accepted or synced. A status that means something else is."""
    t, o = theirs(), ours()
    late = Outcome("discrepancy", "time_differs")
    for resolution in ("accepted", "synced"):
        closed = Existing(1, "resolved", None, t.key(), o.key(), resolution)
        assert next_status(closed, late, theirs(status="refunded"), o) is None
    accepted = Existing(1, "resolved", None, t.key(), o.key(), "accepted")
    failed = theirs(status="failed")
    assert next_status(accepted, Outcome("discrepancy", "status_differs"), failed, o) == (
        "discrepancy"
    )
    # The key itself keeps the status as seen (the screen shows it; a matched case is
    # rewritten with it).
    assert theirs(status="refunded").key() != t.key()
    assert (
        next_status(
            Existing(1, "matched", None, t.key(), o.key()),
            Outcome("matched"),
            theirs(status="refunded"),
            o,
        )
        == "matched"
    )


def test_the_case_machine_refuses_what_it_does_not_list():
    with pytest.raises(InvalidTransition):
        next_status(Existing(1, "matched", None, None, None), Outcome("resolved"), theirs(), ours())


def test_an_authorization_given_back_uncaptured_is_no_money_in():
    """Razorpay refunds an authorization nobody captured by itself: status "refunded"
    with ``captured`` false. No money came in, so it is neither a capture to compare nor
    one that a sync or a webhook may confirm; refunded after a capture still is one."""
    from portal.gateway.confirm import Unconfirmed, confirmed_payment, was_captured

    record = {"id": "pay_1", "amount": 50_000, "created_at": NOW, "order_id": "order_1"}
    given_back = {**record, "status": "refunded", "captured": False}
    refunded = {**record, "status": "refunded", "captured": True}
    assert gateway_side("payment", given_back).status == "failed"
    assert gateway_side("payment", refunded).status == "captured"
    assert not was_captured(given_back) and was_captured(refunded)

    class Payin:
        def __init__(self, found):
            self.found = found

        def fetch_payment(self, payment_id):
            return self.found

    with pytest.raises(Unconfirmed):
        confirmed_payment(Payin(given_back), record)
    assert confirmed_payment(Payin(refunded), record)["id"] == "pay_1"


def test_what_changed_words_the_sides_keys():
    assert what_changed("500|captured|100|", "700|captured|100|", "500|SUCCESSFUL|90|3", None) == (
        "the gateway's record changed (amount 500 → 700 paise); our record is gone"
    )
    assert what_changed("500|captured|100|", "500|failed|220|", "k", "k") == (
        "the gateway's record changed (status captured → failed, time +120 s)"
    )
    assert what_changed(None, "500|captured|100|", "k", "k") == "the gateway's record appeared"
    assert what_changed("k", "k", "k", "k") == "a side's record changed"
