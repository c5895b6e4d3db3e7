"""The store's credential-read cache (services/store/read_cache.py) on the real processes: two store
processes, each behind its own gateway, sharing Postgres and Redis. A change made through one
replica is seen on the very next read through either; between changes reads come from memory.

Most tests plant a *canary*: metadata written straight into the database, which no process
announces. While both replicas answer from memory the canary stays unseen; once a write is
announced, the next read through either replica shows it. So each test proves both that the
cache was in use and that the write reached it."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import pytest
import redis
import yaml

from services.store.models import utcnow
from tests.api.builders import gateway, unique
from tests.support.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    drop_redis_prefix,
    raw_rows,
    unavailable,
)
from tests.support.oauth_server import OAuthServer, Token
from tests.support.system import make_system

BUFFER = 60  # the refreshing provider's token_expiration_buffer, in seconds


@pytest.fixture(scope="module")
def oauth_server():
    server = OAuthServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, oauth_server):
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    tmp_dir = tmp_path_factory.mktemp("read-cache")
    providers = {
        "keyed": {"auth_mode": "API_KEY", "proxy": {"base_url": "http://127.0.0.1:9"}},
        "refreshing": {"auth_mode": "OAUTH2", "authorization_url": oauth_server.url + "/authorize",
                       "token_url": oauth_server.url + "/token", "token_expiration_buffer": BUFFER},
    }
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    prefix = f"t-readcache-{uuid.uuid4().hex}"
    url = create_postgres_database()
    system = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="enterprise",
                         NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, OUTBOUND_ALLOW_CIDRS="127.0.0.1/32")
    try:
        system.start()
        second_store = system.add_process("store-2", "services.store", "STORE_PORT")
        system.urls = [system.url, system.add_gateway("gateway-2", STORE_URL=second_store)]
        yield system
    finally:
        system.stop()
        drop_redis_prefix(prefix)
        drop_postgres_database(url)


def via(cluster, index: int, key: str = "dev"):
    """A client of the first or second gateway (and so store); `key` as tests.api.builders.gateway takes it."""
    api = gateway(cluster, key)
    api.base_url = cluster.urls[index]
    return api


def reads(cluster, key: str, connection_id: str, secret: str = "dev", **params) -> list:
    """Two reads through each gateway/store pair, alternating."""
    return [via(cluster, i % 2, secret).get(f"/connections/{connection_id}",
                                           params={"provider_config_key": key, **params}) for i in range(4)]


def keyed_connection(cluster, api_key: str = "first-key") -> tuple[str, str]:
    api, key, connection_id = gateway(cluster), unique("keyed"), unique("conn")
    assert api.post("/integrations", json={"unique_key": key, "provider": "keyed"}).status_code == 200
    imported = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": {"type": "API_KEY", "apiKey": api_key}})
    assert imported.status_code == 201, imported.text
    return key, connection_id


def warm(cluster, key: str, connection_id: str, **params) -> list:
    """Read until both replicas hold the connection, then plant the canary; return the reads."""
    seen = reads(cluster, key, connection_id, **params)
    assert all(r.status_code == 200 for r in seen), seen[0].text
    raw_rows(cluster.database_url, "UPDATE connections SET metadata = '{\"canary\": true}' "
                                   f"WHERE connection_id = '{connection_id}'")
    cached = reads(cluster, key, connection_id, **params)
    assert all(r.status_code == 200 and "canary" not in r.json()["metadata"] for r in cached)
    return cached


def shows_canary(responses) -> bool:
    return all(r.status_code == 200 and r.json()["metadata"].get("canary") is True for r in responses)


def test_a_cached_answer_is_the_full_answer_but_for_last_fetched_at(cluster):
    key, connection_id = keyed_connection(cluster)
    full = via(cluster, 0).get(f"/connections/{connection_id}", params={"provider_config_key": key})
    raw_rows(cluster.database_url, "UPDATE connections SET metadata = '{\"canary\": true}' "
                                   f"WHERE connection_id = '{connection_id}'")
    cached = via(cluster, 0).get(f"/connections/{connection_id}", params={"provider_config_key": key})
    assert cached.json()["metadata"] == {}  # from memory: the unannounced canary is not seen
    first, second = full.json()["last_fetched_at"], cached.json()["last_fetched_at"]
    assert second > first
    assert cached.content == full.content.replace(first.encode(), second.encode())
    for name in ("Content-Type", "X-RateLimit-Limit", "Access-Control-Allow-Origin"):
        assert cached.headers.get(name) == full.headers.get(name), name
    assert int(cached.headers["X-RateLimit-Remaining"]) < int(full.headers["X-RateLimit-Remaining"])


def test_a_cached_read_is_recorded_and_sets_last_fetched_at_within_a_second(cluster):
    key, connection_id = keyed_connection(cluster)
    warm(cluster, key, connection_id)
    before = utcnow()
    last = via(cluster, 1).get(f"/connections/{connection_id}", params={"provider_config_key": key})
    assert "canary" not in last.json()["metadata"]
    time.sleep(1.5)
    (stored,), = raw_rows(cluster.database_url,
                          f"SELECT last_fetched_at FROM connections WHERE connection_id = '{connection_id}'")
    assert stored >= before and stored.isoformat(timespec="milliseconds") + "Z" == last.json()["last_fetched_at"]
    (count,), = raw_rows(cluster.database_url, "SELECT count(*) FROM operations WHERE kind = 'credential.read' "
                                               f"AND connection_id = '{connection_id}'")
    assert count == 9  # warm's eight reads and this one, cached or not


def test_a_reimport_through_one_replica_is_read_at_once_through_both(cluster):
    key, connection_id = keyed_connection(cluster)
    warm(cluster, key, connection_id)
    assert via(cluster, 0).post("/connections", json={
        "provider_config_key": key, "connection_id": connection_id,
        "credentials": {"type": "API_KEY", "apiKey": "second-key"}}).status_code == 201
    after = reads(cluster, key, connection_id)
    assert all(r.json()["credentials"]["apiKey"] == "second-key" for r in after)


@pytest.mark.parametrize("write", ["patch", "metadata", "metadata-merge", "legacy-metadata"])
def test_connection_writes_are_read_at_once_through_both_replicas(cluster, write):
    key, connection_id = keyed_connection(cluster)
    warm(cluster, key, connection_id)
    api = via(cluster, 0)
    if write == "patch":
        answer = api.patch(f"/connections/{connection_id}", params={"provider_config_key": key},
                           json={"tags": {"team": "blue"}})
        expected = {"tags": {"team": "blue"}, "metadata": {"canary": True}}
    elif write in ("metadata", "metadata-merge"):
        send = api.post if write == "metadata" else api.patch
        answer = send("/connections/metadata", json={"connection_id": connection_id, "provider_config_key": key,
                                                     "metadata": {"plan": "gold"}})
        expected = {"metadata": {"plan": "gold"} if write == "metadata" else {"canary": True, "plan": "gold"}}
    else:
        answer = api.post(f"/connection/{connection_id}/metadata", headers={"Provider-Config-Key": key},
                          json={"plan": "silver"})
        expected = {"metadata": {"plan": "silver"}}
    assert answer.status_code in (200, 201), answer.text
    for response in reads(cluster, key, connection_id):
        assert {name: response.json()[name] for name in expected} == expected


def test_a_delete_a_restore_and_a_purge_are_read_at_once_through_both_replicas(cluster):
    key, connection_id = keyed_connection(cluster)
    warm(cluster, key, connection_id)
    params = {"provider_config_key": key}
    assert via(cluster, 0).delete(f"/connections/{connection_id}", params=params).status_code == 200
    assert all(r.status_code == 404 for r in reads(cluster, key, connection_id))
    assert via(cluster, 1).post(f"/connections/{connection_id}/restore", params=params).status_code == 200
    assert shows_canary(reads(cluster, key, connection_id))
    warm_again = reads(cluster, key, connection_id)
    assert shows_canary(warm_again)
    assert via(cluster, 0).post(f"/connections/{connection_id}/purge", params=params).status_code == 200
    assert all(r.status_code == 404 for r in reads(cluster, key, connection_id))


def test_integration_changes_are_read_at_once_through_both_replicas(cluster):
    key, connection_id = keyed_connection(cluster)
    warm(cluster, key, connection_id)
    assert via(cluster, 1).patch(f"/integrations/{key}", json={"display_name": "Renamed"}).status_code == 200
    assert shows_canary(reads(cluster, key, connection_id))
    reads(cluster, key, connection_id)  # cached again
    assert via(cluster, 0).delete(f"/integrations/{key}").status_code == 200
    assert all(r.status_code in (400, 404) for r in reads(cluster, key, connection_id))


def oauth_connection(cluster, oauth_server, expires_at: datetime) -> tuple[str, str, str]:
    """An OAUTH2 connection whose refresh token the test server knows: (key, connection id, token)."""
    client = oauth_server.add_client()
    access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
    oauth_server.tokens[access] = Token(client.client_id, access, refresh, "")
    api, key, connection_id = gateway(cluster), unique("refreshing"), unique("conn")
    assert api.post("/integrations", json={"unique_key": key, "provider": "refreshing", "credentials": {
        "type": "OAUTH2", "client_id": client.client_id, "client_secret": client.client_secret,
        "scopes": "read"}}).status_code == 200
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": {"type": "OAUTH2", "access_token": access,
                                                              "refresh_token": refresh,
                                                              "expires_at": expires_at.isoformat() + "Z"}})
    assert response.status_code == 201, response.text
    return key, connection_id, access


def access_tokens(responses) -> set[str]:
    return {r.json()["credentials"]["access_token"] for r in responses}


def test_a_forced_refresh_is_never_cached_and_is_read_at_once_through_both(cluster, oauth_server):
    key, connection_id, first = oauth_connection(cluster, oauth_server, datetime(2099, 1, 1))
    assert access_tokens(warm(cluster, key, connection_id)) == {first}
    forced = [via(cluster, i).get(f"/connections/{connection_id}",
                                  params={"provider_config_key": key, "force_refresh": "true"}) for i in (0, 1)]
    assert all(r.status_code == 200 for r in forced), forced[0].text
    (second,) = access_tokens(forced)  # the second forced read shares the refresh just made (FORCE_SHARED)
    assert second != first and second in oauth_server.issued_access_tokens()
    after = reads(cluster, key, connection_id)
    assert access_tokens(after) == {second} and shows_canary(after)


def test_a_failed_refresh_is_read_at_once_through_both_replicas(cluster, oauth_server):
    key, connection_id, first = oauth_connection(cluster, oauth_server, datetime(2099, 1, 1))
    warm(cluster, key, connection_id)
    for token in oauth_server.tokens.values():
        if token.access_token == first:
            token.revoked = True
    failed = via(cluster, 0).get(f"/connections/{connection_id}",
                                 params={"provider_config_key": key, "force_refresh": "true"})
    assert failed.status_code == 400, failed.text
    after = reads(cluster, key, connection_id)
    assert all(r.status_code == 424 and r.json()["error"]["payload"]["reason"] == "refresh_backoff"
               for r in after), after[0].text


def test_a_token_entering_its_refresh_buffer_is_refreshed_on_the_next_read(cluster, oauth_server):
    expires_at = utcnow() + timedelta(seconds=BUFFER + 4)
    key, connection_id, first = oauth_connection(cluster, oauth_server, expires_at)
    assert access_tokens(warm(cluster, key, connection_id)) == {first}
    time.sleep(max(0.0, (expires_at - timedelta(seconds=BUFFER) - utcnow())
                   .total_seconds()) + 0.2)
    after = reads(cluster, key, connection_id)
    assert first not in access_tokens(after) and len(access_tokens(after)) == 1 and shows_canary(after)


def test_keys_are_checked_on_every_cached_read(cluster):
    key, connection_id = keyed_connection(cluster)
    api = gateway(cluster)
    name = unique("ci")
    secret = api.post("/environment/keys", json={"name": name}).json()["data"]["key"]
    public = api.post("/environment/public-key/rotate").json()["data"]["key"]
    warm(cluster, key, connection_id)
    assert all(r.status_code == 200 and "canary" not in r.json()["metadata"]
               for r in reads(cluster, key, connection_id, secret))  # another key of the environment: cached
    rotated = api.post(f"/environment/keys/{name}/rotate").json()["data"]["key"]
    assert all(r.status_code == 401 for r in reads(cluster, key, connection_id, secret))
    assert all(r.status_code == 200 for r in reads(cluster, key, connection_id, rotated))
    refused = reads(cluster, key, connection_id, public)
    assert all(r.status_code in (401, 403) and "credentials" not in r.text for r in refused), refused[0].text
    other_environment = reads(cluster, key, connection_id, "prod")
    assert all(r.status_code in (400, 404) and "first-key" not in r.text for r in other_environment)


def test_an_entry_is_used_only_under_its_versions_and_within_its_lifetime():
    """The lifetime bound, checked in-process: an entry older than LIFETIME is never used."""
    from services.store.read_cache import Entry, ReadCache

    cache = ReadCache(capacity=2, lifetime=0.05)
    entry = Entry((b"1", b"1"), 1, time.monotonic(), None, {False: (b"", b""), True: (b"", b"")})
    cache.put((1, "k", "c"), entry)
    now = utcnow()
    assert cache.get((1, "k", "c"), (b"1", b"1"), now) is entry
    assert cache.get((1, "k", "c"), (b"2", b"1"), now) is None  # another version
    time.sleep(0.06)
    assert cache.get((1, "k", "c"), (b"1", b"1"), now) is None
    for index in range(3):
        cache.put((1, "k", str(index)), entry)
    assert list(cache.entries) == [(1, "k", "1"), (1, "k", "2")]  # the oldest went first
    off = ReadCache(capacity=0)  # STORE_READ_CACHE_ENTRIES=0
    off.put((1, "k", "c"), entry)
    assert off.entries == {} and off.get((1, "k", "c"), (b"1", b"1"), now) is None
