"""Restore within 31 days and purge on demand, through the API and the admin CLI, on both
backends: what comes back, the 404/409/410 refusals, a refresh after a restore, the proxies'
credential version bumped, and after a purge no trace of the end user anywhere in the database."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.api.builders import gateway, get_connection, make_connection, make_integration, unique
from tests.auth.conftest import oauth1_server, oauth_server, write_catalogue  # noqa: F401 - fixtures
from tests.auth.test_refresh import connected, expire_soon, read
from tests.store import admin, raw_execute, raw_text
from tests.support.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    drop_redis_prefix,
    raw_rows,
)
from tests.support.system import make_system


def new_canaries() -> dict[str, str]:
    """Values found nowhere else in the module's database: each test makes its own."""
    mark = uuid.uuid4().hex[:8]
    return {"email": f"canary-{mark}@example.org", "name": f"Canary Person {mark}", "token": f"canary-at-{mark}",
            "refresh": f"canary-rt-{mark}", "meta": f"canary-meta-{mark}", "tag": f"canary-tag-{mark}",
            "config": f"canary-config-{mark}", "org": f"canary-org-{mark}"}


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def system(request, tmp_path_factory, oauth_server, oauth1_server):  # noqa: F811 - the imported fixtures
    tmp_dir = tmp_path_factory.mktemp(f"lifecycle-{request.param}")
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    prefix = f"authport-t-{uuid.uuid4().hex[:8]}"
    running = make_system(tmp_dir, url, DEFAULT_PLAN="growth", PROVIDERS_FILE=write_catalogue(tmp_dir, oauth_server),
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8", LOG_LEVEL="debug", NANGO_REDIS_URL=REDIS_URL,
                          REDIS_KEY_PREFIX=prefix).start()
    yield running
    running.stop()
    drop_redis_prefix(prefix)
    if request.param == "postgres":
        drop_postgres_database(url)


def params(key: str) -> dict:
    return {"provider_config_key": key}


def personal_connection(api, key: str, end_user_id: str, canary: dict, connection_id: str | None = None) -> dict:
    return make_connection(
        api, key, connection_id=connection_id or unique("conn"),
        credentials={"type": "OAUTH2", "access_token": canary["token"], "refresh_token": canary["refresh"]},
        end_user={"id": end_user_id, "email": canary["email"], "display_name": canary["name"],
                  "organization": {"id": canary["org"]}},
        metadata={"note": canary["meta"]}, tags={"team": canary["tag"]},
        connection_config={"site": canary["config"]})


