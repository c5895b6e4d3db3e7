"""Per-account request limits over fixed 60-second windows, in memory or in Redis.

Redis counters are exact across any number of gateway processes: each request is one atomic
INCR of the account's counter for the current window, and the answer decides. In memory the
counters are exact only within one process, which is why the gateway refuses several workers
without Redis.

While Redis is unreachable, a request is let through without a charge (RATE_LIMIT_FAIL_OPEN,
the default) or refused with a 503 `rate_limit_unavailable`; failed authentications are
counted in this process's memory meanwhile, so key guessing stays limited per gateway process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from common import redis_outage
from gateway.keycache import NO_EPOCH

log = logging.getLogger("authport.gateway.ratelimit")
WINDOW = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window ends
    peeked: tuple = ()  # values of the keys read along with the charge (Redis only), bytes or None

    def headers(self, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        seconds = max(1, math.ceil(self.reset_at - now))
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            "RateLimit-Policy": f'"plan";q={self.limit};w={WINDOW}',
            "RateLimit": f'"plan";r={self.remaining};t={seconds}',
        }
        if not self.allowed:
            out["Retry-After"] = str(seconds)
        return out


def window_of(now: float) -> int:
    return int(now // WINDOW)


class MemoryCounters:
    """Counters of this process only; old windows are dropped as new ones start."""

    def __init__(self):
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def incr(self, key: str, window: int, amount: int = 1) -> int:
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            count = self._counts.get(key, 0) + amount
            self._counts[key] = count
            return count

    def incr_and_epoch(self, key: str, window: int, peek: tuple[str, ...] = ()) -> tuple[int, object, tuple]:
        return self.incr(key, window), NO_EPOCH, ()

    def peek(self, key: str, window: int) -> int:
        with self._lock:
            return self._counts.get(key, 0) if window == self._window else 0


# KEYS[1]: the window's counter, KEYS[2]: the keys epoch, KEYS[3…]: keys to read along (a
# missing one is false in Lua, nil in the answer); ARGV[1]: the counter's lifetime.
CHARGE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
local answer = {count}
for i = 2, #KEYS do answer[i] = redis.call('GET', KEYS[i]) end
return answer
"""


class RedisCounters:
    """Counters shared through Redis; one round trip (INCR + EXPIRE NX) per request."""

    def __init__(self, url: str, prefix: str = "authport"):
        self.prefix = prefix
        self.client = redis_outage.client(url, health_check_interval=30)
        self._charge = self.client.register_script(CHARGE_SCRIPT)

    def incr(self, key: str, window: int, amount: int = 1) -> int:
        name = f"{self.prefix}:rl:{key}:{window}"
        pipe = self.client.pipeline(transaction=False)
        pipe.incrby(name, amount)
        pipe.expire(name, WINDOW * 2, nx=True)
        return int(pipe.execute()[0])

    def incr_and_epoch(self, key: str, window: int, peek: tuple[str, ...] = ()) -> tuple[int, object, tuple]:
        """Charge, and read the keys epoch and the `peek` keys, in the same round trip: one script
        call (one command to pack, one reply to parse) costs less than a pipeline."""
        count, epoch, *peeked = self._charge(
            keys=[f"{self.prefix}:rl:{key}:{window}", f"{self.prefix}:keys:epoch", *peek], args=[WINDOW * 2])
        return int(count), epoch, tuple(peeked)

    def peek(self, key: str, window: int) -> int:
        value = self.client.get(f"{self.prefix}:rl:{key}:{window}")
        return int(value) if value else 0


class RateLimiter:
    """Charges requests to accounts and failed authentications to client addresses."""

    def __init__(self, redis_url: str | None, *, fail_open: bool, auth_failure_limit: int,
                 prefix: str = "authport"):
        self.counters = RedisCounters(redis_url, prefix) if redis_url else MemoryCounters()
        self.local = MemoryCounters()  # failed authentications while Redis is unreachable
        self.shared = redis_url is not None
        self.fail_open = fail_open
        self.auth_failure_limit = auth_failure_limit
        self.outage = redis_outage.Outage("rate-limit store", "letting requests through" if fail_open else
                                          "refusing requests with 503", log)

    def _count(self, key: str, window: int, *, peek: bool = False) -> int:
        """The counter after this request (or its value); this process's own while Redis is unreachable."""
        def count(counters):
            return counters.peek(key, window) if peek else counters.incr(key, window)
        return self.outage.call(lambda: count(self.counters), lambda: count(self.local))

    def _call(self, operation):
        """Run one counter operation; None while the counter store is unreachable."""
        return self.outage.call(operation, lambda: None)

    def charge(self, account_id: int, limit: int, now: float | None = None) -> Decision | None:
        """Count one request of the account; None means the counters are unreachable."""
        return self.charge_with_epoch(account_id, limit, now)[0]

    def charge_with_epoch(self, account_id: int, limit: int, now: float | None = None, peek: tuple[str, ...] = ()):
        """(decision, keys epoch): the epoch is a fresh object when Redis cannot tell it. The
        decision carries the values of the `peek` keys, read in the same round trip."""
        now = time.time() if now is None else now
        window = window_of(now)
        result = self._call(lambda: self.counters.incr_and_epoch(f"acct:{account_id}", window, peek))
        if result is None:
            return None, object()
        count, epoch, peeked = result
        decision = Decision(allowed=count <= limit, limit=limit, remaining=max(0, limit - count),
                            reset_at=(window + 1) * WINDOW, peeked=peeked)
        return decision, epoch

    def refund(self, account_id: int, now: float | None = None) -> None:
        """Take back a charge made for a key that turned out to be revoked."""
        window = window_of(time.time() if now is None else now)
        self._call(lambda: self.counters.incr(f"acct:{account_id}", window, -1))

    def _refusal(self, window: int) -> Decision:
        return Decision(allowed=False, limit=self.auth_failure_limit, remaining=0, reset_at=(window + 1) * WINDOW)

    def auth_blocked(self, client_ip: str, now: float | None = None) -> Decision | None:
        """A refusal when this address has failed authentication too often this window."""
        window = window_of(time.time() if now is None else now)
        if self._count(f"authfail:{client_ip}", window, peek=True) < self.auth_failure_limit:
            return None
        return self._refusal(window)

    def auth_failed(self, client_ip: str, now: float | None = None) -> Decision | None:
        """Count one failed authentication; the refusal to answer instead once the address is past the limit."""
        window = window_of(time.time() if now is None else now)
        if self._count(f"authfail:{client_ip}", window) <= self.auth_failure_limit:
            return None
        return self._refusal(window)

    @property
    def unavailable(self) -> bool:
        return self.outage.down
