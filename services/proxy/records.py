"""The proxy's operation records, sent to the store in batches, off the request path.

`Record.log()` (services/proxy/calls.py) hands each finished call to `Recorder.add`, which only
appends it to a bounded in-memory queue: no encoding, no I/O, nothing a proxied call could wait
on. One background thread per worker process (a greenlet under the proxy's gevent workers),
started by the first record, sends what waits to the store (`POST /internal/operations`) every
`INTERVAL` seconds, or as soon as `BATCH` records wait, so the store writes hundreds of rows per
transaction.

Nothing here can fail or slow a proxied call. A full queue drops new records and counts them
(one warning per interval). A batch the store cannot take because it is down is sent again
after each of `RETRY_WAITS`, then dropped with a warning; a batch it refuses (400) is dropped
at once, since sending it again cannot help. What is still queued when the worker exits is sent
once, best effort (`atexit`); a batch in flight at that moment, or a killed worker's queue, is
lost.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque

from common import metrics
from common.errors import ApiError
from common.internal import StoreClient

log = logging.getLogger("authport.proxy.records")
BATCH = 500
INTERVAL = 1.0
CAPACITY = 20_000
RETRY_WAITS = (1.0, 2.0, 4.0, 8.0)  # 15 s: a store restarting (a rolling deploy) loses nothing
EXIT_BUDGET = 5.0  # seconds the last flush at exit may take
# Below the store's 1 MiB body limit even if every character were sent as a 6-byte \u escape.
MAX_BODY = 900_000
# The store's limits (services/store/operations.py): a longer value is cut here, since one
# refused record would make the store refuse its whole batch.
LIMITS = {"provider_config_key": 255, "connection_id": 255, "path": 8192, "outcome": 512, "egress_address": 64}


class Recorder:
    """A bounded queue of finished calls' records and the thread that sends them to the store."""

    def __init__(self, store: StoreClient, *, batch: int = BATCH, interval: float = INTERVAL,
                 capacity: int = CAPACITY, retry_waits: tuple[float, ...] = RETRY_WAITS):
        self.store = store
        self.batch = batch
        self.interval = interval
        self.capacity = capacity
        self.retry_waits = retry_waits
        self.queue: deque = deque()
        self.dropped = 0
        self._reported = 0
        self._started = False
        self._wake = threading.Event()
        # The app is built before gunicorn forks its workers: each worker starts its own thread.
        os.register_at_fork(after_in_child=self._forked)
        atexit.register(self.close)

    def add(self, record) -> None:
        """Queue one finished call's record (anything with `fields()` and `ended`)."""
        queue = self.queue
        if len(queue) >= self.capacity:
            self.dropped += 1
            metrics.RECORDS.labels("proxy", "dropped").inc()
            return
        queue.append(record)
        metrics.RECORDS.labels("proxy", "queued").inc()
        if not self._started:
            self._start()
        elif len(queue) == self.batch:
            self._wake.set()

    def close(self) -> None:
        """Send what is still queued, once, within EXIT_BUDGET seconds (the worker is exiting)."""
        deadline = time.monotonic() + EXIT_BUDGET
        try:
            while self.queue and time.monotonic() < deadline:
                self._send(self._take(), retry_waits=())
        except Exception:  # noqa: BLE001 - exiting anyway: one line, not a traceback
            log.warning("operation records: %d record(s) not sent at exit", len(self.queue))

    def _start(self) -> None:
        self._started = True
        threading.Thread(target=self._run, name="authport-operation-records", daemon=True).start()

    def _forked(self) -> None:
        self._started = False
        self._wake = threading.Event()
        self.queue.clear()

    def _run(self) -> None:
        while True:
            triggered = self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._report_drops()
                while len(self.queue) >= self.batch:
                    self._send(self._take())
                if not triggered and self.queue:
                    self._send(self._take())
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad batch
                log.exception("operation records: sending a batch failed unexpectedly; it is dropped")

    def _take(self) -> list:
        queue = self.queue
        return [queue.popleft() for _ in range(min(self.batch, len(queue)))]

    def _send(self, records: list, retry_waits: tuple[float, ...] | None = None) -> None:
        waits = self.retry_waits if retry_waits is None else retry_waits
        for part in parts(encode(records)):
            self._post(part, waits)

    def _post(self, payload: list[dict], waits: tuple[float, ...]) -> None:
        for attempt in range(len(waits) + 1):
            try:
                self.store.record_operations(payload)
                metrics.RECORDS.labels("proxy", "written").inc(len(payload))
                return
            except ApiError as error:
                if error.status < 500:
                    log.error("operation records: the store refused a batch of %d (%s: %s); it is dropped",
                              len(payload), error.code, error.errors[:3] if error.errors else error.message)
                    metrics.RECORDS.labels("proxy", "dropped").inc(len(payload))
                    return
                if attempt == len(waits):
                    log.warning("operation records: the store could not take them (%s, %d attempts); "
                                "%d record(s) dropped", error.code, attempt + 1, len(payload))
                    metrics.RECORDS.labels("proxy", "dropped").inc(len(payload))
                    return
                time.sleep(waits[attempt])

    def _report_drops(self) -> None:
        if self.dropped != self._reported:
            log.warning("operation records: queue full (%d), %d record(s) dropped since the last warning",
                        self.capacity, self.dropped - self._reported)
            self._reported = self.dropped


def encode(records: list) -> list[dict]:
    """The records as the store takes them, with the wall-clock time each call ended."""
    offset = time.time() - time.monotonic()
    out = []
    for record in records:
        fields = record.fields()
        for name, limit in LIMITS.items():
            value = fields[name]
            if value is not None and len(value) > limit:
                fields[name] = value[:limit]
        fields["at"] = record.ended + offset
        out.append(fields)
    return out


def parts(payload: list[dict]) -> list[list[dict]]:
    """The payload cut so that no part's JSON can exceed MAX_BODY (long paths are rare)."""
    cut, current, size = [], [], 0
    for fields in payload:
        longest = 6 * sum(len(fields[name] or "") for name in LIMITS) + 300
        if current and size + longest > MAX_BODY:
            cut.append(current)
            current, size = [], 0
        current.append(fields)
        size += longest
    if current:
        cut.append(current)
    return cut
