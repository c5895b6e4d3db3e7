"""Requests per minute and 429s, counted per account and environment and sent to the store.

The dashboard's Usage page charts them (`services/store/usage.py` adds up every gateway's counts).
Counting is a dict update under a lock on the request path; one background thread per worker
process (a greenlet under gevent) sends what was counted every INTERVAL seconds, and once more
when the worker exits. A send that fails is kept and tried again with the next one, up to
KEEP_MINUTES of counts; a gateway killed between two sends loses at most INTERVAL seconds of them.
The plan's limit is enforced by the rate limiter, never from these counts.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from common.errors import ApiError
from common.identity import Identity
from common.internal import StoreClient

log = logging.getLogger("authport.gateway.usage")
INTERVAL = 5.0
KEEP_MINUTES = 60  # counts kept while the store cannot take them; older ones are dropped
EXIT_BUDGET = 2.0


class UsageMeter:
    def __init__(self, store: StoreClient, *, interval: float = INTERVAL):
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, int, int], list[int]] = {}
        self._started = False
        self._wake = threading.Event()
        os.register_at_fork(after_in_child=self._forked)
        atexit.register(self.close)

    def count(self, identity: Identity, limited: bool, now: float | None = None) -> None:
        """One request of `identity`'s account in its environment: admitted, or refused with 429."""
        slot = (identity.account_id, identity.environment_id, int((time.time() if now is None else now) // 60))
        with self._lock:
            counts = self._counts.get(slot)
            if counts is None:
                counts = self._counts[slot] = [0, 0]
            counts[1 if limited else 0] += 1
        if not self._started:
            self._start()

    def flush(self) -> int:
        """Send what was counted; on failure keep it for the next send. How many rows were sent."""
        with self._lock:
            taken, self._counts = self._counts, {}
        if not taken:
            return 0
        rows = [{"account_id": a, "environment_id": e, "minute": m, "requests": c[0], "limited": c[1]}
                for (a, e, m), c in taken.items()]
        try:
            status, body = self.store.call("POST", "/internal/usage", {"rows": rows})
        except ApiError as error:
            status, body = error.status, None
        if status == 200:
            return len(rows)
        if status == 400:
            log.error("usage: the store refused %d row(s) of counts; they are dropped (%s)", len(rows), body)
            return 0
        self._restore(taken)
        return 0

    def close(self) -> None:
        """Send the last counts (the worker is exiting), within EXIT_BUDGET seconds."""
        if not self._counts:
            return
        done = threading.Event()

        def last():
            try:
                self.flush()
            finally:
                done.set()
        threading.Thread(target=last, name="authport-usage-exit", daemon=True).start()
        if not done.wait(EXIT_BUDGET):
            log.warning("usage: the last counts were not sent at exit")

    def _restore(self, taken: dict) -> None:
        oldest = int(time.time() // 60) - KEEP_MINUTES
        with self._lock:
            for slot, (requests, limited) in taken.items():
                if slot[2] < oldest:
                    continue
                counts = self._counts.setdefault(slot, [0, 0])
                counts[0] += requests
                counts[1] += limited

    def _start(self) -> None:
        self._started = True
        threading.Thread(target=self._run, name="authport-usage", daemon=True).start()

    def _forked(self) -> None:
        self._started = False
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._counts = {}

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad send
                log.exception("usage: sending the counts failed unexpectedly")
