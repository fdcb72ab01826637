"""One retry schedule for both adapters (tenacity): typed gateway errors that are
``retryable`` are tried again after ``backoff`` × 2^(n−1) seconds, at most ``retries``
times. An error marked ``ambiguous`` (the request may have taken effect) is retried only
when the call is safe to repeat (``retry_ambiguous``: reads, or writes with an idempotency
key). The error finally raised carries ``after_unanswered`` when an earlier try raised an
ambiguous error: a 4xx on the adapter's own resend after a timeout must not be read as a
refusal of the first request (RazorpayX may be making it under the same key). No try
starts that could end past ``DEADLINE`` seconds from the first (a web request must answer
before gunicorn's worker timeout)."""

import time

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from portal.gateway import errors

# A call's tries, waits included, end within this many seconds: a web request waiting for
# Razorpay must answer before gunicorn's worker timeout (30 s) kills it with a bare 500.
DEADLINE = 20.0


def with_retries(
    attempt, *, retries, backoff, sleep, retry_ambiguous=True, timeout=0.0, deadline=DEADLINE
):
    """Run ``attempt()`` (which raises typed gateway errors) under the retry schedule;
    the last error is raised as it is. No further try starts when it could end after
    ``deadline`` seconds from the first (``timeout``: a try's own limit)."""
    started = time.monotonic()

    def worth_retrying(exc):
        return (
            isinstance(exc, errors.GatewayError)
            and exc.retryable
            and (retry_ambiguous or not exc.ambiguous)
        )

    unanswered = False

    def tried():
        nonlocal unanswered
        try:
            return attempt()
        except errors.GatewayError as exc:
            if unanswered:
                exc.after_unanswered = True
            unanswered = unanswered or (exc.retryable and exc.ambiguous)
            raise

    def past_deadline(state):
        next_wait = backoff * 2 ** (state.attempt_number - 1)
        return time.monotonic() - started + next_wait + timeout > deadline

    retrying = Retrying(
        retry=retry_if_exception(worth_retrying),
        stop=stop_after_attempt(max(int(retries), 0) + 1) | past_deadline,
        wait=wait_exponential(multiplier=backoff),
        sleep=sleep,
        reraise=True,
    )
    return retrying(tried)