def records(api, **filters) -> list[dict]:
    answer = api.get("/logs", params=filters)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def assert_error(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and (error.get("message") or error.get("errors")), error


def test_a_restored_connection_comes_back_whole(system):
    api = gateway(system)
    canary = new_canaries()
    key = make_integration(api, provider="test-oauth", unique_key=unique("lc"))["unique_key"]
    end_user = unique("eu")
    made = personal_connection(api, key, end_user, canary)
    conn = made["connection_id"]
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200
    assert get_connection(api, key, conn).status_code == 404
    answer = api.post(f"/connections/{conn}/restore", params=params(key), headers={"X-Request-Id": "restore-1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-Id"] == "restore-1"
    back = get_connection(api, key, conn, refresh_token="true").json()
    assert back["credentials"]["access_token"] == canary["token"]
    assert back["credentials"]["refresh_token"] == canary["refresh"]
    for name in ("metadata", "tags", "connection_config", "end_user"):
        assert back[name] == made[name], name
    restored = records(api, connection_id=conn, type="connection.restored")
    assert [(r["actor"], r["request_id"], r["outcome"]) for r in restored] == [("key:default", "restore-1", "success")]
    assert canary["token"] not in answer.text and canary["token"] not in str(restored)


def test_restore_refuses_a_live_one_an_old_one_and_an_unknown_one(system):
    api = gateway(system)
    key = make_integration(api, provider="test-oauth", unique_key=unique("lc"))["unique_key"]
    conn = make_connection(api, key)["connection_id"]
    assert_error(api.post("/connections/never-made/restore", params=params(key)), 404, "unknown_connection")
    assert_error(api.post(f"/connections/{conn}/restore", params=params(key)), 409, "connection_exists")
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200
    make_connection(api, key, connection_id=conn)  # a new live one with the same id
    assert_error(api.post(f"/connections/{conn}/restore", params=params(key)), 409, "connection_exists")
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200
    old = "datetime('now', '-32 days')" if system.database_url.startswith("sqlite") else (
        "(now() at time zone 'utc') - interval '32 days'")
    raw_execute(system.database_url, f"UPDATE connections SET deleted_at = {old} WHERE connection_id = '{conn}'")
    assert_error(api.post(f"/connections/{conn}/restore", params=params(key)), 410, "restore_window_passed")
    assert_error(api.post(f"/connections/{conn}/restore", params=params("no-such-integration")), 400,
                 "unknown_provider_config")
    assert get_connection(api, key, conn).status_code == 404


def version_of(system, key: str, conn: str) -> bytes | None:
    client = redis.Redis.from_url(REDIS_URL)
    env_id = raw_rows(system.database_url, "SELECT e.id FROM environments e JOIN accounts a ON a.id = e.account_id "
                                           "WHERE a.name = 'default' AND e.name = 'dev'")[0][0]
    try:
        return client.get(f"{system.env['REDIS_KEY_PREFIX']}:conn:{env_id}:{key}:{conn}")
    finally:
        client.close()


def test_a_refresh_after_a_restore_works_and_the_restore_bumps_the_credential_version(system, oauth_server):  # noqa: F811
    key, conn = connected(system, oauth_server)
    api = gateway(system)
    before = read(system, key, conn).json()["credentials"]
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200
    deleted_version = version_of(system, key, conn)
    assert api.post(f"/connections/{conn}/restore", params=params(key)).status_code == 200
    assert version_of(system, key, conn) not in (None, deleted_version)
    expire_soon(system, conn)
    after = read(system, key, conn)
    assert after.status_code == 200, after.text
    assert after.json()["credentials"]["access_token"] != before["access_token"]
    assert after.json()["credentials"]["access_token"] in oauth_server.issued_access_tokens()
    kinds = [r["type"] for r in records(api, connection_id=conn, type="refresh,connection.restored")]
    assert kinds == ["refresh", "connection.restored"]


def test_purging_one_connection_leaves_no_personal_data_and_a_record(system):
    api = gateway(system)
    canary = new_canaries()
    key = make_integration(api, provider="test-oauth", unique_key=unique("lc"))["unique_key"]
    end_user = unique("canary-user")
    # Ids built from the end user's email, as some applications do: their records are renamed too.
    conn = personal_connection(api, key, end_user, canary, connection_id=f"u-{canary['email']}")["connection_id"]
    other = make_connection(api, key)["connection_id"]
    assert get_connection(api, key, conn).status_code == 200
    api.post("/connections/metadata", json={"connection_id": conn, "provider_config_key": key, "metadata": {"a": 1}})
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200  # a deleted one purges too
    answer = api.post(f"/connections/{conn}/purge", params=params(key))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "purged": {"connections": 1}}
    assert_error(api.post(f"/connections/{conn}/purge", params=params(key)), 404, "unknown_connection")
    assert raw_rows(system.database_url, f"SELECT COUNT(*) FROM connections WHERE connection_id = '{conn}'") == [(0,)]
    dump = raw_text(system.database_url)
    for value in [end_user, *canary.values()]:
        assert value not in dump, value
    assert get_connection(api, key, other).status_code == 200
    purged = [r for r in records(api, integration=key, type="connection.purged")]
    assert len(purged) == 1 and purged[0]["connection_id"].startswith("purged:")
    assert purged[0]["actor"] == "key:default" and canary["email"] not in str(records(api, integration=key))
    assert_error(api.post(f"/connections/{conn}/restore", params=params(key)), 404, "unknown_connection")


def test_purging_an_end_user_removes_every_connection_and_session_of_them(system):
    api = gateway(system)
    canary = new_canaries()
    key = make_integration(api, provider="test-oauth", unique_key=unique("lc"))["unique_key"]
    end_user = unique("gdpr-user")
    live = personal_connection(api, key, end_user, canary)["connection_id"]
    deleted = personal_connection(api, key, end_user, canary)["connection_id"]
    assert api.delete(f"/connections/{deleted}", params=params(key)).status_code == 200
    session = api.post("/connect/sessions", json={"end_user": {"id": end_user, "email": canary["email"]}})
    assert session.status_code == 201, session.text
    kept = make_connection(api, key, end_user={"id": unique("other-user")})["connection_id"]
    answer = api.post("/connections/purge", json={"end_user_id": end_user})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "purged": {"connections": 2, "connect_sessions": 1}}
    dump = raw_text(system.database_url)
    for value in [end_user, *canary.values()]:
        assert value not in dump, value
    for conn in (live, deleted):
        assert raw_rows(system.database_url, f"SELECT COUNT(*) FROM connections WHERE connection_id = '{conn}'") \
            == [(0,)]
    assert get_connection(api, key, kept).status_code == 200
    summary = records(api, type="end_user.purged")[0]
    assert summary["detail"] == {"connections": 2, "connect_sessions": 1} and end_user not in str(summary)
    assert api.post("/connections/purge", json={"end_user_id": end_user}).json()["purged"]["connections"] == 0
    assert_error(api.post("/connections/purge", json={}), 400, "invalid_body")
    assert canary["token"] not in system.logs() and canary["email"] not in system.logs()


def test_the_admin_cli_restores_and_purges(system):
    api = gateway(system)
    canary = new_canaries()
    key = make_integration(api, provider="test-oauth", unique_key=unique("lc"))["unique_key"]
    end_user = unique("cli-user")
    conn = personal_connection(api, key, end_user, canary)["connection_id"]
    assert api.delete(f"/connections/{conn}", params=params(key)).status_code == 200
    done = admin(system.env, "connections", "restore", "--env", "dev", "--integration", key, conn)
    assert done.returncode == 0, done.stderr
    assert get_connection(api, key, conn).status_code == 200
    refused = admin(system.env, "connections", "restore", "--env", "dev", "--integration", key, conn)
    assert refused.returncode == 2 and "live connection" in refused.stderr
    done = admin(system.env, "connections", "purge-end-user", "--env", "dev", end_user)
    assert done.returncode == 0 and '"connections":1' in done.stdout, done.stderr
    assert get_connection(api, key, conn).status_code == 404
    other = make_connection(api, key)["connection_id"]
    done = admin(system.env, "connections", "purge", "--env", "dev", "--integration", key, other)
    assert done.returncode == 0, done.stderr
    actors = {(r["type"], r["actor"]) for r in records(api, integration=key)}
    assert {("connection.restored", "admin"), ("connection.purged", "admin")} <= actors
    assert end_user not in raw_text(system.database_url)
