"""The database handle: declared unbound, opened by the store's factory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from peewee import DatabaseProxy, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

database = DatabaseProxy()


class DatabaseUrlError(ValueError):
    pass


class PooledPostgres(PooledPostgresqlDatabase):
    """A pool whose checkout trusts the connection's local state instead of sending SELECT 1.

    A connection the server dropped while idle fails its next query; the pool then discards it
    (its transaction state is unknown) and the next request gets a new one.
    """

    def _is_closed(self, conn):
        return bool(conn.closed) or self._adapter.txn_status(conn) == self._adapter.txn_unknown


def open_database(url: str, *, max_connections: int = 32):
    """Build (not connect) a peewee database for a sqlite:/// or postgresql:// URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if parsed.path.startswith("//") else parsed.path.lstrip("/") or "")
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        if not path:
            raise DatabaseUrlError("sqlite URL needs a file path, e.g. sqlite:///data/authport.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every transaction begins IMMEDIATE (takes the write lock at BEGIN, waiting up to
        # busy_timeout for it). A deferred one that reads and then writes, as a metadata merge
        # does, cannot wait: when another connection committed since its read, the upgrade fails
        # at once with "database is locked" (about 1 write in 7 was a 500 at 64 concurrent
        # writers). Reads outside transactions are unaffected: WAL lets them run beside a writer.
        return SqliteDatabase(
            path,
            pragmas={"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
            timeout=10,
            lock_type="IMMEDIATE",
        )
    if parsed.scheme in ("postgres", "postgresql"):
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return PooledPostgres(
            unquote(parsed.path.lstrip("/")) or "postgres",
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            max_connections=max_connections,
            stale_timeout=300,
            connect_timeout=5,
            **({"sslmode": options["sslmode"]} if "sslmode" in options else {}),
        )
    raise DatabaseUrlError(f"unsupported database URL scheme {parsed.scheme!r} (use postgresql:// or sqlite:///)")


def is_postgres(db) -> bool:
    return isinstance(getattr(db, "obj", db), PooledPostgresqlDatabase)
