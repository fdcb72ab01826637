"""Limits that hold across processes: the RazorpayX budget in Redis, the login limiter's
counters in Redis, and the client address behind trusted proxies (ProxyFix)."""

import os

import pytest
from redis import Redis

from portal import create_app
from portal.payouts import gateway as payouts_gateway
from portal.payouts.ratelimit import RedisTokenBucket, TokenBucket
from tests.plugin import DEFAULT_REDIS, _test_config, rate_limited


@pytest.fixture
def redis_url():
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    client = Redis.from_url(url)
    try:
        client.flushdb()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis is needed for this test and is not reachable at {url}: {exc}")
    yield url
    client.flushdb()
    client.close()


@pytest.mark.redis
def test_two_processes_share_one_razorpayx_budget(redis_url):
    # Two buckets on one key stand for two worker processes: 5 a second, burst 5, in all.
    one = RedisTokenBucket(Redis.from_url(redis_url), 5, 5, key="t:bucket")
    two = RedisTokenBucket(Redis.from_url(redis_url), 5, 5, key="t:bucket")
    for _ in range(5):
        assert one.acquire() == 0.0  # the burst
    # The other process finds no token left: it waits about a fifth of a second.
    waited = two.acquire()
    assert 0.05 < waited <= 0.5 and two.acquired == 1


@pytest.mark.redis
def test_with_redis_the_app_uses_the_shared_bucket(app, redis_url):
    payouts_gateway.uninstall(app)
    app.config["REDIS_URL"] = redis_url
    try:
        assert isinstance(payouts_gateway.bucket(app), RedisTokenBucket)
    finally:
        app.config["REDIS_URL"] = None
        payouts_gateway.uninstall(app)
    assert isinstance(payouts_gateway.bucket(app), TokenBucket)  # embedded: in memory
    payouts_gateway.uninstall(app)


@pytest.mark.redis
def test_login_attempts_are_counted_in_redis(app, redis_url):
    # The limiter with Redis as its storage (as with REDIS_URL).
    with rate_limited(
        app, RATELIMIT_STORAGE_URI=redis_url, LOGIN_RATE_LIMIT="3 per minute"
    ) as limited:
        client = limited.test_client()
        statuses = [
            client.post(
                "/auth/login", data={"email": "x@example.com", "password": "no"}
            ).status_code
            for _ in range(4)
        ]
        assert statuses[-1] == 429
        assert Redis.from_url(redis_url).keys("LIMITS*")  # the counters are in Redis


def _remote_addr_app(**config):
    app = create_app(_test_config("sqlite://", **config))

    @app.get("/_test/remote")
    def remote():
        from flask import request

        return request.remote_addr or ""

    return app


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one():
    app = _remote_addr_app(TRUSTED_PROXIES=1)
    answer = app.test_client().get(
        "/_test/remote",
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert answer.get_data(as_text=True) == "203.0.113.7"


def test_without_trusted_proxies_a_forwarded_header_is_ignored():
    app = _remote_addr_app(TRUSTED_PROXIES=0)
    answer = app.test_client().get(
        "/_test/remote",
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert answer.get_data(as_text=True) == "10.0.0.2"
