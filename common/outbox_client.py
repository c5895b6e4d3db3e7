"""The store's webhook outbox routes, as auth's delivery loop calls them
(`services/store/webhook_views.py`)."""

from __future__ import annotations

from common.internal import ServiceClient, error_from


class OutboxClient(ServiceClient):
    def lease(self, worker: str, limit: int, lease_seconds: float) -> list[dict]:
        """Due webhooks now `worker`'s for `lease_seconds`: {id, url, signing_key, body, attempts, label}."""
        status, body = self.call("POST", "/internal/webhook-outbox/lease",
                                 {"worker": worker, "limit": limit, "lease_seconds": lease_seconds})
        if status != 200:
            raise error_from(status, body)
        return body["deliveries"]

    def record(self, outbox_id: int, worker: str, outcome: str, *, status: int | None, error: str | None,
               duration_ms: float, retry_in: float = 0.0) -> bool:
        """Record one attempt; False when the row was no longer this worker's to change."""
        answer, body = self.call("POST", f"/internal/webhook-outbox/{int(outbox_id)}/attempts", {
            "worker": worker, "outcome": outcome, "status": status, "error": error,
            "duration_ms": round(duration_ms, 1), "retry_in": retry_in})
        if answer != 200:
            raise error_from(answer, body)
        return bool(body["recorded"])
