"""The purge job (services/store/purge.py): what it deletes and keeps, its batches, its lock across
threads and processes, the admin command, and the rounds a running store does by itself."""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis

from common.crypto import Cipher
from common.settings import Settings, SettingsError, load_settings
from services.store import connections, credentials, purge
from services.store.app import create_app, prepare_database
from services.store.models import Connection, Environment, Integration, Operation, utcnow
from tests.store import admin
from tests.support.databases import REDIS_URL, raw_rows, unavailable
from tests.support.system import make_system

NOTHING = {"skipped": False, "connections": 0, "integrations": 0, "operations": 0}


@dataclass
class Store:
    env: dict[str, str]
    settings: Settings
    cipher: Cipher
    env_id: int

    @property
    def url(self) -> str:
        return self.env["NANGO_DATABASE_URL"]

    def purge(self, **kwargs) -> dict:
        return purge.purge(self.settings, **kwargs)


def open_store(env: dict[str, str]) -> tuple[Store, object]:
    settings = load_settings(env)
    cipher = Cipher(settings.NANGO_ENCRYPTION_KEY)
    db = prepare_database(settings, cipher)
    env_id = Environment.get(Environment.name == "dev").id
    return Store(env=env, settings=settings, cipher=cipher, env_id=env_id), db


@pytest.fixture
def make_store(tmp_path, database_url):
    """Open the store's database in this process with extra settings (e.g. a retention)."""
    opened = []

    def make(**settings: str) -> Store:
        store, db = open_store(make_system(tmp_path, database_url, **settings).env)
        opened.append(db)
        return store

    yield make
    for db in opened:
        getattr(db, "close_all", db.close)()


@pytest.fixture
def store(make_store) -> Store:
    return make_store()


@pytest.fixture(params=["database", "redis"])
def locked_store(request, make_store) -> Store:
    """A store whose purge lock is the database's own (advisory lock / lock file) or Redis's."""
    if request.param == "database":
        return make_store()
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return make_store(NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=f"purge-test-{uuid.uuid4().hex[:8]}")


def ago(days: float | None) -> datetime | None:
    return None if days is None else utcnow() - timedelta(days=days)


def make_integration(store: Store, deleted_days: float | None = None) -> Integration:
    uid = str(uuid.uuid4())
    return Integration.create(uid=uid, environment=store.env_id, unique_key=f"gh-{uid[:8]}", provider="github",
                              client_id="client", deleted_at=ago(deleted_days))


def make_connection(store: Store, integration: Integration, deleted_days: float | None = None) -> Connection:
    uid = str(uuid.uuid4())
    secret = json.dumps({"type": "API_KEY", "apiKey": f"key-{uid}"})
    return Connection.create(
        uid=uid, environment=store.env_id, integration=integration, connection_id=f"conn-{uid[:8]}",
        credentials_enc=store.cipher.encrypt(secret, "connections", "credentials_enc", uid),
        credentials_type="API_KEY", end_user={"id": "user-1", "email": "u@example.test"}, end_user_id="user-1",
        tags={"end_user_id": "user-1"}, metadata={"plan": "pro"}, deleted_at=ago(deleted_days))


def make_operations(store: Store, days_old: float, count: int = 1) -> None:
    at = ago(days_old)
    rows = [{"environment": store.env_id, "kind": "proxy", "provider_config_key": "gh", "connection_id": "c",
             "success": True, "created_at": at, "method": "GET", "path": f"/items/{i}", "status": 200}
            for i in range(count)]
    for start in range(0, count, 500):
        Operation.insert_many(rows[start:start + 500]).execute()


def uids(store: Store, table: str) -> set[str]:
    return {row[0] for row in raw_rows(store.url, f"SELECT uid FROM {table}")}


def operation_ages(store: Store) -> list[int]:
    now = utcnow()
    return sorted(round((now - op.created_at).total_seconds() / 86400) for op in Operation.select())


# --- what is deleted and what is kept ---------------------------------------------------------------


def test_connections_deleted_over_31_days_ago_are_purged_the_rest_untouched(store):
    github = make_integration(store)
    live = make_connection(store, github)
    old = make_connection(store, github, deleted_days=32)
    recent = make_connection(store, github, deleted_days=30)
    # Deleted as `DELETE /integrations/:key` does: the integration and its connections at one moment.
    gone = make_integration(store, deleted_days=40)
    gone_conns = [make_connection(store, gone, deleted_days=40) for _ in range(2)]
    # An old deleted integration that a connection still references (deleted recently) must stay.
    held = make_integration(store, deleted_days=40)
    held_conn = make_connection(store, held, deleted_days=5)
    young = make_integration(store, deleted_days=30)

    assert store.purge() == {"skipped": False, "connections": 3, "integrations": 1, "operations": 0}
    assert uids(store, "connections") == {live.uid, recent.uid, held_conn.uid}
    assert uids(store, "integrations") == {github.uid, held.uid, young.uid}
    assert not {old.uid, *(c.uid for c in gone_conns)} & uids(store, "connections")
    assert store.purge() == NOTHING


