"""The dashboard counts cash: wallet balances handed to patients in cash at the desk are
cash out, their own figure beside the refunds (as a desk payment is money in), on the day
they were applied; one waiting for a second administrator is not (no cash left yet). In
the refunds' statement: the page costs no statement more."""

from datetime import datetime

import time_machine

from portal.dashboard import queries
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.wallet import adjustments as adj
from portal.wallet import cash
from tests.querycount import counted_queries

NOW = datetime(2026, 6, 10, 15, 30, tzinfo=CLINIC_TZ)
NOTE = "Closing balance handed over in cash"


def test_cash_paid_out_at_the_desk_is_a_figure_of_its_own(app, ctx, make_user):
    admin, admin2, admin3 = (
        make_user("admin", email=f"a{i}@example.com", name=f"Admin {i}") for i in range(3)
    )
    patient = make_user("patient", email="p@example.com", name="Meera")
    with time_machine.travel(NOW, tick=False):
        queries.forget_months()
        queries.dashboard()  # the closed months, kept per process
        with counted_queries() as before:
            queries.dashboard()
        for who in (admin2, admin3):
            adj.create_adjustment(
                db.session.get(type(who), who.id), patient.id, adj.CREDIT, 9_000_00, NOTE, "x"
            )
        maker = db.session.get(type(admin), admin.id)
        cash.pay_out(maker, patient.id, 1_500_50, NOTE, "D-1")
        waiting = cash.pay_out(maker, patient.id, 9_000_00, NOTE, "D-2")
        assert waiting.status == "PENDING_APPROVAL"
        with counted_queries() as after:
            dash = queries.dashboard()
    today = dict(dash.windows())["today"]
    assert today["cash paid out"] == (1, 1_500_50)
    assert today["refunds"] == (0, 0)
    assert len(after) == len(before)
