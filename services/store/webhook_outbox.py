"""The webhook outbox: every webhook to a customer's backend, from the commit of its event until it
is delivered or given up. No Flask here; `webhook_views` exposes it to auth, which sends.

- A connection a flow saves and its webhook are written in one transaction
  (`with_auth_webhook` around `flows.capture`): a webhook exists exactly when its connection
  does, and a crash at any moment loses neither.
- Auth workers lease due rows (`lease`): one conditional UPDATE (Postgres: `FOR UPDATE SKIP
  LOCKED`; SQLite: under its write lock) marks each row as one worker's until `leased_until`, so
  two workers or replicas never send the same row at once. A worker that dies holding a lease
  loses it when it ends; the row is sent again then (at least once).
- The URL and the signing key are resolved at each lease, not stored: a webhook waiting for a
  receiver that is down goes to the URL the customer set since, signed with the current key, and
  the outbox holds no secret. The body holds no credential (see `common.webhook_body`), so it is
  stored as the exact bytes that are signed and sent.
- Every attempt's outcome is recorded on the row and as an operation record (kind `webhook`).
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from common.webhook_body import auth_body, serialize
from services.store import connections, notify, webhooks
from services.store.context import StoreContext
from services.store.db import database, is_postgres
from services.store.migrations import write_transaction
from services.store.models import Connection, Environment, Operation, WebhookOutbox, utcnow

log = logging.getLogger("authport.store.webhook_outbox")
OUTCOMES = ("delivered", "retrying", "failed")


def enqueue(ctx: StoreContext, env: Environment, conn: Connection, integration, operation: str, success: bool,
            error: dict | None = None) -> int | None:
    """Write the auth webhook about `conn` when its environment (or the connection) has a URL; its id.

    Runs in the caller's transaction when there is one."""
    report = webhooks.report(ctx, conn, integration, env)
    if not report["webhook_url"]:
        return None
    now = utcnow()
    row = WebhookOutbox.create(
        environment=env.id, event_type="auth", operation=operation, provider_config_key=integration.unique_key,
        connection_id=conn.connection_id, connection_uid=conn.uid,
        body=serialize(auth_body(report, operation, success, error)).decode(), state="pending",
        next_attempt_at=now, created_at=now)
    return row.id


def with_auth_webhook(capture):
    """Run `capture` (flows.capture) and write its webhook in the same transaction.

    The connection's change is announced to the proxies once more after the commit: the save
    announces it inside the transaction, where a proxy could still read the previous credentials."""

    @functools.wraps(capture)
    def captured(ctx: StoreContext, body: dict) -> dict:
        env_id = body["environment_id"]
        with write_transaction(database):
            report = capture(ctx, body)
            found = connections.find(env_id, report["provider_config_key"], report["connection_id"])
            queued = enqueue(ctx, Environment.get_by_id(env_id), found[0], found[1], report["operation"], True)
        notify.connection_changed(ctx.settings, env_id, report["provider_config_key"], report["connection_id"])
        return {**report, "webhook_queued": queued}

    return captured