def test_a_connection_deleted_30_days_ago_keeps_everything_a_restore_needs(store):
    github = make_integration(store)
    recent = make_connection(store, github, deleted_days=30)
    before = raw_rows(store.url, f"SELECT * FROM connections WHERE uid = '{recent.uid}'")
    store.purge()
    assert raw_rows(store.url, f"SELECT * FROM connections WHERE uid = '{recent.uid}'") == before
    assert connections.find(store.env_id, github.unique_key, recent.connection_id) is None  # still deleted
    Connection.update(deleted_at=None).where(Connection.id == recent.id).execute()  # what a restore does
    conn, _ = connections.find(store.env_id, github.unique_key, recent.connection_id)
    ctx = SimpleNamespace(cipher=store.cipher)
    assert credentials.of(ctx, conn) == {"type": "API_KEY", "apiKey": f"key-{recent.uid}"}
    assert (conn.end_user, conn.tags, conn.metadata) == ({"id": "user-1", "email": "u@example.test"},
                                                         {"end_user_id": "user-1"}, {"plan": "pro"})


def test_the_purge_moment_can_be_given(store):
    github = make_integration(store)
    conn = make_connection(store, github, deleted_days=1)
    assert store.purge(now=datetime.now(UTC) + timedelta(days=29))["connections"] == 0
    assert store.purge(now=datetime.now(UTC) + timedelta(days=31))["connections"] == 1
    assert conn.uid not in uids(store, "connections")


def test_operations_older_than_the_retention_are_purged(make_store):
    store = make_store()  # the default retention: 30 days
    for days in (400, 31, 29, 0):
        make_operations(store, days)
    assert store.purge()["operations"] == 2
    assert operation_ages(store) == [0, 29]


def test_a_retention_of_a_week(make_store):
    store = make_store(OPERATIONS_RETENTION_DAYS="7")
    for days in (31, 8, 6):
        make_operations(store, days)
    assert store.purge()["operations"] == 2
    assert operation_ages(store) == [6]


def test_a_retention_of_0_keeps_every_record(make_store):
    store = make_store(OPERATIONS_RETENTION_DAYS="0")
    for days in (4000, 31, 0):
        make_operations(store, days)
    make_connection(store, make_integration(store), deleted_days=32)
    assert store.purge() == {"skipped": False, "connections": 1, "integrations": 0, "operations": 0}
    assert operation_ages(store) == [0, 31, 4000]


def test_a_backlog_larger_than_a_batch_is_purged_whole(store):
    make_operations(store, 60, count=2 * purge.BATCH + 17)
    make_operations(store, 1, count=3)
    github = make_integration(store)
    for _ in range(23):
        make_connection(store, github, deleted_days=45)
    keep = make_connection(store, github, deleted_days=2)
    assert store.purge() == {"skipped": False, "connections": 23, "integrations": 0,
                             "operations": 2 * purge.BATCH + 17}
    assert operation_ages(store) == [1, 1, 1]
    assert store.purge(batch=5) == NOTHING
    for _ in range(11):
        make_connection(store, github, deleted_days=45)
    assert store.purge(batch=5)["connections"] == 11  # 5 + 5 + 1: every batch, not only the first
    assert uids(store, "connections") == {keep.uid}


# --- one round at a time ------------------------------------------------------------------------------


def test_a_round_skips_while_another_holds_the_lock(locked_store):
    store = locked_store
    make_operations(store, 90, count=5)
    outcome: dict = {}

    def other_thread():
        outcome.update(store.purge())

    with purge.purge_lock(store.settings) as held:
        assert held is not None
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(timeout=30)
        assert outcome == {"skipped": True, "connections": 0, "integrations": 0, "operations": 0}
        done = admin(store.env, "purge")  # another process
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["skipped"] is True
        assert len(operation_ages(store)) == 5
    assert store.purge()["operations"] == 5


def purge_in_process(env: dict[str, str], barrier, results) -> None:
    """One process's purge round, released together with the other's by `barrier`."""
    try:
        store, db = open_store(env)
        barrier.wait(timeout=60)
        results.put(store.purge(batch=2))
        getattr(db, "close_all", db.close)()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put("".join(traceback.format_exception(exc))[-2000:])


