"""The hottest read, `GET /connections/:id`, as one hand-written statement.

It finds the live connection and records `last_fetched_at` in a single round trip (Postgres:
UPDATE … RETURNING). That timestamp is bookkeeping, so its commit does not wait for the WAL
flush (`synchronous_commit = off` for this transaction only); every other write stays durable.
"""

from __future__ import annotations

from services.store.db import database, is_postgres
from services.store.models import Connection, Integration, utcnow

_WHERE = ("c.integration_id = i.id AND c.environment_id = {p} AND i.environment_id = {p} AND i.unique_key = {p} "
          "AND c.connection_id = {p} AND c.deleted_at IS NULL AND i.deleted_at IS NULL")
_POSTGRES = ("BEGIN; SET LOCAL synchronous_commit TO OFF; "
             "UPDATE connections AS c SET last_fetched_at = %s FROM integrations AS i WHERE " + _WHERE.format(p="%s")
             + " RETURNING c.*, i.unique_key AS i_unique_key, i.provider AS i_provider")
_SQLITE_SELECT = ("SELECT c.*, i.unique_key AS i_unique_key, i.provider AS i_provider "
                  "FROM connections AS c JOIN integrations AS i ON c.integration_id = i.id WHERE "
                  + _WHERE.format(p="?"))


def touch_and_fetch(env_id: int, provider_config_key: str, connection_id: str):
    """(connection, integration) with last_fetched_at set to now, or None when not found."""
    now = utcnow()
    params = (env_id, env_id, provider_config_key, connection_id)
    db = database.obj
    if is_postgres(db):
        try:
            rows = list(Connection.raw(_POSTGRES, now, *params))
            db.execute_sql("COMMIT")
        except Exception:
            db.execute_sql("ROLLBACK")
            raise
    else:
        rows = list(Connection.raw(_SQLITE_SELECT, *params))
        if rows:
            Connection.update(last_fetched_at=now).where(Connection.id == rows[0].id).execute()
            rows[0].last_fetched_at = now
    if not rows:
        return None
    conn = rows[0]
    integration = Integration(id=conn.integration_id, unique_key=conn.i_unique_key, provider=conn.i_provider)
    return conn, integration
