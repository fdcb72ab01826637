"""Refund rules as plain functions (no request, no database): a refund's parts, and what
a failed refund allows an administrator."""

from types import SimpleNamespace

from portal.refunds.common import MSG_CLOSED_ACCOUNT, MSG_NOT_FAILED
from portal.refunds.failed import RETRY, TO_WALLET, actions
from portal.refunds.models import GATEWAY, WALLET
from portal.refunds.money import Split, split_of


def _row(amount, destination):
    return SimpleNamespace(amount=amount, destination=destination)


def test_a_refunds_parts_are_summed_by_where_each_row_went():
    rows = [_row(30_000, WALLET), _row(45_050, GATEWAY), _row(1, WALLET), _row(9_999, GATEWAY)]
    split = split_of(rows)
    assert split == Split(to_wallet=30_001, to_gateway=55_049)
    assert split.total == 85_050


def test_no_rows_are_no_parts():
    assert split_of([]) == Split(0, 0)
    assert split_of([]).total == 0


def test_one_destination_leaves_the_other_part_zero():
    assert split_of([_row(12_345, GATEWAY)]) == Split(0, 12_345)
    assert split_of([_row(500, WALLET)]) == Split(500, 0)


# --- what a refund allows an administrator (refunds.failed.actions) ------------------------


def _refund(status="FAILED", superseded=False, destination=GATEWAY, closed=False):
    patient = SimpleNamespace(is_closed=closed)
    return SimpleNamespace(
        status=status, superseded=superseded, destination=destination, patient=patient
    )


def test_a_failed_gateway_refund_can_be_retried_or_sent_to_the_wallet():
    can = actions(_refund())
    assert (can.retry, can.to_wallet, can.no_wallet) == (True, True, "")
    assert can.refusal(RETRY) is None and can.refusal(TO_WALLET) is None


def test_a_closed_accounts_failed_refund_can_be_retried_not_sent_to_the_wallet():
    can = actions(_refund(closed=True))
    assert (can.retry, can.to_wallet) == (True, False)
    assert can.no_wallet == "Account closed: no wallet"
    assert can.refusal(RETRY) is None
    assert can.refusal(TO_WALLET) == MSG_CLOSED_ACCOUNT


def test_anything_but_a_failed_gateway_refund_not_replaced_allows_nothing():
    for refund in (
        _refund(status="PROCESSED"),
        _refund(status="PENDING"),
        _refund(superseded=True),
        _refund(destination=WALLET),
    ):
        can = actions(refund)
        assert (can.retry, can.to_wallet, can.no_wallet) == (False, False, "")
        assert can.refusal(RETRY) == MSG_NOT_FAILED
        assert can.refusal(TO_WALLET) == MSG_NOT_FAILED
