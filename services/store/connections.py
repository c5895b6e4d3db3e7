"""Connections: one end user's credentials for one integration, encrypted at rest."""

from __future__ import annotations

import json
import re
import uuid

from peewee import Cast, Expression, IntegrityError, Value, fn

from common.errors import ApiError, NotFound, field_error
from common.request_signing import account_id_problem
from services.store import credentials as credentials_domain
from services.store import formatters, live, notify
from services.store import integrations as integrations_domain
from services.store.context import StoreContext
from services.store.db import database, is_postgres
from services.store.migrations import write_transaction
from services.store.models import Connection, Integration, utcnow
from services.store.schemas import ConnectionImport, ConnectionListQuery, ConnectionPatch, EndUser


def unknown_provider_config() -> ApiError:
    return ApiError("Provider does not exists", code="unknown_provider_config", status=400)


def auto_tags(end_user: EndUser | None) -> dict[str, str]:
    if end_user is None:
        return {}
    tags = {"end_user_id": end_user.id}
    if end_user.email:
        tags["end_user_email"] = end_user.email
    if end_user.display_name:
        tags["end_user_display_name"] = end_user.display_name
    if end_user.organization:
        tags["organization_id"] = end_user.organization.id
    return tags


def merged_tags(explicit: dict | None, end_user: EndUser | None) -> dict:
    explicit = dict(explicit or {})
    return {**explicit, **{k: v for k, v in auto_tags(end_user).items() if k not in explicit}}




def check_account_id(provider: dict, connection_config: dict | None) -> None:
    """TBA connections need a usable `connection_config.accountId` (the realm they sign with)."""
    message = account_id_problem(provider, connection_config)
    if message is not None:
        raise ApiError(code="invalid_body", status=400, message=message, errors=[
            field_error(["connection_config", "accountId"], message)])


def find(env_id: int, provider_config_key: str, connection_id: str, *, for_update: bool = False
         ) -> tuple[Connection, Integration] | None:
    """The live connection and its integration. `for_update` (inside a write transaction) locks the
    connection's row on Postgres until the transaction ends; SQLite's write lock already holds."""
    query = (Connection.select(Connection, Integration).join(Integration)
             .where((Connection.environment == env_id) & (Integration.unique_key == provider_config_key)
                    & (Connection.connection_id == connection_id) & Connection.deleted_at.is_null()
                    & Integration.deleted_at.is_null()))
    if for_update and is_postgres(database):
        query = query.for_update(of=Connection)
    row = query.first()
    return (row, row.integration) if row else None


def import_connection(ctx: StoreContext, env_id: int, body: ConnectionImport) -> tuple[Connection, Integration]:
    integration = integrations_domain.find(env_id, body.provider_config_key)
    if integration is None:
        raise NotFound("Integration does not exist")
    provider = ctx.catalogue.get(integration.provider) or {}
    mode = provider.get("auth_mode")
    if body.credentials.type != mode:
        raise ApiError(code="invalid_body", status=400, message=None, errors=[field_error(
            ["credentials", "type"], f"Provider {integration.provider} does not support {body.credentials.type} auth")])
    if mode == "TBA":
        check_account_id(provider, body.connection_config)
    credentials, expires_at = credentials_domain.build(body.credentials)
    connection_id = body.connection_id or str(uuid.uuid4())
    existing = find(env_id, body.provider_config_key, connection_id)
    now = utcnow()
    conn = existing[0] if existing else Connection(
        uid=str(uuid.uuid4()), environment=env_id, integration=integration, connection_id=connection_id,
        created_at=now, metadata={}, tags={}, connection_config={},
    )
    credentials_domain.seal(ctx, conn, credentials)
    conn.credentials_type = body.credentials.type
    conn.expires_at = expires_at
    conn.updated_at = conn.last_fetched_at = now
    conn.last_refresh_failure, conn.refresh_attempts, conn.refresh_exhausted = None, 0, False
    if body.connection_config is not None:
        conn.connection_config = body.connection_config
    if body.metadata is not None:
        conn.metadata = body.metadata
    if body.webhook_url_override is not None:
        conn.webhook_url_override = body.webhook_url_override
    _apply_end_user(conn, body.end_user, body.tags)
    try:
        with database.atomic():  # on Postgres a failed statement must not poison the connection
            conn.save(force_insert=existing is None)
    except IntegrityError:
        # A concurrent import of the same connection id won the insert: overwrite it instead.
        raced = find(env_id, body.provider_config_key, connection_id)
        if raced is None:
            raise
        conn.id, conn.uid = raced[0].id, raced[0].uid
        conn.created_at = raced[0].created_at
        credentials_domain.seal(ctx, conn, credentials)
        conn.save()
    notify.connection_changed(ctx.settings, env_id, body.provider_config_key, connection_id)
    return conn, integration


