"""A desk-paid visit cancelled by the clinic: the refund goes to the wallet and the desk
pays it out in cash (review finding: docs/refunds.md said to do that "with a wallet debit
adjustment", which left the money in ``cash_desk``, credited the wallet-credit expense
instead, and the console's net cash still counted it). The cash pay-out credits
``cash_desk``: the drawer is empty, and the console's net falls by it."""

from datetime import timedelta

from portal.db import utcnow
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.transactions import models as mm
from portal.transactions import queries as tq
from portal.transactions.filters import MovementFilter
from portal.wallet import cash
from tests.booking.factories import quoted_desk_payment
from tests.refunds.helpers import quoted_admin_cancel
from tests.web.booking.helpers import hold


def test_desk_refund_paid_back_in_cash_leaves_the_cash_desk(app, world):
    visit_id, item_id = hold(app, world)
    with app.app_context():
        admin = db.session.get(type(world.admin), world.admin.id)
        quoted_desk_payment(admin, visit_id, "R-1")
        assert balance(chart.CASH_DESK) == 52_950  # ₹500 + ₹25 platform fee + ₹4.50 GST
        quoted_admin_cancel(admin, item_id, "Doctor unwell today", mode="clinic")
        assert balance(chart.patient_wallet(world.patient.id)) == 52_950
        expense = balance(chart.WALLET_ADJUSTMENTS)
        done = cash.pay_out(
            admin,
            world.patient.id,
            52_950,
            "Refund of visit paid in cash, handed back at the desk",
            "R-1-BACK",
        )
        assert done.status == "APPLIED"
        assert balance(chart.patient_wallet(world.patient.id)) == 0
        # The drawer is empty: nothing of this visit is left to bank.
        assert balance(chart.CASH_DESK) == 0, balance(chart.CASH_DESK)
        assert balance(chart.WALLET_ADJUSTMENTS) == expense  # no wallet-credit expense moved

        # The console: a row of its own, cash out, and the net falls by it.
        row = tq.movement_for("wallet_adjustment", done.id)
        assert (row.type, row.bucket, row.amount) == (mm.CASH_PAYOUT, mm.BUCKET_CASH_OUT, 52_950)
        today = utcnow().date()
        f = MovementFilter(start=today - timedelta(days=1), end=today + timedelta(days=1))
        s = tq.summary(f)
        assert s.money_in == 52_950 and s.cash_out == 52_950
        assert s.net == 0  # in at the desk, back out at the desk
