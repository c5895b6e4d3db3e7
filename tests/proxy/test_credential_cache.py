"""The proxy's credential cache (services/proxy/credentials.py) on the real processes: two proxy
processes, each behind its own gateway, sharing Redis with the store. Whatever the store commits
(delete, re-import, refresh) is seen by the very next proxied call on either proxy."""

from __future__ import annotations

import uuid

import pytest
import redis
import requests
import yaml

from common.identity import INTERNAL_KEY_HEADER
from common.internal import StoreClient
from tests.proxy.builders import connect, echo, error, gateway, proxied, unique
from tests.proxy.conftest import SOURCE_IPS, catalogue
from tests.support.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    drop_redis_prefix,
    raw_rows,
    unavailable,
)
from tests.support.oauth_server import OAuthServer, Token
from tests.support.system import free_port, make_system


@pytest.fixture(scope="module")
def oauth_server():
    server = OAuthServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, upstream, sentinel, oauth_server):
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    tmp_dir = tmp_path_factory.mktemp("credential-cache")
    providers = catalogue(upstream.url, sentinel.url, f"http://127.0.0.1:{free_port()}")
    providers["echo-refresh"] = {"auth_mode": "OAUTH2", "authorization_url": oauth_server.url + "/authorize",
                                 "token_url": oauth_server.url + "/token", "proxy": {"base_url": upstream.url}}
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    prefix = f"t-credcache-{uuid.uuid4().hex}"
    url = create_postgres_database()
    system = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                         EGRESS_SOURCE_IPS=",".join(SOURCE_IPS), OUTBOUND_ALLOW_CIDRS="127.0.0.1/32",
                         NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, WORKERS="1")
    try:
        system.start()
        second_proxy = system.add_process("proxy-2", "services.proxy", "PROXY_PORT")
        system.urls = [system.url, system.add_gateway("gateway-2", PROXY_URL=second_proxy)]
        yield system
    finally:
        system.stop()
        drop_redis_prefix(prefix)
        drop_postgres_database(url)


def via(system, index: int):
    api = gateway(system)
    api.base_url = system.urls[index]
    return api


def calls(system, key: str, connection_id: str, endpoint: str = "/api/ping") -> list:
    """Two proxied calls through each gateway/proxy pair (one process each), alternating."""
    return [proxied(via(system, i % 2), "GET", endpoint, key, connection_id) for i in range(4)]


def test_the_cache_is_used_between_announced_changes(cluster):
    key, connection_id = connect(gateway(cluster), "echo-key", {"type": "API_KEY", "apiKey": "cached-key"})
    assert all(echo(r)["headers"]["x-api-key"] == "cached-key" for r in calls(cluster, key, connection_id))
    # A change behind the store's back (no announcement) is not seen while the entries live.
    raw_rows(cluster.database_url, "UPDATE connections SET deleted_at = now() at time zone 'utc' "
                                   f"WHERE connection_id = '{connection_id}'")
    assert all(r.status_code == 200 for r in calls(cluster, key, connection_id))


def test_a_deleted_connection_fails_on_the_very_next_call(cluster):
    api = gateway(cluster)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "doomed-key"})
    for _ in range(2):
        assert all(r.status_code == 200 for r in calls(cluster, key, connection_id))
    assert via(cluster, 1).delete(f"/connections/{connection_id}",
                                  params={"provider_config_key": key}).status_code == 200
    for response in calls(cluster, key, connection_id):
        assert response.status_code == 400 and error(response)["code"] == "server_error"


def test_a_reimported_credential_is_used_on_the_very_next_call(cluster):
    api = gateway(cluster)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "first-key"})
    for _ in range(2):
        assert all(echo(r)["headers"]["x-api-key"] == "first-key" for r in calls(cluster, key, connection_id))
    response = via(cluster, 0).post("/connections", json={
        "provider_config_key": key, "connection_id": connection_id,
        "credentials": {"type": "API_KEY", "apiKey": "second-key"}})
    assert response.status_code == 201, response.text
    assert all(echo(r)["headers"]["x-api-key"] == "second-key" for r in calls(cluster, key, connection_id))


def test_a_deleted_integration_stops_its_connections_at_once(cluster):
    api = gateway(cluster)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "integration-key"})
    assert all(r.status_code == 200 for r in calls(cluster, key, connection_id))
    assert api.delete(f"/integrations/{key}").status_code == 200
    assert all(r.status_code in (400, 404) for r in calls(cluster, key, connection_id))


