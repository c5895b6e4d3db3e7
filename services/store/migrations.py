"""Versioned schema migrations, run at start-up under a database-wide lock.

Safe to run twice (each version is recorded) and from two processes at once (Postgres: an
advisory lock; SQLite: an exclusive lock on a file beside the database, then BEGIN IMMEDIATE).

Written as plain DDL, not with a migration library: Alembic needs SQLAlchemy models beside
peewee's, and peewee's own `playhouse.migrate` gives column operations but neither a version table
nor the cross-process start-up lock, which are what this module is. Every step is CREATE, ADD COLUMN or a
DROP INDEX another replaces, valid on both backends as written (`_dialect` fills in the few type
names) except the Postgres-only indexes of version 12, so the SQL itself is the reviewable record
of the schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable

import peewee

from services.store.db import is_postgres
from services.store.models import utcnow

log = logging.getLogger("authport.store")
LOCK_ID = 7_263_001  # arbitrary, fixed: the advisory lock of Authport's start-up work


def _dialect(db) -> dict[str, str]:
    if is_postgres(db):
        return {"pk": "BIGSERIAL PRIMARY KEY", "ts": "TIMESTAMP", "bool": "BOOLEAN", "fk": "BIGINT"}
    return {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "ts": "TIMESTAMP", "bool": "BOOLEAN", "fk": "INTEGER"}


V1 = """
CREATE TABLE accounts (
  id {pk}, name TEXT NOT NULL UNIQUE, plan TEXT NOT NULL DEFAULT 'free', rate_limit INTEGER,
  created_at {ts} NOT NULL);
CREATE TABLE environments (
  id {pk}, account_id {fk} NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE,
  webhook_url TEXT, callback_url TEXT, created_at {ts} NOT NULL, UNIQUE (account_id, name));
CREATE TABLE api_keys (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  kind TEXT NOT NULL, name TEXT NOT NULL, lookup_hash TEXT NOT NULL UNIQUE, secret_enc TEXT NOT NULL,
  created_at {ts} NOT NULL, last_used_at {ts}, revoked_at {ts});
CREATE TABLE integrations (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  unique_key TEXT NOT NULL, provider TEXT NOT NULL, display_name TEXT, client_id TEXT, client_secret_enc TEXT,
  scopes TEXT, app_link TEXT, custom TEXT, forward_webhooks {bool} NOT NULL DEFAULT TRUE,
  integration_config TEXT, webhook_secret_enc TEXT, created_at {ts} NOT NULL, updated_at {ts} NOT NULL,
  deleted_at {ts});
CREATE UNIQUE INDEX integrations_live_key ON integrations (environment_id, unique_key) WHERE deleted_at IS NULL;
CREATE TABLE connections (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  integration_id {fk} NOT NULL REFERENCES integrations(id), connection_id TEXT NOT NULL,
  credentials_enc TEXT NOT NULL, credentials_type TEXT NOT NULL, connection_config TEXT NOT NULL DEFAULT '{{}}',
  metadata TEXT, tags TEXT NOT NULL DEFAULT '{{}}', end_user TEXT, end_user_id TEXT, organization_id TEXT,
  webhook_url_override TEXT, expires_at {ts}, last_fetched_at {ts}, last_refresh_success {ts},
  last_refresh_failure {ts}, refresh_attempts INTEGER NOT NULL DEFAULT 0,
  refresh_exhausted {bool} NOT NULL DEFAULT FALSE, created_at {ts} NOT NULL, updated_at {ts} NOT NULL,
  deleted_at {ts});
CREATE UNIQUE INDEX connections_live_key ON connections (integration_id, connection_id) WHERE deleted_at IS NULL;
CREATE INDEX connections_env_created ON connections (environment_id, created_at);
CREATE INDEX connections_end_user ON connections (environment_id, end_user_id);
CREATE TABLE environment_variables (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  name TEXT NOT NULL, value_enc TEXT NOT NULL, created_at {ts} NOT NULL, updated_at {ts} NOT NULL,
  UNIQUE (environment_id, name));
CREATE TABLE authport_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _run_sql(script: str) -> Callable:
    def apply(db) -> None:
        for statement in script.format(**_dialect(db)).split(";"):
            if statement.strip():
                db.execute_sql(statement)

    return apply


V2 = """
ALTER TABLE integrations ADD COLUMN app_private_key_enc TEXT;
"""

