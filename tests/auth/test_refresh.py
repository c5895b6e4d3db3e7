"""Token refresh on credential reads: the store decides under the connection's lock, auth calls
the test server's token endpoint (rotating refresh tokens), and failures back off."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.builders import gateway
from tests.auth.conftest import write_catalogue
from tests.auth.popup import run_popup
from tests.auth.test_connect_sessions import create_session
from tests.auth.test_oauth_flow import oauth_integration
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows
from tests.support.redis_server import RedisServer
from tests.support.system import make_system


def connected(system, oauth_server) -> tuple[str, str]:
    """A connection made by the popup flow: (integration key, connection id)."""
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    answer, hops = run_popup(system.url, key, connect_session_token=create_session(api)["token"])
    assert answer.status_code == 200, answer.text
    ids = raw_rows(system.database_url, "SELECT c.connection_id FROM connections c JOIN integrations i ON "
                                        f"i.id = c.integration_id WHERE i.unique_key = '{key}'")
    return key, ids[0][0]


def expire_soon(system, connection_id: str) -> None:
    moment = "datetime('now', '+60 seconds')" if system.database_url.startswith("sqlite") else (
        "now() at time zone 'utc' + interval '60 seconds'")
    raw_rows(system.database_url, f"UPDATE connections SET expires_at = {moment} WHERE connection_id = "
                                  f"'{connection_id}'")


def read(system, key: str, connection_id: str, **params):
    return gateway(system).get(f"/connections/{connection_id}",
                               params={"provider_config_key": key, "refresh_token": "true", **params})


def refresh_calls(oauth_server) -> int:
    return oauth_server.token_requests.count("refresh_token")


def test_a_token_about_to_expire_is_refreshed_once(system, oauth_server):
    key, connection_id = connected(system, oauth_server)
    before = read(system, key, connection_id).json()["credentials"]
    calls = refresh_calls(oauth_server)
    assert read(system, key, connection_id).json()["credentials"]["access_token"] == before["access_token"]
    assert refresh_calls(oauth_server) == calls  # fresh: no call
    expire_soon(system, connection_id)
    after = read(system, key, connection_id).json()["credentials"]
    assert refresh_calls(oauth_server) == calls + 1
    assert after["access_token"] != before["access_token"]
    assert after["access_token"] in oauth_server.issued_access_tokens()
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and the new one stored
    forced = read(system, key, connection_id, force_refresh="true")
    assert forced.status_code == 200  # a refresh this recent is shared, an older one is redone
    assert forced.json()["credentials"]["access_token"] in oauth_server.issued_access_tokens()
    every = raw_rows(system.database_url, "SELECT kind, success, error_code, detail FROM operations WHERE "
                                          f"connection_id = '{connection_id}' ORDER BY id")
    records = [row for row in every if row[0] == "refresh"]
    assert [(kind, bool(ok), code) for kind, ok, code, _ in records] == [("refresh", True, None)]
    assert "canary" not in repr(every) and '"duration_ms"' in records[0][3]
    assert every[0][0] == "connection.created" and '"oauth2"' in every[0][3]  # the OAuth flow made it


def test_the_old_refresh_token_is_kept_when_none_comes_back(system, oauth_server):
    key, connection_id = connected(system, oauth_server)
    before = read(system, key, connection_id).json()["credentials"]
    oauth_server.rotate_refresh_tokens = False
    try:
        expire_soon(system, connection_id)
        after = read(system, key, connection_id).json()["credentials"]
    finally:
        oauth_server.rotate_refresh_tokens = True
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]


def test_a_failed_refresh_backs_off(system, oauth_server):
    key, connection_id = connected(system, oauth_server)
    for token in oauth_server.tokens.values():  # the provider revokes the grant
        token.revoked = True
    expire_soon(system, connection_id)
    failed = read(system, key, connection_id)
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "invalid_credentials"
    assert failed.json()["error"]["payload"]["connection"]["credentials"] == {}
    assert "canary-" not in failed.text
    calls = refresh_calls(oauth_server)
    backoff = read(system, key, connection_id)
    # As Nango's server answers: 424 invalid_credentials; why, in the payload (Authport's detail).
    assert backoff.status_code == 424 and backoff.json()["error"]["code"] == "invalid_credentials"
    assert backoff.json()["error"]["payload"]["reason"] == "refresh_backoff"
    assert backoff.json()["error"]["message"] == "A recent refresh attempt failed. Backing off before retrying."
    assert refresh_calls(oauth_server) == calls
    records = raw_rows(system.database_url, "SELECT kind, success, error_code FROM operations WHERE "
                                            f"connection_id = '{connection_id}' AND kind = 'refresh'")
    assert [(kind, bool(ok)) for kind, ok, _ in records] == [("refresh", False)], records
    assert records[0][2] == "refresh_token_external_error", records


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, oauth_server):
    """Two processes of each service (WORKERS=2) on Postgres and Redis, as replicas would run."""
    tmp_dir = tmp_path_factory.mktemp("replicas")
    redis_server = RedisServer(tmp_dir).start()
    url = create_postgres_database()
    running = make_system(tmp_dir, url, DEFAULT_PLAN="growth", PROVIDERS_FILE=write_catalogue(tmp_dir, oauth_server),
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8", NANGO_REDIS_URL=redis_server.url, WORKERS="2",
                          THREADS="8").start()
    yield running
    running.stop()
    redis_server.stop()
    drop_postgres_database(url)


@pytest.mark.parametrize("force", [False, True])
def test_fifty_concurrent_reads_cause_one_refresh(replicas, oauth_server, force):
    key, connection_id = connected(replicas, oauth_server)
    expire_soon(replicas, connection_id)
    calls = refresh_calls(oauth_server)
    oauth_server.token_delay = 0.5
    params = {"force_refresh": "true"} if force else {}
    try:
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: read(replicas, key, connection_id, **params), range(50)))
    finally:
        oauth_server.token_delay = 0.0
    assert [a.status_code for a in answers] == [200] * 50, [a.text for a in answers if a.status_code != 200][:2]
    assert refresh_calls(oauth_server) == calls + 1
    tokens = {a.json()["credentials"]["access_token"] for a in answers}
    assert len(tokens) == 1
    newest = oauth_server.tokens[tokens.pop()]
    assert read(replicas, key, connection_id).json()["credentials"]["refresh_token"] == newest.refresh_token
