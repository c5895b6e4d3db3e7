"""Per-connection locks that hold across every store process: Redis when NANGO_REDIS_URL is set,
else a Postgres advisory lock, else (the single local process on SQLite) a lock in memory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import redis

from services.store.db import database, is_postgres

ADVISORY_CLASS = 7_263_002  # the first key of Authport's per-connection advisory locks
POLL = 0.05

_memory_locks: dict[int, threading.Lock] = {}
_memory_guard = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return client


@contextlib.contextmanager
def connection_lock(connection_pk: int, *, redis_url: str | None, prefix: str, wait: float,
                    hold: float = 30.0) -> Iterator[bool]:
    """Hold the lock of one connection; yields False when it could not be had within `wait` s."""
    if redis_url:
        lock = _redis(redis_url).lock(f"{prefix}:lock:refresh:{connection_pk}", timeout=hold, blocking_timeout=wait)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(redis.RedisError):
                    lock.release()
    elif is_postgres(database.obj):
        acquired = _advisory(connection_pk, wait)
        try:
            yield acquired
        finally:
            if acquired:
                database.execute_sql("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_CLASS, connection_pk % 2**31))
    else:
        with _memory_guard:
            lock = _memory_locks.setdefault(connection_pk, threading.Lock())
        acquired = lock.acquire(timeout=wait)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()


def _advisory(connection_pk: int, wait: float) -> bool:
    # Session-level and released in `finally`, before the connection goes back to the pool.
    deadline = time.monotonic() + wait
    while True:
        row = database.execute_sql("SELECT pg_try_advisory_lock(%s, %s)",
                                   (ADVISORY_CLASS, connection_pk % 2**31)).fetchone()
        if row[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