def _apply_end_user(conn: Connection, end_user: EndUser | None, tags: dict | None) -> None:
    if end_user is not None:
        conn.end_user = end_user.model_dump(exclude_none=True)
        conn.end_user_id = end_user.id
        conn.organization_id = end_user.organization.id if end_user.organization else None
    if tags is not None or end_user is not None:
        conn.tags = merged_tags(tags if tags is not None else _explicit_tags(conn), end_user)


def _explicit_tags(conn: Connection) -> dict:
    generated = {"end_user_id", "end_user_email", "end_user_display_name", "organization_id"}
    return {k: v for k, v in (conn.tags or {}).items() if k not in generated}


def get_for_read(ctx: StoreContext, env_id: int, provider_config_key: str, connection_id: str, *,
                 force_refresh: bool = False):
    """The live connection and its credentials (`services.store.live.LiveRead`), with `GET
    /connections/:id`'s not-found errors."""
    def not_found(integration_exists: bool) -> ApiError:
        return NotFound("Failed to find connection") if integration_exists else unknown_provider_config()

    return live.read(ctx, env_id, provider_config_key, connection_id, not_found=not_found, force=force_refresh)


def present_full(conn: Connection, integration: Integration, credentials: dict, *, include_refresh: bool,
                 suffix: str) -> dict:
    if conn.credentials_type == "NONE":
        credentials = {}  # Nango shows an unauthenticated connection's credentials as {}
    shown = credentials if include_refresh else formatters.strip_refresh_tokens(credentials)
    return formatters.connection_full(conn, integration.unique_key, integration.provider, shown, suffix)


def list_connections(env_id: int, q: ConnectionListQuery) -> list[dict]:
    # The environment's live integrations first (a handful of rows), then one table paged: a join
    # let Postgres, with no statistics yet on a table as small as integrations, sort every
    # connection of the environment for each page (51 ms at 20,000, bench/scale.py).
    integrations = Integration.select().where((Integration.environment == env_id) & Integration.deleted_at.is_null())
    if q.integrationId:
        integrations = integrations.where(
            Integration.unique_key.in_([k.strip() for k in q.integrationId.split(",") if k.strip()]))
    live_integrations = {integration.id: integration for integration in integrations}
    if not live_integrations:
        return []
    where = ((Connection.environment == env_id) & Connection.deleted_at.is_null()
             & Connection.integration.in_(list(live_integrations)))
    if q.connectionId:
        where &= Connection.connection_id == q.connectionId
    if q.endUserId:
        where &= Connection.end_user_id == q.endUserId
    if q.endUserOrganizationId:
        where &= Connection.organization_id == q.endUserOrganizationId
    if q.withError is not None:  # a successful refresh or a new credential clears the failure
        where &= Connection.last_refresh_failure.is_null(not q.withError)
    rows = Connection.select().where(where).order_by(Connection.created_at.desc(), Connection.id.desc())

    def item(conn: Connection) -> dict:
        integration = live_integrations[conn.integration_id]
        return formatters.connection_item(conn, integration.unique_key, integration.provider)

    wanted_tags = {k.lower(): v for k, v in (q.tags or {}).items()}
    narrowing = _sql_narrowing(wanted_tags, q.search)
    if narrowing:
        rows = rows.where(*narrowing)
    if not wanted_tags and not q.search:  # every filter is SQL: the page is read, not the environment
        return [item(conn) for conn in rows.offset(q.page * q.limit).limit(q.limit)]
    out = []
    skip = q.page * q.limit
    for conn in _in_chunks(rows, min(LIST_CHUNK, (q.page + 1) * q.limit)):
        tags = {k.lower(): v for k, v in (conn.tags or {}).items()}
        if any(tags.get(k) != v for k, v in wanted_tags.items()):
            continue
        if q.search and not _matches(conn, q.search.lower()):
            continue
        if skip:
            skip -= 1
            continue
        out.append(item(conn))
        if len(out) >= q.limit:
            break
    return out


SQL_SAFE_NEEDLE = re.compile(r"[A-Za-z0-9@.+-]{1,200}")  # no LIKE wildcard, no character JSON escapes
LIST_CHUNK = 500  # rows read at a time at most when tags or a search filter them in Python


