"""Resolved keys kept in the gateway's memory, so most requests skip the store's key lookup.

An entry is valid for `ttl` seconds and only under the keys epoch it was stored with. The store
bumps the epoch in Redis whenever a key is rotated or revoked or a plan changes; the gateway reads
it with every rate-limit charge, and a new value drops every entry at once. Without Redis the
single gateway process relies on the short TTL and on clearing itself after key routes. While
Redis is unreachable each charge answers a fresh epoch, so nothing cached is used: every
request asks the store, and a key rotated meanwhile fails at once.

Keys the store did not know are kept too, for as long and under the same epoch, so that a
client repeating a wrong or revoked key costs no store lookup per attempt.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from common.identity import Identity

NO_EPOCH = object()


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    epoch: object
    expires: float


class KeyCache:
    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self.epoch: object = NO_EPOCH
        self._entries: dict[bytes, _Entry] = {}
        self._unknown: dict[bytes, tuple[object, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _slot(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def get(self, key: str) -> Identity | None:
        entry = self._entries.get(self._slot(key))
        if entry is None or entry.epoch is not self.epoch or entry.expires < time.monotonic():
            return None
        return entry.identity

    def put(self, key: str, identity: Identity, epoch: object) -> None:
        """Keep `identity`, resolved while `epoch` was current; dropped if the epoch moved since."""
        with self._lock:
            if epoch is not self.epoch:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._slot(key)] = _Entry(identity, epoch, time.monotonic() + self.ttl)

    def put_unknown(self, key: str, epoch: object) -> None:
        """Remember that the store did not know `key` while `epoch` was current."""
        with self._lock:
            if epoch is not self.epoch:
                return
            if len(self._unknown) >= self.max_entries:
                self._unknown.clear()
            self._unknown[self._slot(key)] = (epoch, time.monotonic() + self.ttl)

    def known_unknown(self, key: str) -> bool:
        """True when the store did not know `key` a moment ago (same epoch, within the TTL)."""
        entry = self._unknown.get(self._slot(key))
        return entry is not None and entry[0] is self.epoch and entry[1] >= time.monotonic()

    def observe(self, epoch: object) -> bool:
        """Record the epoch seen in Redis; True (and every entry dropped) when it changed."""
        if epoch == self.epoch:
            return False
        with self._lock:
            self.epoch = epoch
            self._entries.clear()
            self._unknown.clear()
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._unknown.clear()
