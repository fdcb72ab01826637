"""The RazorpayX request rate limit: a token bucket with an injected clock (no sleeping)."""

from datetime import date

import pytest

from portal.payouts import gateway as payouts_gateway
from portal.payouts import runs
from portal.payouts.ratelimit import LimitedGateway, TokenBucket
from tests.payouts.conftest import payouts_of


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    for _ in range(15):
        bucket.acquire()
    # 5 at once (the burst), then one every 0.2 s: 10 more take 2 s.
    assert round(clock.now - 1000.0, 6) == 2.0
    assert bucket.acquired == 15


def test_bucket_refills_while_idle_and_unlimited_never_waits():
    clock = FakeClock()
    bucket = TokenBucket(10, capacity=2, clock=clock, sleep=clock.sleep)
    bucket.acquire(), bucket.acquire()
    clock.now += 5  # idle: refills to the capacity only
    bucket.acquire(), bucket.acquire()
    assert clock.slept == []
    bucket.acquire()
    assert round(sum(clock.slept), 6) == 0.1
    free = TokenBucket(None, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        free.acquire()
    assert round(sum(clock.slept), 6) == 0.1


def test_limited_gateway_takes_a_token_per_call():
    clock = FakeClock()

    class Adapter:
        account_number = "x"

        def fetch_payout(self, payout_id):
            return {"id": payout_id, "at": clock.now}

    limited = LimitedGateway(Adapter(), TokenBucket(2, capacity=1, clock=clock, sleep=clock.sleep))
    times = [limited.fetch_payout(str(i))["at"] for i in range(5)]
    assert [round(t - 1000.0, 6) for t in times] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert limited.account_number == "x" and limited.calls == 5


def test_a_payout_run_honours_the_limit(app, world, x):
    providers = [world.ready_provider("WEEKLY", commission_bps=0) for _ in range(4)]
    for provider, user in providers:
        world.earn(provider, user, 100_000)
    clock = FakeClock()
    payouts_gateway.install(app, bucket=TokenBucket(2, capacity=1, clock=clock, sleep=clock.sleep))
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    # 4 payout requests at 2/s: the first at once, then every 0.5 s.
    assert round(clock.now - 1000.0, 6) == 1.5
    x.settle()
    assert all(payouts_of(p.id)[0].status == "PROCESSED" for p, _u in providers)


@pytest.mark.parametrize("rate, burst", [(0.5, None), (5, 0.5)])
def test_a_rate_or_burst_below_one_still_lets_calls_through(rate, burst):
    # A bucket that never holds a whole token would make every RazorpayX call wait forever.
    clock = FakeClock()

    def sleep(seconds):
        assert len(clock.slept) < 100, "still waiting for a token"
        clock.sleep(seconds)

    bucket = TokenBucket(rate, capacity=burst, clock=clock, sleep=sleep)
    for _ in range(3):
        bucket.acquire()
    assert bucket.acquired == 3
    assert clock.now - 1000.0 <= 2 / min(rate, 1) + 1e-6
