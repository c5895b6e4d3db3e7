"""Operation records of proxied calls, sent by the proxy in batches, and the recent records an
operator reads back (`python -m services.store.admin operations list`).

A batch is validated whole and written in one transaction: one bad record refuses the batch
(400) and nothing of it is stored. A record names the endpoint without its query, and carries
nothing of the credential, the query or either body: the schema has no field that could hold
them, and a path with a `?` is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from common.errors import ApiError
from common.validation import Strict
from services.store.db import database, is_postgres
from services.store.migrations import write_transaction
from services.store.models import Environment, Operation

MAX_BATCH = 1000
# Rows per INSERT statement: 15 values each stays below SQLite's limit of bound variables.
ROWS_PER_STATEMENT = 200
YEAR_3000 = 32_503_680_000

Text = Annotated[str, Field(min_length=1, max_length=255)]


class ProxyRecord(Strict):
    """One proxied call as the proxy reports it (services/proxy/records.py)."""

    environment_id: int = Field(ge=1)
    provider_config_key: Text
    connection_id: Text
    method: str = Field(pattern=r"^[A-Z]{1,16}$")
    path: str = Field(min_length=1, max_length=8192, pattern=r"^/[^?]*$")
    status: int | None = Field(ge=100, le=599)
    outcome: str = Field(min_length=1, max_length=512)
    attempts: int = Field(ge=0, le=1000)
    egress_address: str | None = Field(max_length=64)
    bytes: int = Field(ge=0)
    duration_ms: float = Field(ge=0)
    at: float = Field(gt=0, lt=YEAR_3000)  # when the call ended, seconds since the epoch


class ProxyBatch(Strict):
    operations: list[ProxyRecord] = Field(min_length=1, max_length=MAX_BATCH)


COLUMNS = ("environment_id", "kind", "provider_config_key", "connection_id", "success", "error_code", "created_at",
           "method", "path", "status", "outcome", "attempts", "egress_address", "bytes", "duration_ms")


def _timestamp(at: float) -> datetime:
    """Naive UTC with millisecond precision, as every table stores time."""
    moment = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _row(record: ProxyRecord) -> tuple:
    ok = record.outcome == "ok"
    success = ok and record.status is not None and record.status < 400
    return (record.environment_id, "proxy", record.provider_config_key, record.connection_id, success,
            None if ok else record.outcome.split(":", 1)[0], _timestamp(record.at), record.method, record.path,
            record.status, record.outcome, record.attempts, record.egress_address, record.bytes,
            round(record.duration_ms, 1))


def record_proxy_calls(batch: ProxyBatch) -> int:
    """Store every record of the batch, or none; return how many were stored."""
    rows = [_row(record) for record in batch.operations]
    wanted = {row[0] for row in rows}
    with write_transaction(database):
        known = {env.id for env in Environment.select(Environment.id).where(Environment.id.in_(wanted))}
        if known != wanted:
            missing = ", ".join(str(env) for env in sorted(wanted - known))
            raise ApiError(f"unknown environment id(s): {missing}", code="invalid_body", status=400)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            _insert(rows[start:start + ROWS_PER_STATEMENT])
    return len(rows)


def _insert(rows: list[tuple]) -> None:
    """One multi-row INSERT. Written out rather than built by peewee's `insert_many`, whose query
    building cost about 0.1 ms of CPU per record: the store pays this for every proxied call."""
    mark = "%s" if is_postgres(database) else "?"
    values = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    database.execute_sql(f"INSERT INTO operations ({', '.join(COLUMNS)}) VALUES {', '.join([values] * len(rows))}",
                         [value for row in rows for value in row])


def recent(environment_id: int | None = None, limit: int = 50) -> list[Operation]:
    """The newest records first, of one environment or of all."""
    query = Operation.select().order_by(Operation.id.desc()).limit(limit)
    if environment_id is not None:
        query = query.where(Operation.environment == environment_id)
    return list(query)
