"""A deleted connection brought back within 31 days, and purges on demand (one connection, or
every connection of one end user: a GDPR erasure request).

Restore makes the most recently deleted row of that connection id live again, as it was:
credentials, config, metadata, tags and end user were never removed by the soft delete. Only a
connection of the integration that is live now can come back (a deleted integration is not
restored with it). A purge deletes the connection's rows, live or deleted, with the sessions
that name it or its end user, and leaves one `connection.purged` record. The records of that
connection are history and stay, minus any personal data: every string the connection held
about its end user (ids, email, names, tags, metadata, config) is cut out of their detail and
path, and when the connection id itself contains one (ids like `user-42@example.com`), the
records name it by a pseudonym (`purged:<hash>`) instead.
"""

from __future__ import annotations

import hashlib
import json
import operator
from functools import reduce

from peewee import IntegrityError

from common.errors import ApiError, NotFound
from services.store import integrations, notify, operations
from services.store.connections import find, unknown_provider_config
from services.store.context import StoreContext
from services.store.db import database, is_postgres
from services.store.formatters import iso
from services.store.migrations import write_transaction
from services.store.models import Connection, ConnectSession, Integration, OAuthSession, Operation, utcnow
from services.store.purge import RESTORABLE

SHORTEST_NEEDLE = 4  # shorter strings ("US", "ok") are not cut out of other records' text
SCRUB_BATCH = 1000
CUT = "[purged]"


class ConnectionExists(ApiError):
    status = 409
    code = "connection_exists"


class RestoreWindowPassed(ApiError):
    status = 410
    code = "restore_window_passed"


def restore(ctx: StoreContext, env_id: int, provider_config_key: str, connection_id: str, *, actor: str,
            request_id: str | None = None) -> Connection:
    """Make the connection live again; 409 over a live one, 410 past RESTORABLE or once purged."""
    integration = integrations.find(env_id, provider_config_key)
    if integration is None:
        raise unknown_provider_config()
    now = utcnow()
    try:
        with write_transaction(database):
            if find(env_id, provider_config_key, connection_id) is not None:
                raise _exists(connection_id)
            row = (Connection.select().where((Connection.integration == integration)
                                             & (Connection.connection_id == connection_id)
                                             & Connection.deleted_at.is_null(False))
                   .order_by(Connection.deleted_at.desc()).first())
            if row is None:
                if _was_purged(env_id, provider_config_key, connection_id):
                    raise RestoreWindowPassed("This connection was purged: it cannot be restored.")
                raise NotFound("Failed to find a deleted connection with this id", code="unknown_connection")
            if now - row.deleted_at > RESTORABLE:
                raise RestoreWindowPassed(f"This connection was deleted on {iso(row.deleted_at)}: more than "
                                          f"{RESTORABLE.days} days ago, it can no longer be restored.")
            Connection.update(deleted_at=None, updated_at=now).where(Connection.id == row.id).execute()
            operations.record_connection_event(env_id, "restored", provider_config_key, connection_id, actor=actor,
                                               request_id=request_id, detail={"deleted_at": iso(row.deleted_at)})
    except IntegrityError:  # a concurrent import of the same id went live first
        raise _exists(connection_id) from None
    notify.connection_changed(ctx.settings, env_id, provider_config_key, connection_id)
    row.deleted_at, row.updated_at, row.integration = None, now, integration
    return row


def _exists(connection_id: str) -> ConnectionExists:
    return ConnectionExists(f"A live connection with id {connection_id!r} exists in this integration: delete it "
                            "first to restore the deleted one.")


def _was_purged(env_id: int, provider_config_key: str, connection_id: str) -> bool:
    return (Operation.select(Operation.id).where(
        (Operation.environment == env_id) & (Operation.kind == "connection.purged")
        & (Operation.provider_config_key == provider_config_key) & (Operation.connection_id == connection_id))
        .exists())


def purge_connection(ctx: StoreContext, env_id: int, provider_config_key: str, connection_id: str, *, actor: str,
                     request_id: str | None = None) -> int:
    """Delete every row of this connection (live or deleted) for good; return how many."""
    rows = _rows((Integration.unique_key == provider_config_key) & (Connection.connection_id == connection_id),
                 env_id)
    if not rows:
        raise NotFound("Failed to find connection", code="unknown_connection")
    with write_transaction(database):
        _purge(env_id, provider_config_key, connection_id, rows, actor, request_id, "request")
    notify.connection_changed(ctx.settings, env_id, provider_config_key, connection_id)
    return len(rows)


