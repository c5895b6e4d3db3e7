"""Records of credential reads (`GET /connections/:id`), written in batches off the request path.

The credential read is the hottest call, so it never waits on an INSERT: `add` appends a tuple
to a bounded in-memory queue (no encoding, no I/O), and one daemon thread per store worker
process writes what waits every `INTERVAL` seconds, or as soon as `BATCH` wait, as multi-row
INSERTs in one transaction. The thread resolves key names (actors.key_name), not the request.

What a crash can lose: the records still queued when the process dies, that is the reads of the
last `INTERVAL` second (1 s) — more only if the database has been failing meanwhile, and never
more than `CAPACITY` records; a full queue drops new records and counts them (one warning per
interval). A batch the database refuses is retried at the next interval while it fits in the
queue. At a normal exit (SIGTERM, SIGINT) what is queued is written once, best effort.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections import deque
from datetime import datetime

from services.store import actors
from services.store.db import database
from services.store.migrations import write_transaction
from services.store.models import Connection, Integration, utcnow
from services.store.operations import ROWS_PER_STATEMENT, _insert

log = logging.getLogger("authport.store.records")
INTERVAL = 1.0
BATCH = 500
CAPACITY = 10_000
# A read's record detail, encoded once: (refresh_token shown, force_refresh) -> JSON.
READ_DETAIL = {(shown, forced): json.dumps({"refresh_token": shown, "force_refresh": forced}, separators=(",", ":"))
               for shown in (False, True) for forced in (False, True)}
COLUMNS = ("environment_id", "kind", "provider_config_key", "connection_id", "success", "created_at", "actor",
           "request_id", "detail")


class ReadRecorder:
    def __init__(self, *, interval: float = INTERVAL, batch: int = BATCH, capacity: int = CAPACITY):
        self.interval, self.batch, self.capacity = interval, batch, capacity
        self.queue: deque = deque()
        self.dropped = self._reported = 0
        self._pid: int | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one writer at a time: the thread, or the exit flush

    def add(self, environment_id: int, provider_config_key: str, connection_id: str, key_kind: str | None,
            key_id: int | None, request_id: str | None, detail: str, touch: tuple[int, datetime] | None = None
            ) -> None:
        """Queue one read; `detail` is already JSON (names and flags only). `touch` (row id, time):
        the read was answered from memory (services/store/read_cache.py) and the row's
        `last_fetched_at` is set with the batch, not by the read."""
        if self._pid != os.getpid():
            self._start()
        if len(self.queue) >= self.capacity:
            self.dropped += 1
            return
        self.queue.append((environment_id, provider_config_key, connection_id, key_kind, key_id, request_id,
                           utcnow(), detail, touch))
        if len(self.queue) == self.batch:
            self._wake.set()

    def _start(self) -> None:
        # After a fork (gunicorn's workers) the parent's thread and queue do not exist here.
        self._pid = os.getpid()
        self.queue.clear()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="authport-read-records", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write everything queued now; return how many records were written."""
        written = 0
        with self._lock:
            if self.dropped != self._reported:
                log.warning("credential read records: queue full (%d), %d record(s) dropped", self.capacity,
                            self.dropped - self._reported)
                self._reported = self.dropped
            while self.queue:
                taken = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
                try:
                    self._write(taken)
                except Exception as exc:  # noqa: BLE001 - the thread must outlive a database outage
                    log.error("credential read records: writing %d failed (%s); kept for the next try",
                              len(taken), type(exc).__name__)
                    room = self.capacity - len(self.queue)
                    self.dropped += max(0, len(taken) - room)
                    self.queue.extendleft(reversed(taken[:room]))
                    break
                written += len(taken)
        return written

    def _write(self, taken: list[tuple]) -> None:
        with database.connection_context(), write_transaction(database):
            known = _existing({(entry[0], entry[1], entry[2]) for entry in taken})
            rows = [(env, "credential.read", key, conn, True, at, actors.actor_of(kind, key_id), request_id, detail)
                    for env, key, conn, kind, key_id, request_id, at, detail, _ in taken if (env, key, conn) in known]
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                _insert(rows[start:start + ROWS_PER_STATEMENT], COLUMNS)
            _touch([entry[-1] for entry in taken if entry[-1] is not None])


def _touch(touches: list[tuple[int, datetime]]) -> None:
    """Set `last_fetched_at` of the rows read from memory to their latest read (never backwards)."""
    latest: dict[int, datetime] = {}
    for row_id, at in touches:
        if row_id not in latest or at > latest[row_id]:
            latest[row_id] = at
    for row_id, at in sorted(latest.items()):  # one lock order: two workers' batches cannot deadlock
        Connection.update(last_fetched_at=at).where(
            (Connection.id == row_id) & (Connection.last_fetched_at.is_null() | (Connection.last_fetched_at < at))
        ).execute()


def _existing(wanted: set[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
    """Those of the (environment, integration, connection id) that still have a row, live or deleted.

    A read queued just before its connection was purged must not write the connection id (which
    may be personal data) back after the purge: its record is dropped."""
    found: set[tuple[int, str, str]] = set()
    by_env: dict[int, set[str]] = {}
    for env, _, conn in wanted:
        by_env.setdefault(env, set()).add(conn)
    for env, ids in by_env.items():
        rows = (Connection.select(Integration.unique_key, Connection.connection_id).join(Integration)
                .where((Connection.environment == env) & Connection.connection_id.in_(sorted(ids))).tuples())
        found |= {(env, key, conn) for key, conn in rows}
    return found & wanted


recorder = ReadRecorder()


@atexit.register
def _flush_at_exit() -> None:
    if recorder._pid == os.getpid() and recorder.queue:
        try:
            recorder.flush()
        except Exception:  # noqa: BLE001 - exiting anyway
            log.warning("credential read records: %d not written at exit", len(recorder.queue))
