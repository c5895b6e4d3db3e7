"""Redis unreachable, on a real system (Postgres, its own redis-server): every use of Redis follows
its stated policy (README, "When Redis is unreachable") while Redis is stopped — killed, so
connections are refused, or paused (SIGSTOP), so they hang until the client's timeout — and
works normally once it is back; a token refresh never answers 500.

Processes: the four services, plus a second store, a second proxy and a "quiet" gateway on them
(which makes no call during the outages where it must show that what it cached before is not
used after), and a gateway with RATE_LIMIT_FAIL_OPEN=false behind a trusted reverse proxy."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis
import yaml

from tests.api.builders import Gateway, unique
from tests.auth.popup import Socket
from tests.store import admin
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows
from tests.support.oauth_server import OAuthServer, Token
from tests.support.redis_server import RedisServer
from tests.support.system import make_system
from tests.support.upstream import Upstream

MODES = ("stopped", "paused")  # refused connections, or a Redis that hangs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("redis-outage")
    oauth, server = OAuthServer().start(), RedisServer(tmp_dir).start()
    with Upstream("127.0.0.1") as upstream:
        providers = {
            "echo-refresh": {"auth_mode": "OAUTH2", "authorization_url": oauth.url + "/authorize",
                             "token_url": oauth.url + "/token", "proxy": {"base_url": upstream.url}},
            "echo-key": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream.url,
                                                           "headers": {"x-api-key": "${apiKey}"}}},
        }
        (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
        url = create_postgres_database()
        system = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                             OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", NANGO_REDIS_URL=server.url, LOG_LEVEL="warning")
        try:
            system.start()
            store2 = system.add_process("store-2", "services.store", "STORE_PORT")
            proxy2 = system.add_process("proxy-2", "services.proxy", "PROXY_PORT", STORE_URL=store2)
            yield SimpleNamespace(
                system=system, oauth=oauth, upstream=upstream, redis=server,
                main=Gateway(system.url, system.dev_key),
                quiet=Gateway(system.add_gateway("gateway-quiet", STORE_URL=store2, PROXY_URL=proxy2), system.dev_key),
                closed=Gateway(system.add_gateway("gateway-closed", RATE_LIMIT_FAIL_OPEN="false", TRUSTED_PROXIES="1"),
                               system.dev_key))
        finally:
            system.stop()
            resume(server)
            server.stop()
            oauth.stop()
            drop_postgres_database(url)


def resume(server: RedisServer) -> None:
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)


def stop_redis(world, mode: str) -> None:
    if mode == "stopped":
        world.redis.stop()
    else:
        os.kill(world.redis.proc.pid, signal.SIGSTOP)


def start_redis(world, mode: str) -> None:
    if mode == "stopped":
        world.redis.start()
    else:
        resume(world.redis)
    deadline = time.monotonic() + 15  # back when the gateways charge in Redis again
    while time.monotonic() < deadline:
        answers = [api.get("/integrations", timeout=30) for api in (world.main, world.closed)]
        if all(a.status_code == 200 and "X-RateLimit-Limit" in a.headers for a in answers):
            time.sleep(1.0)  # the store's owed announcement lands within its retry interval
            return
        time.sleep(0.2)
    pytest.fail(f"no recovery after Redis came back:\n{world.system.logs()}")


# --- builders ---------------------------------------------------------------------------------------


def key_connection(api, api_key: str) -> tuple[str, str]:
    key, connection_id = unique("echo-key"), unique("conn")
    assert api.post("/integrations", json={"unique_key": key, "provider": "echo-key"}, timeout=30).status_code == 200
    imported(api, key, connection_id, {"type": "API_KEY", "apiKey": api_key})
    return key, connection_id


def imported(api, key: str, connection_id: str, credentials: dict) -> None:
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": credentials}, timeout=30)
    assert response.status_code == 201, response.text


def oauth_connection(world, expires_in: float = 300) -> tuple[str, str]:
    """An OAUTH2 connection whose token expires within the refresh buffer; the test server knows it."""
    client = world.oauth.add_client()
    access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
    world.oauth.tokens[access] = Token(client.client_id, access, refresh, "")
    key, connection_id = unique("echo-refresh"), unique("conn")
    assert world.main.post("/integrations", json={"unique_key": key, "provider": "echo-refresh", "credentials": {
        "type": "OAUTH2", "client_id": client.client_id, "client_secret": client.client_secret}},
        timeout=30).status_code == 200
    expires = (datetime.now(UTC) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    imported(world.main, key, connection_id, {"type": "OAUTH2", "access_token": access, "refresh_token": refresh,
                                              "expires_at": expires})
    return key, connection_id


def proxied(api, key: str, connection_id: str, path: str = "/ping"):
    return api.get("/proxy" + path, headers={"Connection-Id": connection_id, "Provider-Config-Key": key}, timeout=30)


def sent(response, header: str) -> str:
    assert response.status_code == 200, response.text
    return response.json()["headers"].get(header) or response.json()["headers"][header.title()]


def read(api, key: str, connection_id: str, **params):
    return api.get(f"/connections/{connection_id}", params={"provider_config_key": key, **params}, timeout=30)


def refreshes(world) -> int:
    return world.oauth.token_requests.count("refresh_token")


def error_of(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


# --- one case per Redis use: before (Redis up), during (down), after (back) --------------------------


class RateLimitFailOpen:
    def during(self, world, state):
        answer = world.main.get("/integrations", timeout=30)
        assert answer.status_code == 200 and "X-RateLimit-Limit" not in answer.headers

    def after(self, world, state):
        assert world.main.get("/integrations", timeout=30).headers["X-RateLimit-Limit"] == "2000"


class RateLimitFailClosed:
    def during(self, world, state):
        answer = world.closed.get("/integrations", timeout=30)
        error_of(answer, 503, "rate_limit_unavailable")
        assert answer.headers["Retry-After"] == "1"

    def after(self, world, state):
        assert world.closed.get("/integrations", timeout=30).headers["X-RateLimit-Limit"] == "2000"


class FailedAuthentications:
    """Counted in the gateway's memory meanwhile: guessing stays limited, right keys pass."""

    def during(self, world, state):
        bad = Gateway(world.closed.base_url, str(uuid.uuid4()))
        bad.headers["X-Forwarded-For"] = f"198.51.100.{uuid.uuid4().int % 250 + 1}"  # its own counter
        assert [bad.get("/integrations", timeout=30).status_code for _ in range(31)] == [401] * 30 + [429]
        error_of(world.closed.get("/integrations", timeout=30), 503, "rate_limit_unavailable")  # a right key

    def after(self, world, state):
        assert world.closed.get("/integrations", timeout=30).status_code == 200


