"""Operation records: the log of every credential access and change (`GET /logs`, log_views.py).

One table, one shape: a `kind` (the record's type, e.g. `connection.created`, `credential.read`,
`proxy`, `refresh`, `webhook`), the environment, the actor (services/store/actors.py), the
integration and connection it concerns, whether it succeeded (`success`, `error_code`), a
`detail` object of names, numbers and flags, the time and the request id. No record ever holds a
secret, a token, a body or a query: callers pass names (a key's name, which fields changed),
never values. `record` and `record_connection_event` write at once, inside the caller's
transaction when there is one; credential reads, the hottest path, are batched
(services/store/read_records.py); proxied calls come from the proxy in batches (below).

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
    key_id: int | None = Field(default=None, ge=1)  # the secret key that made the call: its name is the actor
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,128}$")  # the gateway's request


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
    from services.store.actors import actor_of

    actors = {key_id: actor_of("secret", key_id) for key_id in {r.key_id for r in batch.operations} if key_id}
    rows = [_row(record) + (actors.get(record.key_id), record.request_id) for record in batch.operations]
    wanted = {row[0] for row in rows}
    with write_transaction(database):
        known = {env.id for env in Environment.select(Environment.id).where(Environment.id.in_(wanted))}
        if known != wanted:
            missing = ", ".join(str(env) for env in sorted(wanted - known))
            raise ApiError(f"unknown environment id(s): {missing}", code="invalid_body", status=400)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            _insert(rows[start:start + ROWS_PER_STATEMENT], COLUMNS + ("actor", "request_id"))
    return len(rows)


def _insert(rows: list[tuple], columns: tuple[str, ...] = COLUMNS) -> None:
    """One multi-row INSERT. Written out rather than built by peewee's `insert_many`, whose query
    building cost about 0.1 ms of CPU per record: the store pays this for every proxied call."""
    mark = "%s" if is_postgres(database) else "?"
    values = "(" + ", ".join([mark] * len(columns)) + ")"
    database.execute_sql(f"INSERT INTO operations ({', '.join(columns)}) VALUES {', '.join([values] * len(rows))}",
                         [value for row in rows for value in row])


def recent(environment_id: int | None = None, limit: int = 50) -> list[Operation]:
    """The newest records first, of one environment or of all."""
    query = Operation.select().order_by(Operation.id.desc()).limit(limit)
    if environment_id is not None:
        query = query.where(Operation.environment == environment_id)
    return list(query)


CONNECTION_EVENTS = ("created", "updated", "deleted", "restored", "purged")
# How a connection came to be: an import, or the flow that captured it (by credential type).
CAPTURE_VIA = {"OAUTH2": "oauth2", "OAUTH1": "oauth1", "API_KEY": "api_key", "BASIC": "basic",
               "OAUTH2_CC": "client_credentials", "TBA": "tba", "APP": "app", "CUSTOM": "custom",
               "NONE": "unauthenticated", "JWT": "jwt", "TWO_STEP": "two_step", "SIGNATURE": "signature",
               "BILL": "bill"}


def record(environment_id: int, kind: str, *, actor: str, request_id: str | None = None,
           provider_config_key: str | None = None, connection_id: str | None = None, success: bool = True,
           error_code: str | None = None, detail: dict | None = None) -> Operation:
    """Write one record now, in the caller's transaction if one is open. `detail`: no secret, ever."""
    return Operation.create(environment=environment_id, kind=kind, actor=actor, request_id=request_id,
                            provider_config_key=provider_config_key, connection_id=connection_id, success=success,
                            error_code=error_code, detail=detail or {})


def record_connection_event(environment_id: int, event: str, provider_config_key: str, connection_id: str, *,
                            actor: str, via: str | None = None, fields: tuple[str, ...] | list[str] = (),
                            request_id: str | None = None, detail: dict | None = None) -> Operation:
    """Record `connection.<event>` (created, updated, deleted, restored, purged).

    `via` says how it was created or replaced ("import", or `CAPTURE_VIA` of a flow's credential
    type, see `capture_via`); `fields` names what an update changed ("metadata", "tags",
    "credentials", …), never the values."""
    if event not in CONNECTION_EVENTS:
        raise ValueError(f"unknown connection event {event!r}")
    shown = dict(detail or {})
    if via is not None:
        shown["via"] = via
    if fields:
        shown["fields"] = sorted(set(fields))
    return record(environment_id, f"connection.{event}", actor=actor, request_id=request_id,
                  provider_config_key=provider_config_key, connection_id=connection_id, detail=shown)


def capture_via(credentials_type: str | None) -> str:
    """The `via` of a connection a flow captured, from the type of its credentials."""
    return CAPTURE_VIA.get(credentials_type or "", (credentials_type or "flow").lower())
