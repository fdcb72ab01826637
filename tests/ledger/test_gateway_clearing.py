"""Issue #15, finding 1: the ledger check proves gateway clearing equals what the gateway
says it holds for us (captured − refunded − settled, from its own list APIs)."""

import pytest

from portal.extensions import db
from portal.gateway import get_payin
from portal.ledger import accounts as chart
from portal.ledger.check import (
    SETTLEMENT_ADJUSTMENTS_KIND,
    SETTLEMENT_KIND,
    verify_gateway_clearing,
)
from portal.ledger.cli import ledger_cli
from portal.ledger.service import credit, debit, post
from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay

LAKH = 100_000 * 100


@pytest.fixture
def paid(world, users, gateway):
    patient = users(world.patients[0])
    book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 10))])
    db.session.commit()
    return patient


def test_clearing_matches_the_gateway_and_a_forged_capture_is_caught(paid, gateway):
    position = get_payin().account_position()
    assert position["captured"] > 0 and position["refunded"] == position["settled"] == 0
    assert verify_gateway_clearing(position) == []

    # What the forged payment.captured used to post: money the gateway never held.
    post(
        "unapplied_payment",
        [debit(chart.GATEWAY_CLEARING, LAKH), credit(chart.patient_wallet(paid.id), LAKH)],
    )
    db.session.commit()
    [problem] = verify_gateway_clearing(get_payin().account_position())
    assert f"+{LAKH} paise unexplained" in problem


def test_settlements_the_ledger_has_not_posted_are_accounted_for(paid, gateway):
    position = get_payin().account_position()
    settled = {**position, "settled": position["captured"] - 500}
    assert verify_gateway_clearing(settled) == []  # settled but not posted: still ours
    short = {**position, "captured": position["captured"] - 100}
    assert "+100 paise unexplained" in verify_gateway_clearing(short)[0]


def test_the_check_command_reports_a_mismatch_and_an_unreachable_gateway(app, paid, gateway):
    runner = app.test_cli_runner()
    result = runner.invoke(ledger_cli, ["check"])
    assert result.exit_code == 0, result.output
    assert "gateway clearing matches" in result.output

    post(
        "unapplied_payment",
        [debit(chart.GATEWAY_CLEARING, LAKH), credit(chart.patient_wallet(paid.id), LAKH)],
    )
    db.session.commit()
    result = runner.invoke(ledger_cli, ["check"])
    assert result.exit_code == 1 and "unexplained" in result.output

    # The ledger by itself is sound: only the comparison with the gateway tells.
    result = runner.invoke(ledger_cli, ["check", "--no-gateway"])
    assert result.exit_code == 0 and "OK" in result.output


def test_an_unreachable_gateway_gets_a_clear_message(app, ctx):
    runner = app.test_cli_runner()
    saved = app.config["RAZORPAY_BASE_URL"], app.config.get("SANDBOX_INPROCESS")
    app.config.update(RAZORPAY_BASE_URL="http://127.0.0.1:9", RAZORPAY_RETRIES=0)
    app.config["SANDBOX_INPROCESS"] = False
    app.extensions.pop("gateway_adapters", None)
    try:
        result = runner.invoke(ledger_cli, ["check"])
    finally:
        app.config["RAZORPAY_BASE_URL"], app.config["SANDBOX_INPROCESS"] = saved
        app.config.pop("RAZORPAY_RETRIES", None)
        app.extensions.pop("gateway_adapters", None)
    assert result.exit_code == 3, result.output
    assert "the gateway could not be reached" in result.output
    assert "Traceback" not in result.output


def _gateway_settles(amount, settlement_id="setl_real"):
    """The gateway's position with one processed settlement of ``amount`` paise (gross)."""
    position = get_payin().account_position()
    return {
        **position,
        "settled": position["settled"] + amount,
        "settlements": {**position["settlements"], settlement_id: amount},
    }


def _settle_in_ledger(amount, key):
    post(
        SETTLEMENT_KIND,
        [debit(chart.BANK, amount), credit(chart.GATEWAY_CLEARING, amount)],
        idempotency_key=key,
    )
    db.session.commit()


def test_a_settlement_posted_that_the_gateway_never_made_is_caught(paid, gateway):
    """Review finding (HIGH): holds = captured − refunded − settled and "not posted yet" =
    settled − posted, so ``settled`` cancelled out and no settlement posting was ever
    compared with the gateway: ₹500 moved from clearing to the bank, the gateway reporting
    nothing settled, passed the check. Settlements are now compared by their id."""
    assert verify_gateway_clearing(get_payin().account_position()) == []
    _settle_in_ledger(50_000, "settlement:setl_forged")
    [problem] = verify_gateway_clearing(get_payin().account_position())
    assert "setl_forged" in problem and "50000" in problem
    assert "the gateway has no processed settlement" in problem