class KeyRotation:
    def before(self, world, state):
        state.name = f"k{uuid.uuid4().hex[:8]}"
        created = world.main.post("/environment/keys", json={"name": state.name}, timeout=30)
        state.old = created.json()["data"]["key"]
        for api in (world.main, world.quiet):  # cached by both gateways
            assert Gateway(api.base_url, state.old).get("/integrations", timeout=30).status_code == 200

    def during(self, world, state):
        rotated = world.main.post(f"/environment/keys/{state.name}/rotate", timeout=30)
        assert rotated.status_code == 200, rotated.text
        state.new = rotated.json()["data"]["key"]
        error_of(Gateway(world.main.base_url, state.old).get("/integrations", timeout=30), 401, "unknown_account")
        assert Gateway(world.main.base_url, state.new).get("/integrations", timeout=30).status_code == 200

    def after(self, world, state):
        for api in (world.quiet, world.main):  # the quiet one made no call during the outage
            error_of(Gateway(api.base_url, state.old).get("/integrations", timeout=30), 401, "unknown_account")
            assert Gateway(api.base_url, state.new).get("/integrations", timeout=30).status_code == 200


class CredentialVersions:
    def before(self, world, state):
        state.changed = key_connection(world.main, "first")
        state.deleted = key_connection(world.main, "doomed")
        for api in (world.main, world.quiet, world.main, world.quiet):  # cached by both proxies
            assert sent(proxied(api, *state.changed), "x-api-key") == "first"
            assert proxied(api, *state.deleted).status_code == 200

    def during(self, world, state):
        imported(world.main, *state.changed, {"type": "API_KEY", "apiKey": "second"})
        key, connection_id = state.deleted
        assert world.main.delete(f"/connections/{connection_id}", params={"provider_config_key": key},
                                 timeout=30).status_code == 200
        assert sent(proxied(world.main, *state.changed), "x-api-key") == "second"
        assert proxied(world.main, *state.deleted).status_code in (400, 404)

    def after(self, world, state):
        for api in (world.quiet, world.main):
            assert sent(proxied(api, *state.changed), "x-api-key") == "second"
            assert proxied(api, *state.deleted).status_code in (400, 404)


def refused_popup(api, ws_client_id: str) -> None:
    """A popup with an unknown session token: its error goes to the waiting websocket."""
    token = "nango_connect_session_" + uuid.uuid4().hex * 2
    answer = api.get("/oauth/connect/anything", params={"connect_session_token": token, "ws_client_id": ws_client_id},
                     headers={"Authorization": ""}, timeout=30)
    assert answer.status_code == 401