# Connect sessions (the token is kept only as a keyed hash) and OAuth sessions (one per popup
# flow, found by the hash of its `state`, consumed once; the PKCE verifier is encrypted).
V3 = """
CREATE TABLE connect_sessions (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  token_hash TEXT NOT NULL UNIQUE, end_user TEXT, organization TEXT, allowed_integrations TEXT,
  integrations_config_defaults TEXT, overrides TEXT, webhook_url_override TEXT, tags TEXT,
  reconnect_connection_id TEXT, reconnect_integration TEXT, created_at {ts} NOT NULL, expires_at {ts} NOT NULL);
CREATE INDEX connect_sessions_expiry ON connect_sessions (expires_at);
CREATE TABLE oauth_sessions (
  id {pk}, uid TEXT NOT NULL UNIQUE, environment_id {fk} NOT NULL REFERENCES environments(id),
  state_hash TEXT NOT NULL UNIQUE, provider_config_key TEXT NOT NULL, provider TEXT NOT NULL,
  connection_id TEXT NOT NULL, connect_session_id {fk}, connection_config TEXT NOT NULL DEFAULT '{{}}',
  secrets_enc TEXT NOT NULL, ws_client_id TEXT, redirect_uri TEXT NOT NULL, created_at {ts} NOT NULL,
  expires_at {ts} NOT NULL);
CREATE INDEX oauth_sessions_expiry ON oauth_sessions (expires_at);
"""

V4 = """
CREATE TABLE operations (
  id {pk}, environment_id {fk} NOT NULL REFERENCES environments(id), kind TEXT NOT NULL,
  provider_config_key TEXT, connection_id TEXT, success {bool} NOT NULL, error_code TEXT,
  detail TEXT NOT NULL DEFAULT '{{}}', created_at {ts} NOT NULL);
CREATE INDEX operations_env_created ON operations (environment_id, created_at);
"""

# What a proxied call's record says (services/store/operations.py): the request line without
# its query, the answer's status, and how the call went. NULL in refresh records.
V5 = """
ALTER TABLE operations ADD COLUMN method TEXT;
ALTER TABLE operations ADD COLUMN path TEXT;
ALTER TABLE operations ADD COLUMN status INTEGER;
ALTER TABLE operations ADD COLUMN outcome TEXT;
ALTER TABLE operations ADD COLUMN attempts INTEGER;
ALTER TABLE operations ADD COLUMN egress_address TEXT;
ALTER TABLE operations ADD COLUMN bytes BIGINT;
ALTER TABLE operations ADD COLUMN duration_ms DOUBLE PRECISION;
"""

# Public-key flows (the hardening issue): each environment's HMAC key (encrypted; generated by the
# bootstrap) and whether every public-key flow must carry `hmac`; an OAuth session remembers
# whether the flow that started it may overwrite an existing connection.
V6 = """
ALTER TABLE environments ADD COLUMN hmac_key_enc TEXT;
ALTER TABLE environments ADD COLUMN hmac_enabled {bool} NOT NULL DEFAULT FALSE;
ALTER TABLE oauth_sessions ADD COLUMN may_overwrite {bool} NOT NULL DEFAULT FALSE;
"""

# Logs and the connection lifecycle (services/store/operations.py, log_views.py): who acted (a key's
# name, `dashboard:<user>`, `admin`, `system`) and the request id of every record; GET /logs reads
# newest first by (created_at, id) within an environment, optionally of one connection.
V8 = """
ALTER TABLE operations ADD COLUMN actor TEXT;
ALTER TABLE operations ADD COLUMN request_id TEXT;
CREATE INDEX operations_env_time ON operations (environment_id, created_at, id);
CREATE INDEX operations_env_connection ON operations (environment_id, connection_id, created_at, id);
DROP INDEX operations_env_created;
"""

# Webhooks to customers' backends (services/store/webhook_outbox.py): written in the transaction
# of the event they report, leased by one auth worker at a time, kept after delivery as history.
V7 = """
CREATE TABLE webhook_outbox (
  id {pk}, environment_id {fk} NOT NULL REFERENCES environments(id), event_type TEXT NOT NULL,
  operation TEXT NOT NULL, provider_config_key TEXT NOT NULL, connection_id TEXT NOT NULL, connection_uid TEXT,
  body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at {ts} NOT NULL, last_attempt_at {ts}, last_status INTEGER, last_error TEXT,
  leased_until {ts}, leased_by TEXT, created_at {ts} NOT NULL, delivered_at {ts});
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_outbox_state ON webhook_outbox (state, created_at);
"""

# A webhook signing key of the environment's own (POST /environment/webhook-signing-key/rotate),
# encrypted and bound to its row; NULL signs with the default secret key, as before any rotation.
V9 = """
ALTER TABLE environments ADD COLUMN webhook_signing_key_enc TEXT;
"""

# Requests per minute and the 429s among them, per account and environment (services/store/usage.py),
# as the gateways count and flush them every few seconds; the dashboard's Usage page reads the last hour.
# And the few connections whose refresh fails, indexed for GET /connections?withError=true.
V10 = """
CREATE TABLE usage_minutes (
  account_id {fk} NOT NULL, environment_id {fk} NOT NULL, minute BIGINT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0, limited INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, environment_id, minute));
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);
CREATE INDEX connections_env_failing ON connections (environment_id, created_at) WHERE last_refresh_failure IS NOT NULL;
"""

