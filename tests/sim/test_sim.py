"""The pytest entry of the seeded fault simulation: a few seeds on every run (CI runs 200
with ``python -m tests.sim``; see docs/testing.md), a replay that prints the same history,
and proof that a broken invariant is caught with its seed and steps."""

import pytest

from tests.sim.harness import SimFailure, run_seed

SEEDS = range(3)
STEPS = 25


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_history_keeps_every_invariant(sim_app, seed):
    sim = run_seed(sim_app, seed, steps=STEPS)
    assert len(sim.log) > STEPS  # the world, every step, the settling


def test_a_seed_replays_the_same_history(sim_app):
    first = run_seed(sim_app, 7, steps=15).log
    again = run_seed(sim_app, 7, steps=15).log
    assert first == again


def test_a_broken_invariant_names_the_seed_and_the_steps(sim_app, monkeypatch):
    """A wallet credited out of nowhere half-way through: caught at that step."""
    from portal.extensions import db
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post
    from tests.sim import harness

    real = harness.Sim.step_tick

    def tick_and_mint(self):
        text = real(self)
        post(
            "unapplied_payment",
            [
                debit(chart.GATEWAY_CLEARING, 100_000_00),
                credit(chart.patient_wallet(1), 100_000_00),
            ],
        )
        db.session.commit()
        return text + " (and a forged wallet credit)"

    monkeypatch.setattr(harness.Sim, "step_tick", tick_and_mint)
    with pytest.raises(SimFailure) as failure:
        for seed in range(5):
            run_seed(sim_app, seed, steps=STEPS)
    message = str(failure.value)
    assert f"seed {failure.value.seed} failed" in message
    assert "forged wallet credit" in message and "--seed" in message
    assert "gateway clearing was debited" in message  # caught at that step, not at the end


def test_a_payout_that_overdrew_is_caught_though_a_penalty_allows_the_balance(sim_app):
    """A penalty allows its payable below zero by its amount; a payout posted after it
    that paid the penalty's part out too ends there as well, and is caught by the balance
    it left (``invariants._payouts_into_debt``), not by the final one."""
    from portal.extensions import db
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post
    from tests.sim import invariants
    from tests.sim.world import reset

    payable = chart.provider_payable(1)
    with sim_app.app_context():
        reset(sim_app)
        post("booking_completed", [debit(chart.UNEARNED_FEES, 1_000), credit(payable, 1_000)])
        post("provider_penalty", [debit(payable, 250), credit(chart.PENALTY_REVENUE, 250)])
        post("payout_initiated", [debit(payable, 1_000), credit(chart.BANK, 1_000)])
        db.session.commit()
        assert invariants.balance(payable) == -250  # within the penalty's allowance
        (problem,) = invariants.no_negative_balances()
        assert problem.startswith("payout posting") and f"left {payable} at -250" in problem
