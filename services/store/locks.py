"""Per-connection refresh locks that hold across every store process and replica: a Postgres
advisory lock, or on SQLite a byte-range lock of a file beside the database (one byte per
connection, so the processes on the machine exclude each other) behind an in-process lock
(record locks belong to the process, not to its threads).

The database is the one place every store process reaches, and it decides alone: Redis is not
used for these locks, so an outage of Redis cannot touch a refresh. A Redis lock in front of it
(as earlier versions took) was worse than none around an outage. Falling back from it splits
the replicas between two locks while some reach Redis and some do not, and a refresh token that
rotates must never be spent twice. And a Redis that hangs (rather than refusing connections)
runs the SET a timed-out client sent once it wakes up: a lock nobody holds blocks every refresh
of that connection until it expires.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator

from services.store.db import database, is_postgres

ADVISORY_CLASS = 7_263_002  # the first key of Authport's per-connection advisory locks
POLL = 0.05

_memory_locks: dict[int, threading.Lock] = {}
_memory_guard = threading.Lock()
_lock_files: dict[tuple[int, str], int] = {}  # (pid, path) -> descriptor, open for the process's life


@contextlib.contextmanager
def connection_lock(connection_pk: int, *, wait: float) -> Iterator[bool]:
    """Hold the lock of one connection; yields False when it could not be had within `wait` s."""
    if is_postgres(database.obj):
        acquired = _advisory(connection_pk, wait)
        try:
            yield acquired
        finally:
            if acquired:
                database.execute_sql("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_CLASS, connection_pk % 2**31))
        return
    deadline = time.monotonic() + wait
    with _memory_guard:
        lock = _memory_locks.setdefault(connection_pk, threading.Lock())
    if not lock.acquire(timeout=wait):
        yield False
        return
    try:
        path = database.obj.database
        if path == ":memory:":  # one process by definition
            yield True
            return
        fd = _lock_file(path)
        acquired = _poll(lambda: _try_range(fd, connection_pk), deadline)
        try:
            yield acquired
        finally:
            if acquired:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, connection_pk)
    finally:
        lock.release()


def _lock_file(path: str) -> int:
    # Never closed: closing any descriptor of a file drops every record lock the process holds on it.
    slot = (os.getpid(), path)
    fd = _lock_files.get(slot)
    if fd is None:
        fd = _lock_files[slot] = os.open(f"{path}.refresh-lock", os.O_RDWR | os.O_CREAT, 0o600)
    return fd


def _try_range(fd: int, connection_pk: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, connection_pk)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _advisory(connection_pk: int, wait: float) -> bool:
    # Session-level and released in `finally`, before the connection goes back to the pool.
    return _poll(lambda: database.execute_sql("SELECT pg_try_advisory_lock(%s, %s)",
                                              (ADVISORY_CLASS, connection_pk % 2**31)).fetchone()[0],
                 time.monotonic() + wait)


def _poll(attempt, deadline: float) -> bool:
    while True:
        if attempt():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