def oauth_connection(cluster, oauth_server) -> tuple[str, str, str]:
    """An OAUTH2 connection whose refresh token the test server knows: (key, connection id, token)."""
    client = oauth_server.add_client()
    access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
    oauth_server.tokens[access] = Token(client.client_id, access, refresh, "")
    api, key, connection_id = gateway(cluster), unique("echo-refresh"), unique("conn")
    assert api.post("/integrations", json={"unique_key": key, "provider": "echo-refresh", "credentials": {
        "type": "OAUTH2", "client_id": client.client_id, "client_secret": client.client_secret,
        "scopes": "read"}}).status_code == 200
    response = api.post("/connections", json={
        "provider_config_key": key, "connection_id": connection_id, "credentials": {
            "type": "OAUTH2", "access_token": access, "refresh_token": refresh, "expires_at": "2099-01-01T00:00:00Z"}})
    assert response.status_code == 201, response.text
    return key, connection_id, access


def bearer(response) -> str:
    return echo(response)["headers"]["authorization"].removeprefix("Bearer ")


def test_a_refreshed_token_is_used_on_the_very_next_call(cluster, oauth_server):
    key, connection_id, first = oauth_connection(cluster, oauth_server)
    for _ in range(2):
        assert all(bearer(r) == first for r in calls(cluster, key, connection_id, "/ping"))
    forced = via(cluster, 0).get(f"/connections/{connection_id}",
                                 params={"provider_config_key": key, "force_refresh": "true"})
    assert forced.status_code == 200, forced.text
    second = forced.json()["credentials"]["access_token"]
    assert second != first and second in oauth_server.issued_access_tokens()
    assert all(bearer(r) == second for r in calls(cluster, key, connection_id, "/ping"))


def test_a_refresh_after_the_providers_401_reaches_the_other_proxy(cluster, oauth_server):
    key, connection_id, first = oauth_connection(cluster, oauth_server)
    assert all(bearer(r) == first for r in calls(cluster, key, connection_id, "/ping"))
    rejected = proxied(via(cluster, 0), "GET", f"/status/401?times=1&c={connection_id}", key, connection_id)
    assert rejected.status_code == 200, rejected.text  # refreshed by the store, then retried
    second = bearer(rejected)
    assert second != first
    assert all(bearer(r) == second for r in calls(cluster, key, connection_id, "/ping"))


def direct(cluster, proxy_url: str, key: str, connection_id: str, endpoint: str = "/api/ping") -> requests.Response:
    """A proxied call sent straight to a proxy process, as the gateway would but without the
    credential versions header: the proxy reads the versions from Redis itself."""
    store = StoreClient(cluster.service_url("store"), cluster.env["INTERNAL_API_KEY"])
    headers = {INTERNAL_KEY_HEADER: cluster.env["INTERNAL_API_KEY"], "Provider-Config-Key": key,
               "Connection-Id": connection_id, **store.resolve_key(cluster.dev_key).to_headers()}
    with requests.Session() as http:
        http.trust_env = False
        return http.get(proxy_url + "/proxy" + endpoint, headers=headers, timeout=30)


def direct_calls(cluster, key: str, connection_id: str) -> list[requests.Response]:
    """Three direct calls to the first proxy process."""
    return [direct(cluster, cluster.service_url("proxy"), key, connection_id) for _ in range(3)]


def test_direct_calls_use_the_cache_between_announced_changes(cluster):
    key, connection_id = connect(gateway(cluster), "echo-key", {"type": "API_KEY", "apiKey": "direct-cached"})
    assert all(echo(r)["headers"]["x-api-key"] == "direct-cached" for r in direct_calls(cluster, key, connection_id))
    raw_rows(cluster.database_url, "UPDATE connections SET deleted_at = now() at time zone 'utc' "
                                   f"WHERE connection_id = '{connection_id}'")
    assert all(r.status_code == 200 for r in direct_calls(cluster, key, connection_id))


def test_direct_calls_see_a_reimport_and_a_delete_at_once(cluster):
    api = gateway(cluster)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "direct-first"})
    for _ in range(2):
        assert all(echo(r)["headers"]["x-api-key"] == "direct-first" for r in direct_calls(cluster, key, connection_id))
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": {"type": "API_KEY", "apiKey": "direct-second"}})
    assert response.status_code == 201, response.text
    assert all(echo(r)["headers"]["x-api-key"] == "direct-second" for r in direct_calls(cluster, key, connection_id))
    assert api.delete(f"/connections/{connection_id}", params={"provider_config_key": key}).status_code == 200
    for response in direct_calls(cluster, key, connection_id):
        assert response.status_code == 400 and error(response)["code"] == "server_error", response.text
