"""The payout capability's machines and its alert signal (no database needed for most)."""

import pytest

from portal import events
from portal.domain.states import (
    ATTEMPT_TO_PAYOUT,
    PAYOUT,
    PAYOUT_ATTEMPT,
    PAYOUT_RUN,
    InvalidTransition,
    PayoutAttemptStatus,
    PayoutRunStatus,
)
from portal.payouts.alerts import raise_payout_alert

A = PayoutAttemptStatus


class Row:
    def __init__(self, status):
        self.status = status


def test_an_attempt_follows_the_payout_machine_but_a_failure_is_final():
    for current in A:
        for target in A:
            if PAYOUT_ATTEMPT.can(current, target) and current != A.SENDING:
                # every attempt move is a payout move (or stays QUEUED)
                assert PAYOUT.can(ATTEMPT_TO_PAYOUT[current], ATTEMPT_TO_PAYOUT[target])
    assert PAYOUT_ATTEMPT.can(A.SENDING, A.QUEUED) and PAYOUT_ATTEMPT.can(A.QUEUED, A.PROCESSED)
    assert PAYOUT_ATTEMPT.is_final(A.FAILED) and PAYOUT_ATTEMPT.is_final(A.REVERSED)
    with pytest.raises(InvalidTransition):
        PAYOUT_ATTEMPT.move(Row("FAILED"), A.QUEUED)


def test_a_run_is_done_once():
    run = Row(PayoutRunStatus.OPEN)
    PAYOUT_RUN.move(run, PayoutRunStatus.DONE)
    assert run.status == "DONE"
    with pytest.raises(InvalidTransition):
        PAYOUT_RUN.move(run, PayoutRunStatus.OPEN)


def test_a_payout_alert_is_audited_and_sent_as_a_signal(ctx):
    heard = []

    def receiver(sender, **kwargs):
        heard.append((sender, kwargs))
        return ["notice"]

    events.payout_alert.connect(receiver)
    try:
        made = raise_payout_alert("HIGH", "Payout 7 failed 3 times", "Bank down")
    finally:
        events.payout_alert.disconnect(receiver)
    sender, kwargs = heard[0]
    assert sender == "payouts" and kwargs["severity"] == "HIGH"
    assert kwargs["kind"] == "PAYOUT_FAILED" and kwargs["message"] == "Bank down"
    assert "notice" in made
