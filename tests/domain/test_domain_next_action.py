"""The next-action hint for every payment state (portal.domain.next_action)."""

from datetime import UTC, datetime, timedelta

import pytest

from portal.domain.next_action import Action, next_action
from portal.domain.policy import DEFAULT_POLICY
from portal.domain.states import PaymentStatus

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
EARLIER = NOW - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        (None, {}, Action.TAKE_PAYMENT),
        (None, {"confirmed": True}, Action.COMPLETE),  # a coupon took it all: nothing due
        (PaymentStatus.PENDING, {"expires_at": LATER}, Action.WAITING),
        (PaymentStatus.PENDING, {}, Action.WAITING),  # a desk or order without expiry
        (PaymentStatus.PENDING, {"expires_at": EARLIER}, Action.RENEW_LINK),
        (PaymentStatus.PENDING, {"expires_at": NOW}, Action.RENEW_LINK),
        (PaymentStatus.PENDING, {"attempts": 1, "failed_attempts": 1}, Action.RETRY),
        (PaymentStatus.PENDING, {"attempts": 2, "failed_attempts": 2}, Action.RETRY),
        (PaymentStatus.PENDING, {"attempts": 3, "failed_attempts": 3}, Action.INTERVENE),
        (PaymentStatus.PENDING, {"attempts": 5, "failed_attempts": 1}, Action.INTERVENE),
        (PaymentStatus.SUCCESSFUL, {}, Action.COMPLETE),
        (PaymentStatus.FAILED, {"attempts": 5, "failed_attempts": 5}, Action.INTERVENE),
        (PaymentStatus.EXPIRED, {"expires_at": EARLIER}, Action.RENEW_LINK),
        ("SOMETHING_NEW", {}, Action.REVIEW),
    ],
)
def test_next_action_for_every_payment_state(status, kwargs, expected):
    hint = next_action(status, now=NOW, **kwargs)
    assert hint.action == expected
    assert hint.label.lower().startswith(expected.value.split("_")[0].lower()[:4])


def test_every_payment_status_has_an_answer_that_is_not_review():
    for status in PaymentStatus:
        assert next_action(status, now=NOW).action != Action.REVIEW


def test_the_intervention_threshold_is_the_policy_s():
    strict = DEFAULT_POLICY.with_changes(payment_failures_for_intervention=1)
    assert next_action("PENDING", now=NOW, attempts=1, failed_attempts=1).action == Action.RETRY
    hint = next_action("PENDING", now=NOW, attempts=1, failed_attempts=1, policy=strict)
    assert hint.action == Action.INTERVENE and hint.urgent


@pytest.mark.parametrize(
    "status", [None, PaymentStatus.SUCCESSFUL, PaymentStatus.PENDING, PaymentStatus.EXPIRED]
)
def test_a_cancelled_visit_has_no_next_action(status):
    """Review finding: a cancelled visit said "Complete: payment confirmed" (or offered a
    new payment link); nothing is left to do about its money."""
    hint = next_action(status, now=NOW, expires_at=EARLIER, cancelled=True)
    assert hint.action == Action.NONE
    assert hint.label == "None — cancelled"
    assert not hint.urgent
