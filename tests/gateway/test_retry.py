"""The adapters' one retry schedule (tenacity): what is retried, how often, how long apart."""

import pytest

from portal.gateway import errors
from portal.gateway.retry import with_retries


def failing(*outcomes):
    """An attempt that raises the given errors in turn, then answers "ok"."""
    left = list(outcomes)
    calls = []

    def attempt():
        calls.append(1)
        if left:
            raise left.pop(0)
        return "ok"

    return attempt, calls


def unavailable(ambiguous=True):
    error = errors.GatewayUnavailable("down")
    error.ambiguous = ambiguous
    return error


def test_retryable_errors_are_retried_with_doubling_waits():
    attempt, calls = failing(unavailable(), unavailable())
    waits = []
    assert with_retries(attempt, retries=3, backoff=0.5, sleep=waits.append) == "ok"
    assert len(calls) == 3 and waits == [0.5, 1.0]


def test_the_last_error_is_raised_after_the_retries():
    attempt, calls = failing(*[unavailable() for _ in range(5)])
    waits = []
    with pytest.raises(errors.GatewayUnavailable):
        with_retries(attempt, retries=2, backoff=1, sleep=waits.append)
    assert len(calls) == 3 and waits == [1, 2]


def test_a_refusal_is_not_retried():
    attempt, calls = failing(errors.BadRequest("no"))
    with pytest.raises(errors.BadRequest):
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None)
    assert len(calls) == 1


def test_an_ambiguous_error_is_retried_only_when_the_call_is_safe_to_repeat():
    attempt, calls = failing(errors.GatewayTimeout("late"))
    with pytest.raises(errors.GatewayTimeout):
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None, retry_ambiguous=False)
    assert len(calls) == 1
    attempt, calls = failing(unavailable(ambiguous=False))  # never reached Razorpay
    assert (
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None, retry_ambiguous=False)
        == "ok"
    )
    assert len(calls) == 2


def test_a_conflict_for_a_key_still_in_progress_is_retried():
    """Razorpay answers 409 to a request whose idempotency key is still being processed
    and says to retry it (https://razorpay.com/docs/api/refunds/normal-refunds-idempotent):
    it was a refusal, and a refund Razorpay was making went FAILED with an alert (review
    finding)."""
    body = {"error": {"code": "BAD_REQUEST_ERROR", "description": "Request is being processed"}}
    error = errors.from_response(409, body)
    assert isinstance(error, errors.GatewayUnavailable) and error.retryable
    assert isinstance(errors.from_response(400, body), errors.BadRequest)


def test_a_refusal_after_an_unanswered_try_says_so():
    """A 4xx on the adapter's own resend after a timeout says nothing about the first
    request, which Razorpay may be carrying out under the same key: the error tells the
    caller (review finding: a payout was failed and paid again under a new key)."""
    attempt, _ = failing(errors.GatewayTimeout("late"), errors.AuthenticationFailed("401"))
    with pytest.raises(errors.AuthenticationFailed) as caught:
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None)
    assert caught.value.after_unanswered
    attempt, _ = failing(errors.AuthenticationFailed("401"))
    with pytest.raises(errors.AuthenticationFailed) as caught:
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None)
    assert not caught.value.after_unanswered
    # A try that never reached Razorpay leaves nothing under the key.
    attempt, _ = failing(unavailable(ambiguous=False), errors.BadRequest("no"))
    with pytest.raises(errors.BadRequest) as caught:
        with_retries(attempt, retries=3, backoff=0, sleep=lambda s: None)
    assert not caught.value.after_unanswered


def test_no_try_starts_that_could_end_past_the_deadline(monkeypatch):
    """Three tries of 10 s and their waits took 31.5 s: gunicorn killed the web worker at
    30 s with a bare 500 (review finding). No try starts that could end past the deadline
    (20 s from the first)."""
    from portal.gateway import retry

    clock = {"now": 1000.0}
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock["now"])
    tries = []

    def attempt():
        tries.append(clock["now"])
        clock["now"] += 10.0  # a try that timed out after 10 s
        raise errors.GatewayTimeout("no answer")

    def sleep(seconds):
        clock["now"] += seconds

    with pytest.raises(errors.GatewayTimeout):
        with_retries(attempt, retries=3, backoff=0.5, sleep=sleep, timeout=10.0)
    assert len(tries) == 1 and clock["now"] - 1000.0 <= retry.DEADLINE
    tries.clear()

    def quick():  # a 503 at once: retried as before
        tries.append(clock["now"])
        raise errors.GatewayUnavailable("busy")

    with pytest.raises(errors.GatewayUnavailable):
        with_retries(quick, retries=3, backoff=0.5, sleep=sleep, timeout=10.0)
    assert len(tries) == 4