class WebsocketFanOut:
    def during(self, world, state):
        socket = Socket(world.main.base_url)  # still accepted
        refused_popup(world.main, socket.client_id)
        assert socket.result()["message_type"] == "error"  # delivered in the process that has it

    def after(self, world, state):
        socket = Socket(world.closed.base_url)  # held by another gateway than the callback's
        refused_popup(world.main, socket.client_id)
        assert socket.result()["message_type"] == "error"
        socket = Socket(world.main.base_url)  # the main gateway subscribed again by itself
        envelope = {"ws_client_id": socket.client_id, "message": {"message_type": "success"}}
        redis.Redis(port=world.redis.port).publish("authport:ws", json.dumps(envelope))
        assert socket.result()["message_type"] == "success"


class RefreshLock:
    def before(self, world, state):
        state.connection = oauth_connection(world)

    def _once(self, world, state):
        calls = refreshes(world)
        world.oauth.token_delay = 0.3
        try:
            apis = [world.main, world.quiet] * 6  # two store processes
            with ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(lambda api: read(api, *state.connection), apis))
        finally:
            world.oauth.token_delay = 0.0
        assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers if a.status_code != 200]
        assert refreshes(world) == calls + 1
        tokens = {a.json()["credentials"]["access_token"] for a in answers}
        assert len(tokens) == 1
        assert sent(proxied(world.main, *state.connection), "authorization") == f"Bearer {tokens.pop()}"

    def during(self, world, state):
        self._once(world, state)

    def after(self, world, state):
        raw_rows(world.system.database_url, "UPDATE connections SET expires_at = now() at time zone 'utc' + "
                                            f"interval '60 seconds' WHERE connection_id = '{state.connection[1]}'")
        self._once(world, state)


class PurgeLock:
    def _purged(self, world):
        key, connection_id = key_connection(world.main, "old")
        assert world.main.delete(f"/connections/{connection_id}", params={"provider_config_key": key},
                                 timeout=30).status_code == 200
        raw_rows(world.system.database_url, "UPDATE connections SET deleted_at = now() - interval '40 days' "
                                            f"WHERE connection_id = '{connection_id}'")
        done = admin(world.system.env, "purge")
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
        assert outcome["skipped"] is False and outcome["connections"] >= 1, outcome
        assert raw_rows(world.system.database_url, f"SELECT id FROM connections WHERE connection_id = "
                                                   f"'{connection_id}'") == []

    def during(self, world, state):
        self._purged(world)

    def after(self, world, state):
        self._purged(world)


CASES = {"rate limit, fail open": RateLimitFailOpen, "rate limit, fail closed": RateLimitFailClosed,
         "failed authentications": FailedAuthentications, "key rotation epoch": KeyRotation,
         "credential cache versions": CredentialVersions, "websocket fan-out": WebsocketFanOut,
         "refresh lock": RefreshLock, "purge lock": PurgeLock}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use", list(CASES))
def test_each_redis_use_follows_its_policy_and_recovers(world, use, mode):
    case, state = CASES[use](), SimpleNamespace()
    getattr(case, "before", lambda *_: None)(world, state)
    stop_redis(world, mode)
    try:
        case.during(world, state)
    finally:
        start_redis(world, mode)
    case.after(world, state)


def test_steady_load_through_an_outage_has_no_unexpected_5xx(world):
    """2 threads × 300 requests — credential reads (some forcing a refresh), proxied calls on an
    expiring OAuth connection and on an API-key one, calls to the fail-closed gateway — while
    Redis is stopped and started again."""
    oauth, api_key = oauth_connection(world), key_connection(world.main, "steady")
    done, unexpected, lock = [0], [], threading.Lock()

    def one(api, i: int):
        kind = i % 4
        if kind == 0:
            return read(api, *oauth, **({"force_refresh": "true"} if i % 40 == 0 else {}))
        if kind == 1:
            return proxied(api, *oauth)
        if kind == 2:
            return proxied(api, *api_key)
        return world.closed.get("/integrations", timeout=30)

    def worker(base_url: str) -> None:
        api = Gateway(base_url, world.system.dev_key)
        for i in range(300):
            response = one(api, i)
            documented = response.status_code == 503 and response.json()["error"]["code"] == "rate_limit_unavailable"
            with lock:
                done[0] += 1
                if response.status_code >= 500 and not documented or response.status_code in (401, 404, 429):
                    unexpected.append((response.status_code, response.text[:200]))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(url,)) for url in (world.main.base_url, world.quiet.base_url)]
    for thread in threads:
        thread.start()
    for count, action in ((150, lambda: world.redis.stop()), (400, lambda: world.redis.start())):
        while done[0] < count and any(t.is_alive() for t in threads):
            time.sleep(0.02)
        action()
    for thread in threads:
        thread.join(timeout=60)
    assert done[0] == 600 and not unexpected, (done[0], unexpected[:5])
    assert time.monotonic() - started < 60
    assert "reachable again" in world.system.logs()
