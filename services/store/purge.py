"""The purge job: what was deleted, or recorded, long enough ago leaves the database for good.

A soft-deleted connection can be restored for `RESTORABLE` (31 days); after that it is deleted,
and so is an integration soft-deleted as long ago once no connection row references it any more.
Nothing else depends on a connection row: end user, tags and metadata are its own columns, and
connect sessions name a connection only while they live (30 minutes). Operation records name
connections by text and are history: they follow their own retention,
`OPERATIONS_RETENTION_DAYS` (0 keeps them forever).

Each batch is its own short transaction, so a large backlog never holds a long one (nor, on
SQLite, the write lock). One round at a time across every store process and replica: a round
takes a lock without waiting (a Postgres advisory lock, or a lock file beside the SQLite
database) and a process that does not get it skips the round. Like the refresh locks
(`locks.py`, which says why), it does not use Redis, so an outage of Redis leaves purging alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from peewee import fn

from common.settings import Settings
from common.startup import database_error
from services.store import webhook_outbox
from services.store.db import database, is_postgres
from services.store.migrations import write_transaction
from services.store.models import Connection, Integration, Operation, WebhookOutbox

log = logging.getLogger("authport.store.purge")

RESTORABLE = timedelta(days=31)
BATCH = 1000
ADVISORY_KEY = 7_263_003  # one-key space, apart from start-up's 7_263_001 and the per-connection locks
FIRST_DELAY = 30.0  # the first round runs within this many seconds of the worker's first request

_memory_lock = threading.Lock()  # only for a SQLite database in memory: one process by definition


def naive_utc(moment: datetime) -> datetime:
    """As every table stores time: naive UTC (an aware moment is converted, a naive one is UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def purge(settings: Settings, now: datetime | None = None, *, batch: int = BATCH) -> dict:
    """Run one purge round unless another process is running one; return what was deleted."""
    now = naive_utc(now or datetime.now(UTC))
    with purge_lock(settings) as renew:
        if renew is None:
            return {"skipped": True, "connections": 0, "integrations": 0, "operations": 0}
        counts: dict = {"skipped": False}
        cutoff = now - RESTORABLE
        counts["connections"] = _in_batches(Connection, Connection.deleted_at < cutoff, batch, renew)
        referenced = Connection.alias()
        unreferenced = ~fn.EXISTS(referenced.select(referenced.id).where(referenced.integration == Integration.id))
        counts["integrations"] = _in_batches(Integration, (Integration.deleted_at < cutoff) & unreferenced,
                                             batch, renew)
        days = settings.OPERATIONS_RETENTION_DAYS
        counts["operations"] = (_in_batches(Operation, Operation.created_at < now - timedelta(days=days), batch,
                                            renew) if days else 0)
        # Delivered (or given up) webhooks are history too: they go with the operation records.
        # Logged, not counted in the answer, whose shape callers compare whole.
        outbox = (_in_batches(WebhookOutbox, webhook_outbox.past_keeping(now - timedelta(days=days)), batch, renew)
                  if days else 0)
    if outbox or any(counts[name] for name in ("connections", "integrations", "operations")):
        log.info("purged connections=%d integrations=%d operations=%d webhooks=%d", counts["connections"],
                 counts["integrations"], counts["operations"], outbox)
    return counts


def _in_batches(model, condition, batch: int, renew: Callable[[], None]) -> int:
    """Delete the rows matching `condition`, oldest ids first, `batch` rows per transaction."""
    total = 0
    while True:
        ids = model.select(model.id).where(condition).order_by(model.id).limit(batch)
        with write_transaction(database):
            done = model.delete().where(model.id.in_(ids)).execute()
        total += done
        if done < batch:
            return total
        renew()


@contextlib.contextmanager
def purge_lock(settings: Settings) -> Iterator[Callable[[], None] | None]:
    """Try once for the purge lock; yield a function that keeps it held, or None when it is taken."""
    if is_postgres(database.obj):
        with _advisory_lock() as renew:
            yield renew
    else:
        with _file_lock(database.obj.database) as renew:
            yield renew


def _keep() -> None:
    """Renewing a lock that lives as long as its holder: nothing to do."""


@contextlib.contextmanager
def _advisory_lock():
    # Session-level, on this thread's connection; every batch of the round runs on it too.
    database.connect(reuse_if_open=True)
    if not database.execute_sql("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0]:
        yield None
        return
    try:
        yield _keep
    finally:
        try:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
        except Exception:  # noqa: BLE001 - a connection that cannot unlock must not go back to the pool
            database.obj.manual_close()


@contextlib.contextmanager
def _file_lock(path: str):
    """flock on a file beside the database: held per open file, so across threads and processes."""
    if path == ":memory:":
        if not _memory_lock.acquire(blocking=False):
            yield None
            return
        try:
            yield _keep
        finally:
            _memory_lock.release()
        return
    fd = os.open(f"{path}.purge-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield _keep
    finally:
        os.close(fd)  # releases the lock, as does the death of the process


class PurgeJob:
    """Purge rounds every PURGE_INTERVAL_SECONDS on a daemon thread of the serving process.

    The thread starts at the first request a forked worker serves (`start_in_worker`), never in the
    process that built the app: gunicorn's master forks its workers from that one, and a thread or a
    pooled database connection must not be inherited across fork. An app served in the process that
    built it (tests' in-process clients) runs no rounds unless a test calls `start`.
    """

    def __init__(self, settings: Settings, db):
        self.settings = settings
        self.db = db
        self.interval = float(settings.PURGE_INTERVAL_SECONDS)
        self.built_in = os.getpid()
        self._guard = threading.Lock()
        self._started_in: int | None = None
        self._stop = threading.Event()

    def start_in_worker(self) -> None:
        """Start the rounds once per forked worker; cheap enough to call on every request."""
        if self._started_in != os.getpid() and os.getpid() != self.built_in:
            self.start()

    def start(self) -> None:
        """Start the rounds in this process (once), unless PURGE_INTERVAL_SECONDS is 0."""
        with self._guard:
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()  # also with rounds off: later requests skip the lock
            if self.interval <= 0:
                return
            self._stop = threading.Event()
            threading.Thread(target=self._loop, name="authport-purge", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        # Jittered, so that workers and replicas started together do not all try at the same moment.
        delay = min(self.interval, FIRST_DELAY) * random.uniform(0.5, 1.0)
        while not self._stop.wait(delay):
            self.run_round()
            delay = self.interval * random.uniform(0.9, 1.1)

    def run_round(self) -> dict | None:
        """One round on this thread's own connection; a failure is logged and the next round comes."""
        try:
            with self.db.connection_context():
                return purge(self.settings)
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one round
            # The class and, for a database, its one-line password-free message: never a value.
            log.error("purge round failed: %s", database_error(exc) or type(exc).__name__)
            return None
