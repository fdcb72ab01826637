"""One retry schedule for both adapters (tenacity): typed gateway errors that are
``retryable`` are tried again after ``backoff`` × 2^(n−1) seconds, at most ``retries``
times. An error marked ``ambiguous`` (the request may have taken effect) is retried only
when the call is safe to repeat (``retry_ambiguous``: reads, or writes with an idempotency
key)."""

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from portal.gateway import errors


def with_retries(attempt, *, retries, backoff, sleep, retry_ambiguous=True):
    """Run ``attempt()`` (which raises typed gateway errors) under the retry schedule;
    the last error is raised as it is."""

    def worth_retrying(exc):
        return (
            isinstance(exc, errors.GatewayError)
            and exc.retryable
            and (retry_ambiguous or not exc.ambiguous)
        )

    retrying = Retrying(
        retry=retry_if_exception(worth_retrying),
        stop=stop_after_attempt(max(int(retries), 0) + 1),
        wait=wait_exponential(multiplier=backoff),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)
