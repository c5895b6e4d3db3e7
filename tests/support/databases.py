"""Fresh, throwaway databases for tests: a SQLite file, or a new Postgres database."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

PG_ADMIN_URL = os.environ.get("AUTHPORT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AUTHPORT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    """CI sets AUTHPORT_REQUIRE_SERVICES=1: a missing Postgres or Redis fails instead of skipping."""
    return os.environ.get("AUTHPORT_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(what: str, why: Exception) -> None:
    message = f"{what} is not reachable ({type(why).__name__}: {str(why).strip()[:120]})"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def _admin():
    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
    conn.autocommit = True
    return conn


def create_postgres_database() -> str:
    """Create an empty database and return its URL."""
    name = f"authport_t_{uuid.uuid4().hex[:12]}"
    try:
        conn = _admin()
    except psycopg2.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return urlunparse(urlparse(PG_ADMIN_URL)._replace(path=f"/{name}"))


def drop_postgres_database(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def raw_rows(database_url: str, sql: str) -> list[tuple]:
    """Run SQL straight against the database (no Authport code), for tests that read raw storage."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(database_url[len("sqlite:///"):])
        try:
            rows = conn.execute(sql).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.commit()
        conn.close()


def drop_redis_prefix(prefix: str) -> None:
    """Delete every Redis key a test system wrote under its REDIS_KEY_PREFIX."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in client.scan_iter(f"{prefix}:*"):
            client.delete(name)
    finally:
        client.close()
