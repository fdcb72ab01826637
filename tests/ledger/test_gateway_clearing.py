"""Issue #15, finding 1: the ledger check proves gateway clearing equals what the gateway
says it holds for us (captured − refunded − settled, from its own list APIs)."""

import pytest

from portal.extensions import db
from portal.gateway import get_payin
from portal.ledger import accounts as chart
from portal.ledger.check import verify_gateway_clearing
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
