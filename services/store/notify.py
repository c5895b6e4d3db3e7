"""Tell every gateway process that keys or plans changed: bump the keys epoch in Redis.

The gateways read `<REDIS_KEY_PREFIX>:keys:epoch` with every rate-limit charge and drop their
cached key identities when it moves (gateway/keycache.py), so a rotated or revoked key fails on
the very next request everywhere. Call `bump` after the change is committed, before answering:
a gateway that re-resolves the key must already see the new state.

Without Redis there is one local gateway process, whose cache lives 2 seconds and is cleared
after its own `/environment/...` calls; a bump is then a no-op. A Redis failure is logged and
not fatal: the change itself is committed, and the gateways' cache lifetime (10 s with Redis)
bounds how long a stale entry can live.
"""

from __future__ import annotations

import logging

import redis

from common.settings import Settings

log = logging.getLogger("authport.store.notify")
EXTENSION = "authport_keys_epoch"


class KeysEpoch:
    def __init__(self, redis_url: str | None, prefix: str = "authport"):
        self.name = f"{prefix}:keys:epoch"
        self.client = (redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
                       if redis_url else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeysEpoch:
        return cls(settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)

    def bump(self) -> None:
        """Announce a committed change of keys or plans to every gateway."""
        if self.client is None:
            return
        try:
            self.client.incr(self.name)
        except redis.RedisError as exc:
            # Never log the URL: it may carry the Redis password.
            log.error("could not announce a key or plan change to the gateways (%s: Redis unreachable); "
                      "their cached keys expire within 10 seconds", type(exc).__name__)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
