"""Rate-limit decisions and headers, on in-memory counters and on the real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis as redis_lib

from gateway.ratelimit import WINDOW, MemoryCounters, RateLimiter, RedisCounters
from tests.support.databases import REDIS_URL, unavailable

T0 = 1_800_000_000.0 - 1_800_000_000.0 % WINDOW  # start of a window


@pytest.fixture(params=["memory", "redis"])
def limiter(request):
    if request.param == "memory":
        return RateLimiter(None, fail_open=True, auth_failure_limit=3)
    try:
        redis_lib.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis_lib.RedisError as exc:
        unavailable("Redis", exc)
    return RateLimiter(REDIS_URL, fail_open=True, auth_failure_limit=3, prefix=f"test-{uuid.uuid4().hex}")


def test_admits_exactly_the_limit_then_refuses(limiter):
    decisions = [limiter.charge(1, 5, now=T0 + 1) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert {d.reset_at for d in decisions} == {int(T0) + WINDOW}


def test_next_window_admits_again_and_accounts_are_separate(limiter):
    for _ in range(3):
        limiter.charge(1, 2, now=T0 + 5)
    assert not limiter.charge(1, 2, now=T0 + 59).allowed
    assert limiter.charge(2, 2, now=T0 + 59).allowed
    fresh = limiter.charge(1, 2, now=T0 + WINDOW + 0.5)
    assert fresh.allowed and fresh.remaining == 1


def test_headers_of_a_refusal(limiter):
    for _ in range(2):
        limiter.charge(1, 1, now=T0 + 50.2)
    decision = limiter.charge(1, 1, now=T0 + 50.2)
    headers = decision.headers(now=T0 + 50.2)
    assert headers["X-RateLimit-Limit"] == "1"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == str(int(T0) + WINDOW)
    assert headers["Retry-After"] == "10"
    assert headers["RateLimit-Policy"] == '"plan";q=1;w=60'
    assert headers["RateLimit"] == '"plan";r=0;t=10'


def test_retry_after_is_at_least_one_second(limiter):
    limiter.charge(1, 1, now=T0 + 59.99)
    decision = limiter.charge(1, 1, now=T0 + 59.99)
    assert decision.headers(now=T0 + 59.99)["Retry-After"] == "1"


def test_failed_authentications_block_an_address(limiter):
    for _ in range(3):
        assert limiter.auth_blocked("10.0.0.1", now=T0 + 1) is None
        limiter.auth_failed("10.0.0.1", now=T0 + 1)
    blocked = limiter.auth_blocked("10.0.0.1", now=T0 + 2)
    assert blocked is not None and not blocked.allowed
    assert limiter.auth_blocked("10.0.0.2", now=T0 + 2) is None
    assert limiter.auth_blocked("10.0.0.1", now=T0 + WINDOW + 1) is None


def test_memory_counters_forget_old_windows():
    counters = MemoryCounters()
    counters.incr("a", 1)
    counters.incr("b", 1)
    counters.incr("a", 2)
    assert counters.peek("a", 2) == 1 and counters.peek("b", 2) == 0 and counters.peek("a", 1) == 0


def test_unreachable_redis_fails_open_or_closed_as_configured():
    dead = "redis://127.0.0.1:1/0"
    assert RateLimiter(dead, fail_open=True, auth_failure_limit=3).charge(1, 5) is None
    closed = RateLimiter(dead, fail_open=False, auth_failure_limit=3)
    assert closed.charge(1, 5) is None and closed.unavailable and not closed.fail_open


def test_redis_counters_expire():
    try:
        counters = RedisCounters(REDIS_URL, prefix=f"test-{uuid.uuid4().hex}")
        counters.incr("acct:1", 7)
    except redis_lib.RedisError as exc:
        unavailable("Redis", exc)
    ttl = counters.client.ttl(f"{counters.prefix}:rl:acct:1:7")
    assert 0 < ttl <= 2 * WINDOW