# GET /connections lists newest first, ties broken by id (connections.list_connections): with
# the id in the index a page is read straight off it, where (environment_id, created_at) alone
# made the database sort every connection of the environment for each page (31 ms at 20,000,
# bench/scale.py). Organizations get an index like end users have.
V11 = """
CREATE INDEX connections_env_listed ON connections (environment_id, created_at, id);
DROP INDEX connections_env_created;
CREATE INDEX connections_env_failing_listed ON connections (environment_id, created_at, id)
  WHERE last_refresh_failure IS NOT NULL;
DROP INDEX connections_env_failing;
CREATE INDEX connections_organization ON connections (environment_id, organization_id);
"""

# Postgres only. The list's tag and search filters are matched exactly in Python after a SQL test
# that can only widen (connections.list_connections); these indexes answer that test, where it
# scanned every connection of the environment (32 and 57 ms at 20,000). Substring search needs
# pg_trgm, a trusted extension any database owner may create; where it cannot be created the
# search keeps working, by a scan, and the start-up log says so.
V12_TAGS = ("CREATE INDEX connections_tags ON connections USING gin ((lower(tags)::jsonb) jsonb_path_ops) "
            "WHERE deleted_at IS NULL")
V12_SEARCH = ("CREATE INDEX connections_search ON connections USING gin "
              "((lower(connection_id || ' ' || coalesce(end_user, ''))) gin_trgm_ops) WHERE deleted_at IS NULL")


def _v12(db) -> None:
    if not is_postgres(db):
        return
    db.execute_sql(V12_TAGS)
    try:
        with db.atomic():  # a savepoint: a refused extension leaves the migration's transaction usable
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except peewee.DatabaseError as exc:
        log.warning("pg_trgm cannot be created (%s): GET /connections?search= scans the environment's "
                    "connections", str(exc).strip().splitlines()[0])
    else:
        db.execute_sql(V12_SEARCH)
    db.execute_sql("ANALYZE connections")  # the planner knows an expression index's values only after it


# The credential-read records' writer checks, once a second per worker, which of the connections
# read still have a row, live or deleted, by environment and connection id
# (read_records._existing): without this index that was a scan of every connection each time
# (at 1,000,000, most of Postgres's CPU; reads at random slowed 2.2x from 1,000).
V13 = """
CREATE INDEX connections_env_connection ON connections (environment_id, connection_id);
"""


MIGRATIONS: list[tuple[int, str, Callable]] = [
    (1, "core tables", _run_sql(V1)),
    (2, "encrypted GitHub App private keys", _run_sql(V2)),
    (3, "connect sessions and OAuth sessions", _run_sql(V3)),
    (4, "operation records", _run_sql(V4)),
    (5, "proxied call records", _run_sql(V5)),
    (6, "environment HMAC keys for public-key flows", _run_sql(V6)),
    (7, "webhook outbox", _run_sql(V7)),
    (8, "log records: actor, request id, indexes for GET /logs", _run_sql(V8)),
    (9, "environments: a webhook signing key of their own", _run_sql(V9)),
    (10, "usage: requests and 429s per minute; failing connections indexed", _run_sql(V10)),
    (11, "connections listed in (created_at, id) order off an index; organizations indexed", _run_sql(V11)),
    (12, "connections: tag and search filters indexed (Postgres)", _v12),
    (13, "connections indexed by environment and connection id, deleted ones too", _run_sql(V13)),
]


@contextlib.contextmanager
def startup_lock(db):
    """Serialise start-up work across every process sharing this database."""
    if is_postgres(db):
        with db.connection_context():
            db.execute_sql("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
            try:
                yield
            finally:
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    else:
        # SQLite's own locks are not enough: two processes opening a new file at once race on
        # `PRAGMA journal_mode=wal`, which fails at once with "database is locked" (no busy
        # wait). An OS lock on a file beside the database, taken before connecting, serialises
        # whole start-ups; each step still runs in BEGIN IMMEDIATE (see `write_transaction`).
        with _file_lock(getattr(db, "obj", db).database), db.connection_context():
            yield


@contextlib.contextmanager
def _file_lock(database_path: str):
    if database_path == ":memory:":
        yield
        return
    fd = os.open(f"{database_path}.startup-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, also if the process dies
        yield
    finally:
        os.close(fd)


def applied_versions(db) -> set[int]:
    db.execute_sql(f"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                   f" applied_at {_dialect(db)['ts']} NOT NULL)")
    return {row[0] for row in db.execute_sql("SELECT version FROM schema_migrations").fetchall()}


def migrate(db) -> list[int]:
    """Apply every pending migration; return the versions applied by this call."""
    done: list[int] = []
    for version, name, apply in sorted(MIGRATIONS, key=lambda migration: migration[0]):  # 7 may land after 8
        with write_transaction(db):
            if version in applied_versions(db):
                continue
            apply(db)
            db.execute_sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)"
                           if is_postgres(db) else
                           "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           (version, name, utcnow()))
            done.append(version)
    return done


def write_transaction(db):
    """A transaction that holds the write lock from its first statement."""
    if is_postgres(db):
        return db.atomic()
    return db.atomic(lock_type="IMMEDIATE")
