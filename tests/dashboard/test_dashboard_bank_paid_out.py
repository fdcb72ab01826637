"""The dashboard counts wallet balances the clinic's bank sent to patients
(``portal.wallet.bank``) as a figure of their own beside the cash paid out at the desk (a
bank statement and the desk's drawer are reconciled apart), on the day applied; one
waiting for a second administrator is not. In the refunds' statement: no statement more."""

from datetime import datetime

import time_machine

from portal.dashboard import queries
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.wallet import adjustments as adj
from portal.wallet import bank, cash
from tests.querycount import counted_queries

NOW = datetime(2026, 6, 10, 15, 30, tzinfo=CLINIC_TZ)
NOTE = "Closing balance sent to the patient's account"


def test_bank_transfers_paid_out_are_a_figure_of_their_own(app, ctx, make_user):
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
        bank.pay_out(maker, patient.id, 2_000_25, NOTE, "412345678901")
        cash.pay_out(maker, patient.id, 1_000_00, NOTE, "D-1")
        waiting = bank.pay_out(maker, patient.id, 9_000_00, NOTE, "412345678902")
        assert waiting.status == "PENDING_APPROVAL"
        with counted_queries() as after:
            dash = queries.dashboard()
    today = dict(dash.windows())["today"]
    assert today["bank paid out"] == (1, 2_000_25)
    assert today["cash paid out"] == (1, 1_000_00)
    assert today["refunds"] == (0, 0)
    assert len(after) == len(before)
