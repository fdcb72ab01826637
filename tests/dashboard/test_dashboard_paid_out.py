"""The dashboard counts a wallet's balance paid out to its patient as cash out, each way a
figure of its own beside the refunds: handed over in cash at the desk (as a desk payment
is money in), or sent by the clinic's bank (``portal.wallet.bank``: the bank statement
and the drawer are reconciled apart); on the day applied, and one waiting for a second
administrator not at all (no money left yet). In the refunds' statement: the page costs
no statement more."""

from contextlib import contextmanager
from datetime import datetime

import time_machine

from portal.dashboard import queries
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.wallet import adjustments as adj
from portal.wallet import bank, cash
from tests.querycount import counted_queries

NOW = datetime(2026, 6, 10, 15, 30, tzinfo=CLINIC_TZ)
NOTE = "Closing balance paid out to the patient"


@contextmanager
def _paying_out(make_user):
    """Inside: (the maker, the patient with ₹18,000 in the wallet, the dashboard's
    statements before any pay-out), on NOW's clock; the months before already kept."""
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
        yield db.session.get(type(admin), admin.id), patient, before


def _today_after(before):
    with counted_queries() as after:
        dash = queries.dashboard()
    assert len(after) == len(before)
    return dict(dash.windows())["today"]


def test_cash_paid_out_at_the_desk_is_a_figure_of_its_own(app, ctx, make_user):
    with _paying_out(make_user) as (maker, patient, before):
        cash.pay_out(maker, patient.id, 1_500_50, NOTE, "D-1")
        waiting = cash.pay_out(maker, patient.id, 9_000_00, NOTE, "D-2")
        assert waiting.status == "PENDING_APPROVAL"
        today = _today_after(before)
    assert today["cash paid out"] == (1, 1_500_50)
    assert today["refunds"] == (0, 0)


def test_bank_transfers_paid_out_are_a_figure_of_their_own(app, ctx, make_user):
    with _paying_out(make_user) as (maker, patient, before):
        bank.pay_out(maker, patient.id, 2_000_25, NOTE, "412345678901")
        cash.pay_out(maker, patient.id, 1_000_00, NOTE, "D-1")
        waiting = bank.pay_out(maker, patient.id, 9_000_00, NOTE, "412345678902")
        assert waiting.status == "PENDING_APPROVAL"
        today = _today_after(before)
    assert today["bank paid out"] == (1, 2_000_25)
    assert today["cash paid out"] == (1, 1_000_00)
    assert today["refunds"] == (0, 0)
