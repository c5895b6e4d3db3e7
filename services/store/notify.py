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
import os

import redis

from common.credential_versions import VERSION_LIFETIME, epoch_key, version_key
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


class ConnectionVersions:
    """Tell every proxy process that a connection's cached credentials are stale
    (common/credential_versions.py). Without Redis there is nothing to tell: a proxy without
    Redis does not cache. A Redis failure is logged; the proxies' entries live 30 s at most."""

    def __init__(self, redis_url: str | None, prefix: str = "authport"):
        self.prefix = prefix
        self.client = (redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
                       if redis_url else None)

    def bump(self, environment_id: int | None = None, provider_config_key: str | None = None,
             connection_ids: list[str] | tuple[str, ...] = ()) -> None:
        """One connection (or several of one integration) changed; without names, possibly all."""
        if self.client is None:
            return
        try:
            if not connection_ids:
                self.client.incr(epoch_key(self.prefix))
                return
            pipe = self.client.pipeline(transaction=False)
            for connection_id in connection_ids:
                pipe.set(version_key(self.prefix, environment_id, provider_config_key, connection_id),
                         os.urandom(8).hex(), ex=VERSION_LIFETIME)
            pipe.execute()
        except redis.RedisError as exc:
            log.error("could not announce a connection change to the proxies (%s: Redis unreachable); "
                      "their cached credentials expire within 30 seconds", type(exc).__name__)


_versions: dict[tuple[str | None, str], ConnectionVersions] = {}


def connection_changed(settings: Settings, environment_id: int | None = None, provider_config_key: str | None = None,
                       *connection_ids: str) -> None:
    """THE call after every committed write that changes what `outbound.for_outbound_call` returns:
    with names, those connections; without, every connection (an integration-wide change)."""
    slot = (settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)
    versions = _versions.get(slot)
    if versions is None:
        versions = _versions.setdefault(slot, ConnectionVersions(*slot))
    versions.bump(environment_id, provider_config_key, connection_ids)
