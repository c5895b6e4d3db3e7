"""Auth webhooks to the customer's backend, as Nango sends them (`type: 'auth'`).

The body is compact JSON with sorted keys and JS-style escaping, so that `JSON.stringify` of the
parsed body gives the same bytes back (the legacy signature is checked that way). Two signatures
over the exact body, with the environment's signing key: `X-Nango-Hmac-Sha256` = hex
HMAC-SHA256(key, body), and the legacy `X-Nango-Signature` = hex SHA-256(key + body).

Delivery runs on background threads, through the egress layer, retried with exponential backoff:
a flow never waits for it nor fails because of it. Nothing here logs a URL, a body or the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

from common.errors import ApiError
from services.auth.outbound import Outbound, describe_failure

log = logging.getLogger("authport.auth.webhooks")
ATTEMPTS = 4  # the first try and three retries
FIRST_DELAY = 0.5  # seconds before the first retry, doubled before each next one
MAX_DELAY = 10.0
CALL_TIMEOUT = 10.0
WORKERS = 4
QUEUE_SIZE = 10_000


def serialize(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def signature_headers(signing_key: str, raw: bytes) -> dict[str, str]:
    key = signing_key.encode()
    return {"Content-Type": "application/json",
            "X-Nango-Hmac-Sha256": hmac.new(key, raw, hashlib.sha256).hexdigest(),
            "X-Nango-Signature": hashlib.sha256(key + raw).hexdigest()}


def auth_body(report: dict, operation: str, success: bool, error: dict | None = None) -> dict:
    """Nango's auth webhook body for a connection the store described in `report`."""
    body = {"from": "nango", "type": "auth", "connectionId": report["connection_id"],
            "providerConfigKey": report["provider_config_key"], "authMode": report["auth_mode"],
            "provider": report["provider"], "environment": report["environment"], "operation": operation,
            "success": success}
    if report.get("tags"):
        body["tags"] = report["tags"]
    if report.get("end_user"):
        body["endUser"] = report["end_user"]
    if error is not None:
        body["error"] = {"type": str(error.get("type") or "unknown"),
                         "description": str(error.get("description") or "")}
    return body


@dataclass(frozen=True)
class Delivery:
    url: str
    signing_key: str
    raw: bytes
    label: str  # log-safe: operation and connection id


class WebhookSender:
    """A queue of deliveries served by daemon threads, started in the process that first sends (post-fork)."""

    def __init__(self, outbound: Outbound, *, attempts: int = ATTEMPTS, first_delay: float = FIRST_DELAY):
        self.outbound = outbound
        self.attempts, self.first_delay = attempts, first_delay
        self._queue: queue.Queue[Delivery] = queue.Queue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._pid: int | None = None

    def submit(self, delivery: Delivery) -> None:
        self._start()
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            log.error("auth webhook dropped (queue full): %s", delivery.label)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            for n in range(WORKERS):
                threading.Thread(target=self._serve, name=f"webhook-{n}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                self.deliver(delivery)
            except Exception:  # noqa: BLE001 - a worker must outlive any one delivery
                log.exception("auth webhook crashed: %s", delivery.label)

    def deliver(self, delivery: Delivery) -> bool:
        """POST until a 2xx answer or the attempts run out, waiting longer after each failure."""
        headers = signature_headers(delivery.signing_key, delivery.raw)
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self.outbound.send("POST", delivery.url, headers=headers, body=delivery.raw,
                                            timeout=CALL_TIMEOUT)
                if answer.ok:
                    log.info("auth webhook delivered: %s attempt=%d", delivery.label, attempt)
                    return True
                reason = f"status {answer.status}"
            except ApiError as exc:
                reason = describe_failure(exc)
            except Exception as exc:  # noqa: BLE001 - any failure of one attempt is retried
                reason = type(exc).__name__
            log.warning("auth webhook failed: %s attempt=%d/%d %s", delivery.label, attempt, self.attempts, reason)
            if attempt < self.attempts:
                time.sleep(min(self.first_delay * 2 ** (attempt - 1), MAX_DELAY))
        return False


def send(sender: WebhookSender, report: dict, operation: str, success: bool, error: dict | None = None) -> bool:
    """Queue the auth webhook of `report` when its environment has a webhook URL; True if queued."""
    url, key = report.get("webhook_url"), report.get("webhook_signing_key")
    if not url or not key:
        return False
    raw = serialize(auth_body(report, operation, success, error))
    sender.submit(Delivery(url, key, raw, f"operation={operation} connection={report['connection_id']}"))
    return True


def connection_saved(app, saved: dict, auth_mode: str) -> None:
    """A flow created or overrode a connection."""
    send(app.webhooks, {**saved, "auth_mode": saved.get("auth_mode") or auth_mode}, saved["operation"], True)


def flow_failed(app, session: dict, error: ApiError) -> None:
    """A flow failed after the end user started it (Nango's failed-creation webhook: not sent yet)."""
