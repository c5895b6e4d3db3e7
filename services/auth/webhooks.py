"""Auth webhooks to the customer's backend, as Nango sends them (`type: 'auth'`).

The store writes each webhook to its outbox in the transaction of the event it reports (see
`services/store/webhook_outbox.py`); this module delivers them. Two signatures over the exact
body, with the environment's signing key: `X-Nango-Hmac-Sha256` = hex HMAC-SHA256(key, body), and
the legacy `X-Nango-Signature` = hex SHA-256(key + body).

Every auth worker runs one delivery loop on a daemon thread: it leases due webhooks from the store
(one worker's at a time, across processes and replicas), POSTs each through the egress layer and
records the outcome. A 2xx answer is delivered; any other answer, a timeout or an unreachable
receiver is retried after the next of WEBHOOK_RETRY_DELAYS, and after the last one the webhook is
failed (`python -m services.store.admin webhooks retry ID` queues it again). A worker that dies
mid-delivery loses its lease after WEBHOOK_LEASE_SECONDS and the webhook is sent again: at least
once. A flow never waits for a delivery nor fails because of one. Nothing here logs a URL, a body
or the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from common import metrics
from common.errors import ApiError
from common.outbox_client import OutboxClient
from common.startup import StartupError
from services.auth.provider_calls import Outbound

log = logging.getLogger("authport.auth.webhooks")
CONCURRENCY = 8  # deliveries in flight per worker: a receiver that never answers holds one slot
STORE_TIMEOUT = 10.0
RECORD_WAITS = (0.5, 1.0, 2.0)  # a store restarting loses no outcome; beyond, the lease expires and it is resent


def signature_headers(signing_key: str, raw: bytes) -> dict[str, str]:
    key = signing_key.encode()
    return {"Content-Type": "application/json",
            "X-Nango-Hmac-Sha256": hmac.new(key, raw, hashlib.sha256).hexdigest(),
            "X-Nango-Signature": hashlib.sha256(key + raw).hexdigest()}


class WebhookSender:
    """The delivery loop of each worker process: lease, send, record.

    Bound to the app's settings when the webhook blueprint is registered (`bind`); the loop starts
    in each worker gunicorn forks (a thread must not be inherited across fork), or by `start`."""

    def __init__(self, outbound: Outbound, settings=None):
        self.outbound = outbound
        self.settings = None
        self._wake = threading.Event()
        self._guard = threading.Lock()
        self._started_in: int | None = None
        self._busy = 0
        if settings is not None:
            self.bind(settings)

    def bind(self, settings) -> None:
        if settings.WEBHOOK_LEASE_SECONDS <= settings.WEBHOOK_TIMEOUT_SECONDS:
            raise StartupError("WEBHOOK_LEASE_SECONDS: must exceed WEBHOOK_TIMEOUT_SECONDS (a lease must outlive "
                               "the attempt it covers)")
        self.settings = settings
        self.delays = tuple(settings.WEBHOOK_RETRY_DELAYS)
        self.max_attempts = len(self.delays) + 1
        _bound.add(self)

    def start(self) -> None:
        """Start this process's loop (once)."""
        with self._guard:
            if self.settings is None or self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
            self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            self.store = OutboxClient(self.settings.service_url("store"), self.settings.INTERNAL_API_KEY,
                                      timeout=STORE_TIMEOUT, maxsize=CONCURRENCY + 2)
            self.pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="authport-webhook")
            self._busy = 0
            threading.Thread(target=self._loop, name="authport-webhook-outbox", daemon=True).start()

    def wake(self) -> None:
        """A webhook was just queued: look for due ones now rather than at the next poll."""
        self._wake.set()

    def _forked(self) -> None:
        self._guard, self._wake, self._started_in = threading.Lock(), threading.Event(), None
        self.start()

    def _loop(self) -> None:
        away = False  # logged when the store goes away and when it is back, not at every poll
        while True:
            self._wake.wait(self.settings.WEBHOOK_POLL_SECONDS)
            self._wake.clear()
            try:
                self._round()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a store that is away
                if not away:
                    log.warning("webhook outbox unreachable (%s); webhooks wait in it", type(exc).__name__)
                away = True
                continue
            if away:
                log.warning("webhook outbox reachable again")
            away = False

    def _round(self) -> None:
        with self._guard:
            free = CONCURRENCY - self._busy
        if free <= 0:
            return
        leased = self.store.lease(self.worker, free, self.settings.WEBHOOK_LEASE_SECONDS)
        with self._guard:
            self._busy += len(leased)
        for delivery in leased:
            self.pool.submit(self._serve, delivery)
        if len(leased) == free:
            self._wake.set()  # there may be more due

    def _serve(self, delivery: dict) -> None:
        try:
            self.deliver(delivery)
        except Exception:  # noqa: BLE001 - a slot must come back whatever one delivery does
            log.exception("auth webhook crashed: %s", delivery.get("label"))
        finally:
            with self._guard:
                self._busy -= 1
            self._wake.set()

    def deliver(self, delivery: dict) -> str:
        """One attempt at `delivery` and its recorded outcome: delivered, retrying or failed."""
        raw = delivery["body"].encode()
        headers = signature_headers(delivery["signing_key"], raw)
        started = time.monotonic()
        status, error = None, None
        try:
            answer = self.outbound.send("POST", delivery["url"], headers=headers, body=raw,
                                        timeout=self.settings.WEBHOOK_TIMEOUT_SECONDS)
            status = answer.status
            error = None if answer.ok else f"status_{answer.status}"
        except ApiError as exc:
            error = exc.code
        except Exception as exc:  # noqa: BLE001 - any failure of one attempt is retried
            error = type(exc).__name__
        duration_ms = (time.monotonic() - started) * 1000
        attempt = int(delivery["attempts"]) + 1
        outcome, retry_in = self._outcome(error, attempt)
        label = f"{delivery['label']} attempt={attempt}/{self.max_attempts}"
        if outcome == "delivered":
            log.info("auth webhook delivered: %s", label)
        elif outcome == "failed":
            log.error("auth webhook failed for good: %s %s", label, error)
        else:
            log.warning("auth webhook failed: %s %s; next attempt in %gs", label, error, retry_in)
        self._record(delivery["id"], outcome, status, error, duration_ms, retry_in)
        metrics.WEBHOOKS.labels(outcome).inc()
        return outcome

    def _outcome(self, error: str | None, attempt: int) -> tuple[str, float]:
        if error is None:
            return "delivered", 0.0
        if attempt >= self.max_attempts:
            return "failed", 0.0
        return "retrying", self.delays[attempt - 1]

    def _record(self, outbox_id: int, outcome: str, status, error, duration_ms: float, retry_in: float) -> None:
        for wait in (*RECORD_WAITS, None):
            try:
                self.store.record(outbox_id, self.worker, outcome, status=status, error=error,
                                  duration_ms=duration_ms, retry_in=retry_in)
                return
            except ApiError as exc:
                if wait is None or exc.status < 500:
                    log.warning("webhook outbox=%d: outcome not recorded (%s); it is sent again after its lease",
                                outbox_id, exc.code)
                    return
                time.sleep(wait)


_bound: weakref.WeakSet[WebhookSender] = weakref.WeakSet()


def _start_after_fork() -> None:
    for sender in list(_bound):
        sender._forked()


os.register_at_fork(after_in_child=_start_after_fork)


def connection_saved(app, saved: dict, auth_mode: str) -> None:
    """A flow created or overrode a connection; the store queued its webhook with it."""
    if saved.get("webhook_queued"):
        app.webhooks.start()  # a no-op in a worker whose loop runs already
        app.webhooks.wake()


def flow_failed(app, session: dict, error: ApiError) -> None:
    """A flow failed after the end user started it (Nango's failed-creation webhook: not sent yet)."""
