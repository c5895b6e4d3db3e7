"""A Redis call with a stated fallback: what each Redis use does while Redis is unreachable.

Redis is never the only place anything is kept (README, "When Redis is unreachable"): each use
wraps its calls in one `Outage` per process, which answers the use's fallback instead of raising,
logs one warning when an outage starts and one line when Redis answers again, and for `RETRY`
seconds after a failure does not try Redis at all, so an outage costs one short timeout per
second and use rather than one per request. Clients made by `client` give up on a connection in
`CONNECT_TIMEOUT` and on a command in `COMMAND_TIMEOUT`: milliseconds, not the library's default
of waiting forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

CONNECT_TIMEOUT = 0.25  # seconds; Redis sits next to the processes, an answer takes a millisecond
COMMAND_TIMEOUT = 0.5
RETRY = 1.0  # seconds without a try after a failure

T = TypeVar("T")


def client(url: str, *, socket_timeout: float | None = COMMAND_TIMEOUT, **options) -> redis.Redis:
    """A client that fails fast when Redis is unreachable (`socket_timeout=None` for pub/sub)."""
    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=socket_timeout,
                                **options)


class Outage:
    """The reachability of Redis as one use of it sees it, in this process."""

    def __init__(self, use: str, fallback: str, log: logging.Logger, retry: float = RETRY):
        self.use = use  # e.g. "rate-limit store": the log says "<use> unreachable (...); <fallback>"
        self.fallback = fallback
        self.log = log
        self.retry = retry
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._guard = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def skipping(self) -> bool:
        """True while Redis failed less than `retry` seconds ago: answer the fallback at once."""
        return self.down_since is not None and time.monotonic() < self._retry_at

    def call(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """`operation()`, or `fallback()` when Redis fails or failed a moment ago."""
        if self.skipping():
            return fallback()
        try:
            result = operation()
        except redis.RedisError as exc:
            self.failed(exc)
            return fallback()
        self.succeeded()
        return result

    def failed(self, exc: BaseException) -> None:
        """Record a failure; the first of an outage is logged (the class only: never the URL,
        which may carry the Redis password)."""
        now = time.monotonic()
        with self._guard:
            self._retry_at = now + self.retry
            if self.down_since is not None:
                return
            self.down_since = now
        self.log.warning("%s unreachable (%s); %s until it is back", self.use, type(exc).__name__, self.fallback)

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._guard:
            since, self.down_since = self.down_since, None
        if since is not None:
            self.log.warning("%s reachable again after %.1fs", self.use, time.monotonic() - since)