def _in_chunks(rows, size: int):
    """The rows of a query ordered by (created_at, id) descending in chunks, the first of `size`
    rows (what the page needs if every row matches), then twice as many each time up to
    LIST_CHUNK, each starting after the last row of the one before (keyset: no OFFSET rescanning
    what was read): psycopg2 would otherwise fetch every row before the first is looked at."""
    after = None
    while True:
        page = rows if after is None else rows.where(
            (Connection.created_at < after[0]) | ((Connection.created_at == after[0]) & (Connection.id < after[1])))
        chunk = list(page.limit(size))
        yield from chunk
        if len(chunk) < size:
            return
        after, size = (chunk[-1].created_at, chunk[-1].id), min(LIST_CHUNK, size * 2)


def _sql_narrowing(wanted_tags: dict[str, str], search: str | None) -> list:
    """SQL tests every connection matching the tags (keys lowered) and the search passes, so the
    database narrows the rows matched exactly in Python. Each test can only widen: it lowers
    both sides (the column is ASCII JSON, models.JSONField) and looks at the end user's whole JSON.
    On Postgres the tests are the expressions migration 12 indexes."""
    postgres = is_postgres(database.obj)
    tests = []
    for name, value in wanted_tags.items():
        if postgres:
            wanted = Cast(Value(json.dumps({name: value}).lower()), "jsonb")
            tests.append(Expression(Cast(fn.LOWER(Connection.tags), "jsonb"), "@>", wanted))
        elif "\\" not in (needle := (json.dumps(name) + ":" + json.dumps(value)).lower()):
            tests.append(fn.LOWER(Connection.tags).contains(needle))  # `_` and `%` only widen; `\` would escape
    if search and SQL_SAFE_NEEDLE.fullmatch(search):
        # Only for plain needles, which the end user's JSON cannot spell differently (escapes), and
        # which cannot span the space between the id and that JSON.
        needle = search.lower()
        if postgres:
            searched = Connection.connection_id.concat(" ").concat(fn.COALESCE(Connection.end_user, ""))
            tests.append(fn.LOWER(searched) % f"%{needle}%")
        else:
            tests.append(fn.LOWER(Connection.connection_id).contains(needle)
                         | fn.LOWER(Connection.end_user).contains(needle))
    return tests


def _matches(conn: Connection, needle: str) -> bool:
    end_user = conn.end_user or {}
    haystack = [conn.connection_id, end_user.get("id"), end_user.get("email"), end_user.get("display_name")]
    return any(needle in value.lower() for value in haystack if value)


def delete(env_id: int, provider_config_key: str, connection_id: str) -> None:
    found = find(env_id, provider_config_key, connection_id)
    if found is None:
        raise ApiError(code="unknown_connection", status=400, message=None)
    now = utcnow()
    Connection.update(deleted_at=now, updated_at=now).where(
        (Connection.id == found[0].id) & Connection.deleted_at.is_null()).execute()


def set_metadata(env_id: int, provider_config_key: str, connection_ids: list[str], metadata: dict, *,
                 merge: bool) -> None:
    """Replace (or shallow-merge) metadata of every named connection; all or nothing. Each row is
    locked as it is read: two merges of one connection at once both land, neither is lost."""
    with write_transaction(database):
        found = []
        for connection_id in sorted(set(connection_ids)):  # one lock order: two batches cannot deadlock
            row = find(env_id, provider_config_key, connection_id, for_update=True)
            if row is None:
                raise ApiError(f"Connection with connection_id: {connection_id} and provider_config_key: "
                               f"{provider_config_key} not found", code="unknown_connection", status=404)
            found.append(row[0])
        now = utcnow()
        for conn in found:
            conn.metadata = {**(conn.metadata or {}), **metadata} if merge else metadata
            Connection.update(metadata=conn.metadata, updated_at=now).where(Connection.id == conn.id).execute()


def patch(env_id: int, provider_config_key: str, connection_id: str, body: ConnectionPatch) -> None:
    if integrations_domain.find(env_id, provider_config_key) is None:
        raise unknown_provider_config()
    found = find(env_id, provider_config_key, connection_id)
    if found is None:
        raise NotFound("Failed to find connection")
    conn = found[0]
    _apply_end_user(conn, body.end_user, body.tags)
    if body.webhook_url_override is not None:
        conn.webhook_url_override = body.webhook_url_override
    conn.updated_at = utcnow()
    conn.save()
