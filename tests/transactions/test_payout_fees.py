"""The console and RazorpayX's payout fees: a processed payout's row shows the fee and its
GST the ledger posted (``payout:<id>:fees``), and the summary counts it with the gateway
fees, so its net is the cash the business kept (docs/transactions.md)."""

from datetime import date

import sqlalchemy as sa

from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.payouts import gateway as payouts_gateway
from portal.payouts import runs
from portal.payouts.runs import ist_today
from portal.payouts.status import apply_remote
from portal.transactions import projection
from portal.transactions.detail import gateway_side
from portal.transactions.filters import MovementFilter
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.payouts.conftest import (  # noqa: F401
    _ledger_balances_after_each_test,
    account,
    mid_year,
    payout_fees,
    payouts_of,
    world,
    x,
)
from tests.transactions.conftest import payout_row


def _columns(row):
    return {
        c.name: getattr(row, c.name)
        for c in row.__table__.columns
        if c.name not in {"id", "version", "updated_at"}
    }


def _today():
    """The summary of the console's today: the tests reading it list ``mid_year`` first, so
    what they did is on the day it reads (across IST midnight it was on the day before)."""
    today = ist_today()
    return summary(MovementFilter(start=today, end=today))


def test_a_processed_payouts_fee_is_on_its_row_and_in_the_summary(mid_year, world, x):
    """Review finding: a processed ₹1,000 payout took ₹1,005.90 from the bank (RazorpayX's
    ₹5 fee and ₹0.90 GST on top), yet the summary netted −₹1,000 and its row showed no fee:
    the cash view overstated what the business kept by the fee of every payout."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    fees, tax = payout_fees()
    assert account(chart.BANK) == -(payout.net + fees)  # what left the bank

    row = payout_row(payout.id)
    assert (row.gateway_fee, row.gateway_tax, row.net) == (fees, tax, payout.net)
    s = _today()
    assert (s.payouts, s.gateway_fees) == (payout.net, fees)
    assert s.net == -(payout.net + fees) == account(chart.BANK)

    # `flask transactions rebuild` writes the same row.
    live = _columns(row)
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    projection.rebuild()
    assert _columns(payout_row(payout.id)) == live


def test_a_reversed_payouts_fee_comes_back_on_its_reversal(mid_year, world, x):
    """RazorpayX gives the fee back with the amount on a reversal (``fees_returned``). The
    payout's row keeps the fee it was charged (it counts where it was processed: review
    finding, a later reversal rewrote a closed month); its reversal's row takes it back,
    so the day's net is what the bank kept: nothing."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    fees, tax = payout_fees()
    assert payout_row(payout.id).gateway_fee == fees
    entity = dict(
        x.sandbox.store.payouts[payout.razorpay_payout_id],
        status="reversed",
        failure_reason="Beneficiary account closed",
    )
    assert apply_remote(entity)
    db.session.commit()
    row = payout_row(payout.id)
    assert (row.status, row.failed, row.bucket) == (PayoutStatus.REVERSED, True, "payout")
    assert (row.gateway_fee, row.gateway_tax) == (fees, tax)
    back = db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "payout_reversal", MoneyMovement.source_id == payout.id
        )
    )
    assert (back.gateway_fee, back.gateway_tax, back.net) == (-fees, -tax, -payout.net)
    s = _today()
    assert (s.payouts, s.gateway_fees, s.net) == (0, 0, 0)
    assert s.net == account(chart.BANK)


def test_a_payouts_detail_reads_razorpayx_through_the_engines_rate_limited_adapter(world, x, app):
    """The detail page's gateway side of a payout is the payout engine's RazorpayX adapter,
    a token taken (docs/payouts.md, "Rate limit"; review finding: it asked
    ``get_payouts()`` directly, past the bucket, an adapter the engine may not use)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    bucket = payouts_gateway.bucket(app)
    taken = bucket.acquired
    side = gateway_side(payout_row(payout.id))
    assert side.error is None and side.record["id"] == payout.razorpay_payout_id
    assert side.record["status"] == "processed"
    assert bucket.acquired == taken + 1
