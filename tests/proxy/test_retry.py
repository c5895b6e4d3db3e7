"""Which answers are retried and how long the proxy waits (pure functions, no servers)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from services.proxy import retry

NOW = 1_800_000_000.0


@pytest.mark.parametrize("status,retry_on,provider,expected", [
    (503, frozenset(), {}, True), (429, frozenset(), {}, True), (404, frozenset(), {}, False),
    (409, frozenset({409}), {}, True), (403, frozenset(), {"error_code": ["403"]}, True),
    (418, frozenset(), {"error_code": ["4xx"]}, True), (501, frozenset(), {"error_code": ["500-502"]}, True),
    (400, frozenset(), {"error_code": ["500-502"]}, False),
])
def test_retryable_status(status, retry_on, provider, expected):
    assert retry.retryable_status(status, {}, retry_on, provider) is expected


def test_rate_limit_remaining_zero_is_retryable():
    provider = {"remaining": "x-ratelimit-remaining"}
    assert retry.retryable_status(403, {"x-ratelimit-remaining": "0"}, frozenset(), provider)
    assert not retry.retryable_status(403, {"x-ratelimit-remaining": "5"}, frozenset(), provider)


def test_waits_follow_the_provider_headers_then_retry_after():
    provider = {"at": ["x-ratelimit-reset"], "after": ["x-wait"]}
    assert retry.announced_wait({"x-ratelimit-reset": str(NOW + 7)}, provider, NOW) == 7
    assert retry.announced_wait({"x-ratelimit-reset": str((NOW + 3) * 1000)}, provider, NOW) == 3
    assert retry.announced_wait({"x-wait": "2.5"}, provider, NOW) == 2.5
    assert retry.announced_wait({"retry-after": "4"}, {}, NOW) == 4
    assert retry.announced_wait({"retry-after": formatdate(NOW + 9, usegmt=True)}, {}, NOW) == 9
    assert retry.announced_wait({"retry-after": "soon"}, {}, NOW) is None
    assert retry.announced_wait({"retry-after": "-5"}, {}, NOW) == 0


def test_backoff_grows_with_jitter():
    waits = [retry.backoff(attempt, 1.0) for attempt in (1, 2, 3, 4)]
    for attempt, wait in enumerate(waits, start=1):
        assert 2 ** (attempt - 1) / 2 <= wait <= 2 ** (attempt - 1)
