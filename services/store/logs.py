"""Reading the log records of one environment: filters, newest-first pages with an opaque cursor,
one record, and a chronological export in chunks (never the whole range in memory).

Pages are keyset-paginated on (created_at, id), which the indexes of migration 8 serve: the
environment's (environment_id, created_at, id), and per connection (environment_id,
connection_id, created_at, id). The end user filter has no column of its own (records hold no
end-user data, so a GDPR purge leaves none behind): it matches the records of every connection,
live or deleted, that the end user has now.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import reduce
from typing import Annotated, Literal

from peewee import Tuple
from pydantic import Field, StringConstraints

from common.errors import ApiError, NotFound
from common.fields import ConnectionId, Short, UniqueKey
from common.validation import StrictQuery
from services.store.formatters import iso
from services.store.models import Connection, Integration, Operation

MAX_LIMIT = 500
EXPORT_CHUNK = 1000
MAX_END_USER_CONNECTIONS = 1000
PROXY_FIELDS = ("method", "path", "status", "outcome", "attempts", "egress_address", "bytes", "duration_ms")
Moment = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 moment (UTC unless it says otherwise) as naive UTC, or a 400 naming the parameter."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except (ValueError, OverflowError):
        raise ApiError(f"{name} must be an ISO 8601 time such as 2030-01-31T12:00:00Z", code="invalid_query_params",
                       errors=[{"code": "invalid_format", "path": [name], "message": "Invalid ISO 8601 time"}]) \
            from None


class LogFilters(StrictQuery):
    type: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None  # comma-separated
    integration: UniqueKey | None = None
    connection_id: ConnectionId | None = None
    end_user_id: Annotated[Short, StringConstraints(min_length=1)] | None = None
    outcome: Literal["success", "failure"] | None = None
    from_: Moment | None = Field(default=None, alias="from")
    to: Moment | None = None


class LogQuery(LogFilters):
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ExportQuery(LogFilters):
    from_: Moment = Field(alias="from")
    to: Moment


def _where(env_id: int, q: LogFilters):
    """The condition of the filters, or None when nothing can match (an end user without connections)."""
    where = Operation.environment == env_id
    if q.type:
        kinds = [kind.strip() for kind in q.type.split(",") if kind.strip()]
        where &= Operation.kind.in_(kinds)
    if q.integration:
        where &= Operation.provider_config_key == q.integration
    if q.connection_id:
        where &= Operation.connection_id == q.connection_id
    if q.outcome:
        where &= Operation.success == (q.outcome == "success")
    start, end = parse_moment(q.from_, "from"), parse_moment(q.to, "to")
    if start is not None:
        where &= Operation.created_at >= start
    if end is not None:
        where &= Operation.created_at < end
    if q.end_user_id:
        pairs = list(Connection.select(Integration.unique_key, Connection.connection_id).join(Integration)
                     .where((Connection.environment == env_id) & (Connection.end_user_id == q.end_user_id))
                     .distinct().limit(MAX_END_USER_CONNECTIONS).tuples())
        if not pairs:
            return None
        where &= reduce(operator.or_, [(Operation.provider_config_key == key) & (Operation.connection_id == conn)
                                       for key, conn in pairs])
    return where


def encode_cursor(record: Operation) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        moment, record_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(record_id, int) or isinstance(record_id, bool):
            raise ValueError
        return datetime.fromisoformat(moment), record_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError("cursor is not one this API returned", code="invalid_query_params",
                       errors=[{"code": "invalid_format", "path": ["cursor"], "message": "Invalid cursor"}]) from None


def page(env_id: int, q: LogQuery) -> tuple[list[Operation], str | None]:
    """One page, newest first, and the cursor of the next one (None on the last page)."""
    where = _where(env_id, q)
    if where is None:
        return [], None
    if q.cursor:
        where &= Tuple(Operation.created_at, Operation.id) < Tuple(*decode_cursor(q.cursor))
    rows = list(Operation.select().where(where).order_by(Operation.created_at.desc(), Operation.id.desc())
                .limit(q.limit + 1))
    if len(rows) > q.limit:
        return rows[:q.limit], encode_cursor(rows[q.limit - 1])
    return rows, None


MAX_ID = 2**63 - 1  # the widest id either database stores; a larger one names no record (and would not bind)


def one(env_id: int, record_id: int) -> Operation:
    record = None if record_id > MAX_ID else Operation.get_or_none(
        (Operation.id == record_id) & (Operation.environment == env_id))
    if record is None:
        raise NotFound("Log record not found", code="unknown_log_record")
    return record


def export(env_id: int, q: ExportQuery) -> Iterator[Operation]:
    """Every matching record, oldest first, read EXPORT_CHUNK at a time (keyset, short queries).

    The filters are checked here, before the answer starts: a bad one is a 400, not a broken stream."""
    where = _where(env_id, q)
    return iter(()) if where is None else _export_rows(where)


def _export_rows(where) -> Iterator[Operation]:
    after = None
    while True:
        condition = where if after is None else where & (Tuple(Operation.created_at, Operation.id) > Tuple(*after))
        rows = list(Operation.select().where(condition).order_by(Operation.created_at, Operation.id)
                    .limit(EXPORT_CHUNK))
        yield from rows
        if len(rows) < EXPORT_CHUNK:
            return
        after = (rows[-1].created_at, rows[-1].id)


def present(record: Operation, environment: str) -> dict:
    """A record as GET /logs shows it; a proxied call's own columns go into its detail."""
    detail = dict(record.detail or {})
    if record.kind == "proxy":
        detail.update({name: getattr(record, name) for name in PROXY_FIELDS})
    return {"id": record.id, "type": record.kind, "created_at": iso(record.created_at), "environment": environment,
            "actor": record.actor or "system", "request_id": record.request_id,
            "integration": record.provider_config_key, "connection_id": record.connection_id,
            "outcome": "success" if record.success else "failure", "error_code": record.error_code,
            "detail": detail}