def test_a_settlement_posted_for_another_amount_than_the_gateways_is_caught(paid, gateway):
    _settle_in_ledger(50_000, "settlement:setl_real")
    assert verify_gateway_clearing(_gateway_settles(50_000)) == []  # as the gateway has it
    [problem] = verify_gateway_clearing(_gateway_settles(40_000))
    assert "setl_real" in problem and "50000" in problem and "40000" in problem
    # Posted without a settlement id at all: nothing to compare it with, so it is reported.
    _settle_in_ledger(100, None)
    problems = verify_gateway_clearing(_gateway_settles(50_000))
    assert len(problems) == 1 and "no settlement id" in problems[0], problems


def test_settlement_adjustments_are_compared_with_their_settlements_recon_rows(paid, gateway):
    """The adjustments term had the same blind spot: the ledger's own postings were added
    on both sides. Each ``settlement:<id>:adjustments`` posting now needs its settlement at
    the gateway and, where the recon rows are known, their adjusted total."""
    _settle_in_ledger(50_000, "settlement:setl_real")
    post(
        SETTLEMENT_ADJUSTMENTS_KIND,
        [debit(chart.GATEWAY_ADJUSTMENTS, 700), credit(chart.GATEWAY_CLEARING, 700)],
        idempotency_key="settlement:setl_real:adjustments",
    )
    db.session.commit()
    position = _gateway_settles(50_000)
    assert verify_gateway_clearing({**position, "adjustments": {"setl_real": -700}}) == []
    [problem] = verify_gateway_clearing({**position, "adjustments": {"setl_real": -200}})
    assert "setl_real" in problem and "-700" in problem and "-200" in problem
    [problem] = verify_gateway_clearing({**position, "adjustments": {}})
    assert "setl_real" in problem and "recon rows" in problem

    # One for a settlement the gateway never made is caught too.
    post(
        SETTLEMENT_ADJUSTMENTS_KIND,
        [debit(chart.GATEWAY_ADJUSTMENTS, 300), credit(chart.GATEWAY_CLEARING, 300)],
        idempotency_key="settlement:setl_forged:adjustments",
    )
    db.session.commit()
    problems = verify_gateway_clearing({**position, "adjustments": {"setl_real": -700}})
    assert len(problems) == 1 and "setl_forged" in problems[0], problems


class _Listing:
    """A list API of ``total`` items (newest first, count/skip pages), made as asked."""

    def __init__(self, total, make):
        self.total, self.make, self.calls = total, make, 0

    def all(self, params):
        self.calls += 1
        skip, count = params.get("skip", 0), params.get("count", 10)
        return {"items": [self.make(n) for n in range(skip, min(skip + count, self.total))]}


class _Client:
    def __init__(self, payments, refunds=0, settlements=0):
        self.payment = _Listing(
            payments, lambda n: {"id": f"pay_{n}", "amount": 100, "status": "captured"}
        )
        self.refund = _Listing(
            refunds, lambda n: {"id": f"rfnd_{n}", "amount": 10, "status": "processed"}
        )
        self.settlement = _Listing(
            settlements,
            lambda n: {"id": f"setl_{n}", "amount": 90, "fees": 10, "status": "processed"},
        )


def test_the_gateway_position_counts_every_item_of_a_busy_clinic():
    """Review finding: ``account_position`` read each list through ``_all(…,
    limit=100_000)``, which silently stopped at the newest 100,000 items: 100,050 captured
    payments made a position ₹50 short, and the check called it "unexplained" on a sound
    ledger. Every page is read now, to the end."""
    from portal.gateway.payin import RazorpayPayIn

    adapter = RazorpayPayIn("rzp_test_key", "secret", retries=0)
    adapter.client = _Client(100_050, refunds=250, settlements=120)
    try:
        position = adapter.account_position()
    finally:
        adapter.close()
    assert position["captured"] == 100_050 * 100
    assert position["refunded"] == 250 * 10
    assert position["settled"] == 120 * 100
    assert len(position["settlements"]) == 120 and position["settlements"]["setl_7"] == 100


def test_the_gateway_position_counts_an_item_once_when_a_new_one_shifts_the_pages():
    """The lists are newest first: a payment made while they are read pushes every older
    one a place down, so one is listed twice across two pages. Counted once, by its id."""
    from portal.gateway.payin import RazorpayPayIn

    class Shifting(_Listing):
        def all(self, params):
            if self.calls == 1:  # after the first page, a new payment at the top
                self.total += 1
                older = self.make
                self.make = lambda n: {"id": "pay_new", "amount": 100} if n == 0 else older(n - 1)
            return super().all(params)

    adapter = RazorpayPayIn("rzp_test_key", "secret", retries=0)
    client = _Client(150)
    client.payment = Shifting(150, client.payment.make)
    adapter.client = client
    try:
        position = adapter.account_position()
    finally:
        adapter.close()
    # pay_99 is on both pages; the new payment is not read (the next check's)
    assert position["captured"] == 150 * 100