def purge_end_user(ctx: StoreContext, env_id: int, end_user_id: str, *, actor: str,
                   request_id: str | None = None) -> dict:
    """Purge every connection of one end user and their connect sessions; return the counts."""
    rows = _rows(Connection.end_user_id == end_user_id, env_id)
    groups: dict[tuple[str, str], list[Connection]] = {}
    for row in rows:
        groups.setdefault((row.integration.unique_key, row.connection_id), []).append(row)
    with write_transaction(database):
        for (key, connection_id), group in groups.items():
            _purge(env_id, key, connection_id, group, actor, request_id, "end_user")
        sessions = [s.id for s in ConnectSession.select(ConnectSession.id, ConnectSession.end_user)
                    .where(ConnectSession.environment == env_id) if (s.end_user or {}).get("id") == end_user_id]
        if sessions:
            ConnectSession.delete().where(ConnectSession.id.in_(sessions)).execute()
        counts = {"connections": len(groups), "connect_sessions": len(sessions)}
        operations.record(env_id, "end_user.purged", actor=actor, request_id=request_id, detail=counts)
    for key, connection_id in groups:
        notify.connection_changed(ctx.settings, env_id, key, connection_id)
    return counts


def _rows(condition, env_id: int) -> list[Connection]:
    return list(Connection.select(Connection, Integration).join(Integration)
                .where((Connection.environment == env_id) & condition))


def _purge(env_id: int, key: str, connection_id: str, rows: list[Connection], actor: str, request_id: str | None,
           reason: str) -> None:
    needles = sorted({text for row in rows for text in _personal(row)}, key=len, reverse=True)
    named = connection_id
    if any(needle in connection_id for needle in needles):
        named = "purged:" + hashlib.sha256(f"{env_id}\0{key}\0{connection_id}".encode()).hexdigest()[:16]
    _scrub_records(env_id, key, connection_id, needles, named)
    OAuthSession.delete().where((OAuthSession.environment == env_id) & (OAuthSession.provider_config_key == key)
                                & (OAuthSession.connection_id == connection_id)).execute()
    ConnectSession.delete().where((ConnectSession.environment == env_id) & (ConnectSession.reconnect_integration == key)
                                  & (ConnectSession.reconnect_connection_id == connection_id)).execute()
    Connection.delete().where(Connection.id.in_([row.id for row in rows])).execute()
    operations.record_connection_event(env_id, "purged", key, named, actor=actor, request_id=request_id,
                                       detail={"reason": reason, "rows": len(rows)})


def _personal(row: Connection):
    """Every string the connection holds about its end user (credentials are deleted, not searched)."""
    values = [row.end_user, row.end_user_id, row.organization_id, row.tags, row.metadata, row.connection_config,
              row.webhook_url_override]
    for text in _strings(values):
        if len(text) >= SHORTEST_NEEDLE:
            yield text


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _scrub_records(env_id: int, key: str, connection_id: str, needles: list[str], named: str) -> None:
    """Cut the needles out of the connection's records (their detail and path), in batches."""
    mine = ((Operation.environment == env_id) & (Operation.provider_config_key == key)
            & (Operation.connection_id == connection_id))
    if needles:
        # detail is JSON text: a needle appears there escaped (non-ASCII as \u…, a quote as \")
        patterns = {form for needle in needles for form in (needle, json.dumps(needle)[1:-1])}
        suspect = reduce(operator.or_, [column.contains(_like(pattern)) for pattern in patterns
                                        for column in (Operation.detail.cast("TEXT"), Operation.path)])
        last = 0
        while True:
            batch = list(Operation.select(Operation.id, Operation.detail, Operation.path)
                         .where(mine & suspect & (Operation.id > last)).order_by(Operation.id).limit(SCRUB_BATCH))
            for record in batch:
                detail, path = _cut(record.detail, needles), _cut(record.path, needles)
                if detail != record.detail or path != record.path:
                    Operation.update(detail=detail, path=path).where(Operation.id == record.id).execute()
            if len(batch) < SCRUB_BATCH:
                break
            last = batch[-1].id
    if named != connection_id:
        Operation.update(connection_id=named).where(mine).execute()


def _like(text: str) -> str:
    """`text` for a LIKE pattern: Postgres treats backslash as its escape character, SQLite does not."""
    if not is_postgres(database.obj):
        return text
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cut(value, needles: list[str]):
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, CUT)
        return value
    if isinstance(value, dict):
        return {name: _cut(item, needles) for name, item in value.items()}
    if isinstance(value, list):
        return [_cut(item, needles) for item in value]
    return value
