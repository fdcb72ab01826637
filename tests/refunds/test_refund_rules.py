"""Refund rules as plain functions (no request, no database): a refund's parts."""

from types import SimpleNamespace

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
