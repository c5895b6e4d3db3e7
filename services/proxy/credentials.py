"""The proxy's memory of `StoreClient.connection_credentials`, which a deleted connection or a
replaced credential stops at once.

Entries are keyed by (environment, provider_config_key, connection_id). Each call reads, with one
Redis MGET, the connection's version and the all-connections epoch that the store changes after
every committed write — or takes them from the gateway, which read them in its rate-limit round
trip for this call (`X-Authport-Credential-Versions`); see common/credential_versions.py and
services/store/notify.py. The entry is used only when both are unchanged since it was fetched,
it is younger than `TTL`, and its token is not yet within the provider's refresh buffer
(`fresh_for`, computed by the store, so refresh still happens there). The version is read
*before* the store is asked, so a write that lands during the fetch leaves an entry whose
version is already stale.

Without Redis (one local process) nothing is cached. While Redis is unreachable every call asks
the store, and every entry is dropped at the first failure: an entry fetched before the outage
cannot be proven current after it (a change made meanwhile could not be announced).
Errors (unknown or deleted connection, refresh backoff) are never cached.
"""

from __future__ import annotations

import logging
import time

from common import redis_outage
from common.credential_versions import epoch_key, version_key
from common.identity import Identity
from common.internal import StoreClient

log = logging.getLogger("authport.proxy.credentials")
TTL = 30.0  # seconds an entry is used at most, even when no change is announced
MAX_ENTRIES = 10_000


class CredentialCache:
    def __init__(self, store: StoreClient, redis_url: str | None, prefix: str = "authport", *, ttl: float = TTL):
        self.store = store
        self.prefix = prefix
        self.ttl = ttl
        self.epoch_name = epoch_key(prefix)
        self.client = redis_outage.client(redis_url) if redis_url else None
        self.outage = redis_outage.Outage("Redis (credential versions)", "the credential cache is bypassed", log)
        # slot -> (connection, version, epoch, monotonic deadline)
        self.entries: dict[tuple[int, str, str], tuple[dict, bytes | None, bytes | None, float]] = {}

    def get(self, identity: Identity, provider_config_key: str, connection_id: str,
            known: tuple[bytes | None, bytes | None] | None = None) -> dict:
        """The connection's credentials and proxy settings, from memory when provably current.

        `known`: (version, epoch) as the gateway read them from Redis for this very call; without
        it they are read here."""
        if self.client is None:
            return self.store.connection_credentials(identity, provider_config_key, connection_id)
        env = identity.environment_id
        slot = (env, provider_config_key, connection_id)
        if known is not None:
            version, epoch = known
            self.outage.succeeded()  # the gateway just read them from Redis
        else:
            names = version_key(self.prefix, env, provider_config_key, connection_id), self.epoch_name
            versions = self.outage.call(lambda: self.client.mget(*names), self._unreadable)
            if versions is None:
                return self.store.connection_credentials(identity, provider_config_key, connection_id)
            version, epoch = versions
        now = time.monotonic()
        entry = self.entries.get(slot)
        if entry is not None and entry[1] == version and entry[2] == epoch and now < entry[3]:
            return entry[0]
        connection = self.store.connection_credentials(identity, provider_config_key, connection_id)
        fresh_for = connection.get("fresh_for")
        lifetime = self.ttl if fresh_for is None else min(self.ttl, float(fresh_for))
        if lifetime > 0:
            if len(self.entries) >= MAX_ENTRIES and slot not in self.entries:
                self.entries.pop(next(iter(self.entries)))  # the oldest inserted
            self.entries[slot] = (connection, version, epoch, now + lifetime)
        else:
            self.entries.pop(slot, None)
        return connection

    def _unreadable(self) -> None:
        """Redis cannot tell whether an entry is current: none is (see the module's doc)."""
        self.entries.clear()

    def forget(self, identity: Identity, provider_config_key: str, connection_id: str) -> None:
        self.entries.pop((identity.environment_id, provider_config_key, connection_id), None)
