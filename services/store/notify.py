"""Tell every gateway process that keys or plans changed: bump the keys epoch in Redis.

The gateways read `<REDIS_KEY_PREFIX>:keys:epoch` with every rate-limit charge and drop their
cached key identities when it moves (gateway/keycache.py), so a rotated or revoked key fails on
the very next request everywhere. Call `bump` after the change is committed, before answering:
a gateway that re-resolves the key must already see the new state.

Without Redis there is one local gateway process, whose cache lives 2 seconds and is cleared
after its own `/environment/...` calls; a bump is then a no-op.

While Redis is unreachable a bump cannot be made, but the change is committed and stands (the
store answers it, and refusing a write already made would only mislead): gateways and proxies
stop using their caches while they cannot read Redis (`gateway/keycache.py`,
`services/proxy/credentials.py`), and this process owes the bump — a thread retries it every
`RETRY` seconds and, as it cannot tell which connections changed, bumps both epochs, which
drops every cached key and credential once Redis is back. Left over: a reader that made no
call during the whole outage keeps its entries until that retry lands (a second), never past
their own lifetime (10 s for keys, 30 s for credentials).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis

from common import redis_outage
from common.credential_versions import VERSION_LIFETIME, epoch_key, version_key
from common.settings import Settings

log = logging.getLogger("authport.store.notify")
EXTENSION = "authport_keys_epoch"
RETRY = 0.5  # seconds between attempts to make a bump owed since an outage


class Announcer:
    """The Redis client of one (URL, prefix) in this process, and the bumps it owes."""

    def __init__(self, redis_url: str, prefix: str):
        self.client = redis_outage.client(redis_url)
        self.owed = (f"{prefix}:keys:epoch", epoch_key(prefix))
        self.outage = redis_outage.Outage("Redis (change announcements)", "changes are announced when it is back, "
                                          "and caches are bypassed meanwhile", log)
        self._owing = False
        self._guard = threading.Lock()

    def send(self, commands) -> None:
        """Run `commands(pipeline)`; on failure owe a bump of both epochs, made when Redis is back."""
        if not self._owing and self.outage.call(lambda: self._run(commands), lambda: False):
            return
        with self._guard:
            if self._owing:
                return
            self._owing = True
        threading.Thread(target=self._settle, name="authport-announce", daemon=True).start()

    def _run(self, commands) -> bool:
        pipe = self.client.pipeline(transaction=False)
        commands(pipe)
        pipe.execute()
        return True

    def _settle(self) -> None:
        while True:
            time.sleep(RETRY)
            with self._guard:  # cleared before the bump: a change that still sees it owed is covered
                self._owing = False
            try:
                self._run(lambda pipe: [pipe.incr(name) for name in self.owed])
            except redis.RedisError as exc:
                self.outage.failed(exc)
                with self._guard:
                    if self._owing:
                        return  # a change failed meanwhile and started its own thread
                    self._owing = True
                continue
            self.outage.succeeded()
            log.warning("announced the changes made while Redis was unreachable (every cache dropped)")
            return


_announcers: dict[tuple[str, str], Announcer] = {}
_announcers_guard = threading.Lock()


def announcer(redis_url: str, prefix: str) -> Announcer:
    with _announcers_guard:
        found = _announcers.get((redis_url, prefix))
        if found is None:
            found = _announcers[(redis_url, prefix)] = Announcer(redis_url, prefix)
        return found


class KeysEpoch:
    def __init__(self, redis_url: str | None, prefix: str = "authport"):
        self.name = f"{prefix}:keys:epoch"
        self.announcer = announcer(redis_url, prefix) if redis_url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeysEpoch:
        return cls(settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)

    def bump(self) -> None:
        """Announce a committed change of keys or plans to every gateway."""
        if self.announcer is not None:
            self.announcer.send(lambda pipe: pipe.incr(self.name))

    def close(self) -> None:
        """Nothing to release: the client is shared by the process and may owe a bump."""


class ConnectionVersions:
    """Tell every proxy process that a connection's cached credentials are stale
    (common/credential_versions.py). Without Redis there is nothing to tell: a proxy without
    Redis does not cache."""

    def __init__(self, redis_url: str | None, prefix: str = "authport"):
        self.prefix = prefix
        self.announcer = announcer(redis_url, prefix) if redis_url else None

    def bump(self, environment_id: int | None = None, provider_config_key: str | None = None,
             connection_ids: list[str] | tuple[str, ...] = ()) -> None:
        """One connection (or several of one integration) changed; without names, possibly all."""
        if self.announcer is None:
            return

        def commands(pipe) -> None:
            if not connection_ids:
                pipe.incr(epoch_key(self.prefix))
            for connection_id in connection_ids:
                pipe.set(version_key(self.prefix, environment_id, provider_config_key, connection_id),
                         os.urandom(8).hex(), ex=VERSION_LIFETIME)

        self.announcer.send(commands)


_versions: dict[tuple[str | None, str], ConnectionVersions] = {}


def connection_changed(settings: Settings, environment_id: int | None = None, provider_config_key: str | None = None,
                       *connection_ids: str) -> None:
    """THE call after every committed write that changes what `proxy_credentials.for_outbound_call` returns:
    with names, those connections; without, every connection (an integration-wide change)."""
    slot = (settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)
    versions = _versions.get(slot)
    if versions is None:
        versions = _versions.setdefault(slot, ConnectionVersions(*slot))
    versions.bump(environment_id, provider_config_key, connection_ids)
