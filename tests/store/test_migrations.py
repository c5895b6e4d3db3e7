"""Start-up work (migrations, first records) is safe to run twice and from several processes at once."""

from __future__ import annotations

import base64
import multiprocessing
import os
import traceback
from pathlib import Path

import pytest

from common.crypto import Cipher
from common.settings import load_settings
from services.store.app import prepare_database
from services.store.migrations import MIGRATIONS
from tests.store import raw_dump
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows

PROCESSES = 6
ROUNDS = 4


def settings_for(database_url: str, key: str | None):
    return load_settings({"NANGO_DATABASE_URL": database_url, **({"NANGO_ENCRYPTION_KEY": key} if key else {})})


def close(db) -> None:
    getattr(db, "close_all", lambda: None)()


def assert_first_start_records(database_url: str) -> None:
    assert raw_rows(database_url, "SELECT name FROM accounts") == [("default",)]
    assert sorted(raw_rows(database_url, "SELECT name FROM environments")) == [("dev",), ("prod",)]
    live = raw_rows(database_url, "SELECT e.name, k.kind, COUNT(*) FROM api_keys k JOIN environments e "
                                  "ON e.id = k.environment_id WHERE k.revoked_at IS NULL GROUP BY e.name, k.kind")
    assert sorted(live) == [("dev", "public", 1), ("dev", "secret", 1), ("prod", "public", 1), ("prod", "secret", 1)]
    versions = raw_rows(database_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(version,) for version, _, _ in MIGRATIONS]


def test_start_up_work_is_safe_to_run_twice(database_url):
    settings = settings_for(database_url, base64.b64encode(os.urandom(32)).decode())
    cipher = Cipher(settings.NANGO_ENCRYPTION_KEY)
    close(prepare_database(settings, cipher))
    first = raw_dump(database_url)
    close(prepare_database(settings, cipher))
    assert raw_dump(database_url) == first
    assert_first_start_records(database_url)


def start_up(database_url: str, key: str | None, barrier, results) -> None:
    """One process's start-up, released together with the others by `barrier`."""
    try:
        settings = settings_for(database_url, key)
        cipher = Cipher(settings.NANGO_ENCRYPTION_KEY)
        barrier.wait(timeout=60)
        close(prepare_database(settings, cipher))
        results.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put("".join(traceback.format_exception(exc))[-2000:])


def race(database_url: str, key: str | None) -> list[str]:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=start_up, args=(database_url, key, barrier, results))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("encrypted", [True, False], ids=["key", "no-key"])
def test_processes_starting_together_on_a_fresh_database_all_succeed(backend, encrypted, tmp_path: Path):
    key = base64.b64encode(os.urandom(32)).decode() if encrypted else None
    for attempt in range(ROUNDS):
        url = (f"sqlite:///{tmp_path / f'race-{attempt}.db'}" if backend == "sqlite"
               else create_postgres_database())
        try:
            outcomes = race(url, key)
            assert outcomes == ["ok"] * PROCESSES, next(o for o in outcomes if o != "ok")
            assert_first_start_records(url)
        finally:
            if backend == "postgres":
                drop_postgres_database(url)


def test_the_list_filters_sql_is_what_the_postgres_indexes_answer(database_url):
    """Migration 12's indexes serve the exact expressions `list_connections` narrows by: with
    sequential scans priced out, Postgres answers the tag and search tests from them."""
    if not database_url.startswith("postgres"):
        pytest.skip("the filter indexes are Postgres's")
    from services.store.connections import _sql_narrowing
    from services.store.models import Connection

    settings = settings_for(database_url, None)
    db = prepare_database(settings, Cipher(None))
    try:
        for tags, search, index in (({"team": "Red"}, None, "connections_tags"),
                                    ({}, "user-42@example", "connections_search")):
            query = Connection.select().where(Connection.deleted_at.is_null(), *_sql_narrowing(tags, search))
            sql, params = query.sql()
            with db.atomic() as transaction:
                db.execute_sql("SET LOCAL enable_seqscan TO off")
                db.execute_sql("DROP INDEX connections_live_key")  # on an empty table, cheaper to walk
                plan = "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, params).fetchall())
                transaction.rollback()
            assert f"Bitmap Index Scan on {index}" in plan and "Index Cond" in plan, plan  # not a walk of it
    finally:
        close(db)