def test_two_processes_purging_at_once_one_does_the_work(locked_store):
    backlog = 600  # 300 transactions of 2 rows: the winner holds the lock well past the barrier
    make_operations(locked_store, 45, count=backlog)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=purge_in_process, args=(locked_store.env, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert all(isinstance(o, dict) for o in outcomes), outcomes
    assert sorted(o["skipped"] for o in outcomes) == [False, True], outcomes
    assert sum(o["operations"] for o in outcomes) == backlog
    assert operation_ages(locked_store) == []


def test_two_threads_purging_at_once_one_does_the_work(locked_store):
    backlog = 600
    make_operations(locked_store, 45, count=backlog)
    barrier, outcomes = threading.Barrier(2), []

    def run():
        barrier.wait(timeout=30)
        outcomes.append(locked_store.purge(batch=2))

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(o["skipped"] for o in outcomes) == [False, True], outcomes
    assert sum(o["operations"] for o in outcomes) == backlog


# --- the admin command --------------------------------------------------------------------------------


def test_the_admin_command_runs_a_round_and_prints_the_counts(store):
    github = make_integration(store, deleted_days=3)
    make_connection(store, github, deleted_days=3)
    make_operations(store, 3, count=4)
    done = admin(store.env, "purge")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == NOTHING
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    done = admin(store.env, "purge", "--now", later)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"skipped": False, "connections": 1, "integrations": 1, "operations": 4}
    assert uids(store, "integrations") == set()


def test_the_admin_command_refuses_a_bad_moment_in_one_line(store):
    done = admin(store.env, "purge", "--now", "next tuesday")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("authport admin: ") and done.stderr.count("\n") == 1
    assert "--now" in done.stderr


# --- the rounds a store does by itself ----------------------------------------------------------------


def wait_until(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not done within {timeout}s: {what}")
        time.sleep(0.2)


def purge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "authport-purge" and t.is_alive()]


def test_a_running_store_purges_by_itself_round_after_round(tmp_path, database_url):
    system = make_system(tmp_path, database_url, PURGE_INTERVAL_SECONDS="1", WORKERS="2", LOG_LEVEL="info")
    store, db = open_store(system.env)
    github = make_integration(store)
    live = make_connection(store, github)
    first = make_connection(store, github, deleted_days=32)
    make_operations(store, 45, count=3)
    try:
        system.add_process("store", "services.store", "STORE_PORT")
        wait_until(lambda: first.uid not in uids(store, "connections"), what="first round")
        wait_until(lambda: operation_ages(store) == [], what="old operation records")
        second = make_connection(store, github, deleted_days=33)  # a later round takes this one
        wait_until(lambda: second.uid not in uids(store, "connections"), what="a later round")
        assert uids(store, "connections") == {live.uid}
    finally:
        system.stop()
        getattr(db, "close_all", db.close)()
    log = (tmp_path / "store.log").read_text()
    assert "purge round failed" not in log, log
    # Two workers each run rounds; the lock lets one do each piece of work.
    assert log.count("purged connections=1 integrations=0 operations=3") == 1, log


def test_an_app_served_in_the_process_that_built_it_runs_no_rounds_unless_asked(tmp_path, database_url):
    env = make_system(tmp_path, database_url, PURGE_INTERVAL_SECONDS="1").env
    before = purge_threads()
    app = create_app(load_settings(env))
    assert app.test_client().get("/healthz").status_code == 200
    assert purge_threads() == before
    store, db = open_store(env)
    conn = make_connection(store, make_integration(store), deleted_days=40)
    job = app.extensions["authport_purge"]
    job.start()
    try:
        wait_until(lambda: conn.uid not in uids(store, "connections"), timeout=15, what="asked-for rounds")
    finally:
        job.stop()
        getattr(db, "close_all", db.close)()


def test_no_background_rounds_with_an_interval_of_0(tmp_path, database_url):
    env = make_system(tmp_path, database_url, PURGE_INTERVAL_SECONDS="0").env
    before = purge_threads()
    job = create_app(load_settings(env)).extensions["authport_purge"]
    job.start()
    assert purge_threads() == before


def test_a_failed_round_is_logged_without_secrets_and_the_rounds_go_on(tmp_path, database_url, caplog):
    dead_redis = "redis://:hunter2-secret@127.0.0.1:9/0"  # nothing listens on port 9
    env = make_system(tmp_path, database_url, PURGE_INTERVAL_SECONDS="1", NANGO_REDIS_URL=dead_redis).env
    job = create_app(load_settings(env)).extensions["authport_purge"]
    caplog.set_level(logging.ERROR, logger="authport.store.purge")
    # An unreachable Redis does not stop a round (its lock is the database's): a missing table does.
    raw_rows(database_url, "DROP TABLE connections" + (" CASCADE" if database_url.startswith("postgres") else ""))
    job.start()
    try:
        wait_until(lambda: len([r for r in caplog.records if "purge round failed" in r.getMessage()]) >= 2,
                   timeout=20, what="two failed rounds")
    finally:
        job.stop()
    assert "hunter2" not in caplog.text
    assert "purge round failed: " in caplog.text


@pytest.mark.parametrize("name", ["PURGE_INTERVAL_SECONDS", "OPERATIONS_RETENTION_DAYS"])
@pytest.mark.parametrize("value", ["-1", "soon", "1.5"])
def test_the_settings_take_whole_numbers_of_at_least_0(name, value):
    with pytest.raises(SettingsError) as info:
        load_settings({name: value})
    assert info.value.name == name
    assert load_settings({name: "0"}).values[name] == 0
