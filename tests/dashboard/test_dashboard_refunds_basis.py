"""The dashboard's "Refunds" is cash out (refunds through Razorpay), on the basis of the
"Money in" beside it (cash in: "the wallet part of a checkout is money already held",
docs/policy.md) and of the transactions console's refunds for the same days; refunds
credited to the wallet are a figure of their own, and the refund turnaround p50/p95
measures the Razorpay refunds only. Review finding: "Refunds" counted the wallet credits
too (no money leaves the business), and their instant turnaround (0 s) hid how long
patients wait for a Razorpay refund."""

from datetime import timedelta

import sqlalchemy as sa

from portal.dashboard.queries import dashboard
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.refunds.models import Refund
from portal.transactions.filters import MovementFilter
from portal.transactions.queries import summary
from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.refunds.helpers import book_and_pay, consult_and_lab, quoted_cancel, settle_refunds


def test_dashboard_refunds_are_on_the_same_basis_as_money_in(world, users, gateway, clock):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        consult_and_lab(world),
    )
    consult, lab = sorted(visit.items, key=lambda i: i.start_at)
    # One item back to the card (Razorpay), the other to the wallet by the patient's choice.
    quoted_cancel(users(world.patients[0]), visit.id, [consult.id])
    quoted_cancel(users(world.patients[0]), visit.id, [lab.id], prefer_wallet=True)
    settle_refunds(gateway)

    today = utcnow().astimezone(CLINIC_TZ).date()
    console = summary(MovementFilter(start=today - timedelta(days=29), end=today))
    board = dashboard()
    _count, refunded = board.series["refunds"].window(30)
    money_in = board.series["money in"].window(30)[1]
    assert money_in == console.money_in  # cash in: the same on both
    assert refunded == console.refunds, (refunded, console.refunds)  # cash out: not
    to_wallet = db.session.scalar(sa.select(Refund.amount).where(Refund.destination == "WALLET"))
    assert board.series["wallet refunds"].window(30) == (1, to_wallet)
    # The turnaround measures the patient's wait for Razorpay, not the instant wallet credit.
    assert board.refunds_measured == 1
