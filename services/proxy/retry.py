"""When a proxied call is tried again, and how long to wait first.

Retried: network failures, 5xx, 429, the caller's `Retry-On` codes, the provider's
`proxy.retry.error_code` list ("5xx", "403", "500-502") and answers whose rate-limit
`remaining` header says 0. The wait honours, in order, the provider's reset headers
(`proxy.retry.at`: epoch seconds or milliseconds, or a date; `proxy.retry.after`: seconds), then a
plain `Retry-After` (Nango ignores it unless configured; honouring it is what the upstream asks),
and otherwise grows exponentially with jitter. A wait that would overrun the call's deadline
ends the retries instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

MAX_WAIT = 600.0


def _code_matches(status: int, spec) -> bool:
    text = str(spec).strip().lower()
    if text.endswith("xx") and text[:-2].isdigit():
        return status // 100 == int(text[:-2])
    if "-" in text:
        low, _, high = text.partition("-")
        return low.isdigit() and high.isdigit() and int(low) <= status <= int(high)
    return text.isdigit() and int(text) == status


def retryable_status(status: int, headers: Mapping[str, str], retry_on: frozenset[int], provider_retry: dict) -> bool:
    if status >= 500 or status == 429 or status in retry_on:
        return True
    if any(_code_matches(status, spec) for spec in provider_retry.get("error_code") or []):
        return True
    remaining = provider_retry.get("remaining")
    return status >= 400 and isinstance(remaining, str) and headers.get(remaining, "").strip() == "0"


def _names(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _seconds_until(value: str, now: float) -> float | None:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return (number / 1000 if number > 1e11 else number) - now


def _seconds(value: str, now: float) -> float | None:
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return _seconds_until(text, now)


def announced_wait(headers: Mapping[str, str], provider_retry: dict, now: float | None = None) -> float | None:
    """The wait the upstream announced through the provider's headers or Retry-After, if any."""
    now = time.time() if now is None else now
    for name in _names(provider_retry.get("at")):
        if headers.get(name):
            wait = _seconds_until(headers[name], now)
            if wait is not None:
                return max(0.0, wait)
    for name in [*_names(provider_retry.get("after")), "retry-after"]:
        if headers.get(name):
            wait = _seconds(headers[name], now)
            if wait is not None:
                return max(0.0, wait)
    return None


def backoff(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: between half and all of base·2^(attempt-1)."""
    ceiling = min(MAX_WAIT, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def wait_before_retry(headers: Mapping[str, str] | None, attempt: int, provider_retry: dict, base: float) -> float:
    announced = announced_wait(headers or {}, provider_retry) if headers is not None else None
    return min(MAX_WAIT, announced) if announced is not None else backoff(attempt, base)