def lease(ctx: StoreContext, worker: str, limit: int, seconds: float) -> list[dict]:
    """Take up to `limit` due rows for `worker` until `seconds` from now; what auth needs to send each."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    with write_transaction(database):
        if is_postgres(database):
            cursor = database.execute_sql(
                "UPDATE webhook_outbox SET leased_until = %s, leased_by = %s WHERE id IN ("
                " SELECT id FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at <= %s"
                " AND (leased_until IS NULL OR leased_until < %s) ORDER BY next_attempt_at, id LIMIT %s"
                " FOR UPDATE SKIP LOCKED) RETURNING id", (until, worker, now, now, limit))
            ids = [found[0] for found in cursor.fetchall()]
        else:  # BEGIN IMMEDIATE holds the only write lock: nobody leases between this SELECT and UPDATE
            due = _free(now) & (WebhookOutbox.next_attempt_at <= now)
            ids = [row.id for row in WebhookOutbox.select(WebhookOutbox.id).where(due)
                   .order_by(WebhookOutbox.next_attempt_at, WebhookOutbox.id).limit(limit)]
            WebhookOutbox.update(leased_until=until, leased_by=worker).where(WebhookOutbox.id.in_(ids)).execute()
        rows = list(WebhookOutbox.select().where(WebhookOutbox.id.in_(ids)).order_by(WebhookOutbox.id)) if ids else []
    return [found for found in (_delivery(ctx, row, worker) for row in rows) if found is not None]


def _free(now):
    return (WebhookOutbox.state == "pending") & (WebhookOutbox.leased_until.is_null()
                                                 | (WebhookOutbox.leased_until < now))


def _delivery(ctx: StoreContext, row: WebhookOutbox, worker: str) -> dict | None:
    """The row as auth sends it, with its URL and key as of now; None (and failed) without a URL."""
    env = Environment.get_by_id(row.environment_id)
    conn = Connection.get_or_none(Connection.uid == row.connection_uid) if row.connection_uid else None
    url = (conn.webhook_url_override if conn is not None else None) or env.webhook_url
    key = webhooks.signing_key(ctx, env) if url else None
    if not url or not key:
        record_attempt(row.id, worker, "failed", None, "no_webhook_url", 0.0, count=False)
        return None
    return {"id": row.id, "url": url, "signing_key": key, "body": row.body, "attempts": row.attempts,
            "label": f"outbox={row.id} operation={row.operation} connection={row.connection_id}"}


def record_attempt(outbox_id: int, worker: str, outcome: str, status: int | None, error: str | None,
                   duration_ms: float, retry_in: float = 0.0, *, count: bool = True) -> bool:
    """Record how one attempt ended (and an operation record of it); False when the row was no
    longer this worker's to change (delivered by another, or its lease taken after expiring)."""
    now = utcnow()
    with write_transaction(database):
        row = WebhookOutbox.get_or_none(WebhookOutbox.id == outbox_id)
        if row is None:
            return False
        attempts = row.attempts + (1 if count else 0)
        changes = {"attempts": attempts, "last_status": status, "last_error": error, "leased_until": None,
                   "leased_by": None, "last_attempt_at": now if count else row.last_attempt_at}
        owned = (WebhookOutbox.id == outbox_id) & (WebhookOutbox.state == "pending")
        if outcome == "delivered":  # whoever delivered it: no need to send it again
            changes.update(state="delivered", delivered_at=now)
        else:
            owned &= WebhookOutbox.leased_by == worker
            if outcome == "failed":
                changes["state"] = "failed"
            else:
                changes["next_attempt_at"] = now + timedelta(seconds=retry_in)
        changed = WebhookOutbox.update(**changes).where(owned).execute() == 1
        Operation.create(environment=row.environment_id, kind="webhook", provider_config_key=row.provider_config_key,
                         connection_id=row.connection_id, success=outcome == "delivered", error_code=error,
                         method="POST", status=status, outcome=outcome if changed else f"{outcome}:not_recorded",
                         attempts=attempts, duration_ms=round(duration_ms, 1), created_at=now,
                         detail={"outbox_id": row.id, "operation": row.operation, "event_type": row.event_type})
    if not changed:
        log.warning("webhook outbox=%d: outcome %s of worker %s not recorded (no longer its lease)",
                    outbox_id, outcome, worker)
    return changed


def refresh_failed(ctx: StoreContext, conn: Connection, integration, code: str, message: str) -> int | None:
    """Write the `refresh` failure webhook of `conn`."""
    with write_transaction(database):
        return enqueue(ctx, Environment.get_by_id(conn.environment_id), conn, integration, "refresh", False,
                       {"type": code, "description": message})


def listing(states: tuple[str, ...], limit: int) -> list[WebhookOutbox]:
    """Rows in one of `states`, newest first."""
    return list(WebhookOutbox.select().where(WebhookOutbox.state.in_(states))
                .order_by(WebhookOutbox.id.desc()).limit(limit))


def retry(outbox_id: int) -> bool:
    """Put a failed row back in the queue, due now, with every attempt ahead of it again."""
    with write_transaction(database):
        return WebhookOutbox.update(state="pending", attempts=0, next_attempt_at=utcnow(), leased_until=None,
                                    leased_by=None).where((WebhookOutbox.id == outbox_id)
                                                          & (WebhookOutbox.state == "failed")).execute() == 1


def past_keeping(cutoff):
    """Rows the purge job deletes: delivered, or given up, before `cutoff`."""
    return (((WebhookOutbox.state == "delivered") & (WebhookOutbox.delivered_at < cutoff))
            | ((WebhookOutbox.state == "failed") & (WebhookOutbox.created_at < cutoff)))
