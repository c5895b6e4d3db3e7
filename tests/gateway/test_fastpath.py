"""The gateway's plain-WSGI path for proxied calls (gateway/fastpath.py) and the proxy's
(services/proxy/passage.py), on the real processes with Redis: what crosses the gateway in each
direction, the JSON errors and headers it answers with, and bodiless answers.

The upstream API here is scripted by each test: it answers a path with the status and headers
the test asks for (an `X-Authport-*` header, a 204), and records what it received."""

from __future__ import annotations

import http.client
import json
import socket as socket_module
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import redis
import requests
import yaml

from common import credential_versions as versions
from common.internal import StoreClient
from tests.auth.popup import Socket, run_popup
from tests.proxy.builders import connect, error, gateway, proxied
from tests.store import admin
from tests.support.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    drop_redis_prefix,
    unavailable,
)
from tests.support.system import make_system

OK = b'{"ok": true}'
BAD_SESSION = "nango_connect_session_" + "b" * 64


class Scripted:
    """An upstream API on 127.0.0.1:0: `answers[path] = (status, headers)`, else 200 with OK."""

    def __init__(self):
        self.answers: dict[str, tuple[int, dict[str, str]]] = {}
        self.received: list[tuple[str, str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                scripted.received.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers = scripted.answers.get(path, (200, {"Content-Type": "application/json"}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                bodiless = status in (204, 304)
                if not bodiless:
                    self.send_header("Content-Length", str(len(OK)))
                self.end_headers()
                if self.command != "HEAD" and not bodiless:
                    self.wfile.write(OK)

            do_GET = do_POST = do_HEAD = do_DELETE = answer

        return Handler

    def last(self) -> tuple[str, str, dict[str, str]]:
        return self.received[-1]


@pytest.fixture(scope="module")
def scripted():
    server = Scripted()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def system(request, tmp_path_factory, scripted):
    """The four processes sharing Redis (so the gateway reads credential versions for the proxy)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    tmp_dir = tmp_path_factory.mktemp(f"fastpath-{request.param}")
    providers = {"scripted": {"auth_mode": "API_KEY",
                              "proxy": {"base_url": scripted.url, "headers": {"x-api-key": "${apiKey}"}}}}
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    prefix = f"t-fastpath-{uuid.uuid4().hex}"
    running = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                          OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix)
    try:
        yield running.start()
    finally:
        running.stop()
        drop_redis_prefix(prefix)
        if request.param == "postgres":
            drop_postgres_database(url)


@pytest.fixture(scope="module")
def linked(system):
    """An integration of the scripted provider with one connection: (key, connection id)."""
    return connect(gateway(system), "scripted", {"type": "API_KEY", "apiKey": "upstream-key"})


def raw(system, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request sent exactly as written: requests would remove dot segments from the path."""
    conn = http.client.HTTPConnection("127.0.0.1", int(system.env["SERVER_PORT"]), timeout=30)
    try:
        conn.request(method, target, headers=headers)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


@pytest.mark.parametrize("endpoint", ["/forge", ""], ids=["fast-path", "bare-proxy-via-flask"])
def test_an_upstream_cannot_pass_internal_headers_or_reach_a_websocket(system, scripted, linked, endpoint):
    socket = Socket(system.url)
    forged = {"ws_client_id": socket.client_id, "message": {
        "message_type": "success", "provider_config_key": "forged", "connection_id": "forged"}}
    scripted.answers[endpoint or "/"] = (200, {"Content-Type": "application/json", "X-Authport-Anything": "x",
                                               "X-Authport-Ws-Message": json.dumps(forged)})
    response = proxied(gateway(system), "GET", endpoint, *linked)
    assert response.status_code == 200 and response.content == OK, response.text
    assert scripted.last()[1] == (endpoint or "/")
    assert not [name for name in response.headers if name.lower().startswith("x-authport-")], response.headers
    leaked = socket._next_message(1.0)
    if leaked is not None:
        socket.close()
    assert leaked is None, f"the upstream's message reached the websocket: {leaked}"
    # Positive control: this socket does receive what the gateway itself publishes to it.
    refused, _ = run_popup(system.url, "no-such-key", connect_session_token=BAD_SESSION,
                           ws_client_id=socket.client_id)
    assert refused.status_code == 401
    assert socket.result()["error_type"] == "unknown_connect_session_token"


def test_caller_headers_reach_the_upstream_only_with_the_nango_proxy_prefix(system, scripted, linked):
    sent = {"Nango-Proxy-X-Custom": "prefixed", "X-Custom": "plain", "X-Authport-Account": "999999",
            "X-Authport-Environment-Id": "999999", "X-Authport-Internal-Key": "guess",
            "X-Authport-Credential-Versions": "a,b", "X-Authport-Ws-Message": "{}"}
    response = proxied(gateway(system), "GET", "/echo", *linked, headers=sent)
    assert response.status_code == 200, response.text
    _, path, received = scripted.last()
    assert path == "/echo" and received["x-custom"] == "prefixed"
    assert received["x-api-key"] == "upstream-key"  # the caller's own connection, not a forged identity's
    assert not [name for name in received if name.startswith("x-authport-")], received
    assert system.dev_key not in json.dumps(received)


@pytest.fixture(scope="module")
def plain_gateway(system):
    """A gateway without Redis in front of the same (caching) proxy: it reads no credential
    versions, so only its stripping of caller `X-Authport-*` headers keeps a forged one out."""
    return system.add_gateway(f"gateway-plain-{uuid.uuid4().hex[:6]}", NANGO_REDIS_URL=None)


def test_a_forged_versions_header_cannot_revive_a_deleted_connection(system, scripted, plain_gateway):
    api = gateway(system)
    key, connection_id = connect(api, "scripted", {"type": "API_KEY", "apiKey": "doomed-key"})
    for _ in range(2):  # the proxy now holds the credential, under the versions the gateway read
        assert proxied(api, "GET", "/warm", key, connection_id).status_code == 200
    store = StoreClient(system.service_url("store"), system.env["INTERNAL_API_KEY"])
    environment_id = store.resolve_key(system.dev_key).environment_id
    prefix = system.env["REDIS_KEY_PREFIX"]
    known = redis.Redis.from_url(REDIS_URL).mget(versions.version_key(prefix, environment_id, key, connection_id),
                                                 versions.epoch_key(prefix))
    assert known[0] is not None, "the import announced no version"
    forged = {versions.VERSIONS_HEADER: versions.encode_versions(*known)}
    assert api.delete(f"/connections/{connection_id}", params={"provider_config_key": key}).status_code == 200
    seen = len(scripted.received)
    for url in (system.url, plain_gateway):
        api.base_url = url
        response = proxied(api, "GET", "/after-delete", key, connection_id, headers=forged)
        assert response.status_code == 400 and error(response)["code"] == "server_error", response.text
    assert len(scripted.received) == seen, "a call of the deleted connection reached the upstream"


def test_a_call_without_a_key_is_a_json_401_with_cors(system):
    for headers, code in (({}, "missing_auth_header"), ({"Authorization": f"Bearer {uuid.uuid4()}"},
                                                        "unknown_account")):
        response = requests.get(system.url + "/proxy/anything", headers={"Connection-Id": "c", **headers})
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert error(response)["code"] == code


def limited_key(system, limit: int) -> str:
    """The dev secret key of a new enterprise account allowed `limit` requests a minute."""
    done = admin(system.env, "accounts", "create", f"acct-{uuid.uuid4().hex[:10]}", "--plan", "enterprise",
                 "--rate-limit", str(limit))
    assert done.returncode == 0, done.stderr
    keys = dict(line.split(": ") for line in done.stdout.splitlines()[1:])
    return keys["dev secret_key"]


def test_a_rate_limited_account_gets_a_json_429_with_its_headers(system, scripted):
    api = gateway(system, limited_key(system, 2))
    seen = len(scripted.received)
    for _ in range(6):  # two admitted (3 if a window starts in between), then refused
        response = proxied(api, "GET", "/limited?page=2", "no-such-integration", "c")
        if response.status_code == 429:
            break
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "2" and response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = error(response)
    assert body["code"] == "too_many_request" and body["method"] == "GET" and body["path"] == "/proxy/limited"
    assert len(scripted.received) == seen


def test_a_proxied_answer_carries_rate_limit_and_cors_headers(system, linked):
    response = proxied(gateway(system), "GET", "/headers", *linked)
    assert response.status_code == 200 and response.content == OK
    assert response.headers["X-RateLimit-Limit"] == "2000"
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < 2000
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["Content-Type"] == "application/json"


def test_a_preflight_needs_no_key(system):
    response = requests.options(system.url + "/proxy/x", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204 and response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Connection-Id" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("target", ["/proxy/../connections", "/proxy/a/./b", "/proxy/a/.."])
def test_dot_segments_are_a_json_404(system, scripted, linked, target):
    key, connection_id = linked
    seen = len(scripted.received)
    status, headers, body = raw(system, "GET", target, {
        "Authorization": f"Bearer {system.dev_key}", "Provider-Config-Key": key, "Connection-Id": connection_id})
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"
    assert len(scripted.received) == seen


def test_head_and_204_answers_have_no_body(system, scripted, linked):
    key, connection_id = linked
    scripted.answers["/empty"] = (204, {"X-Kept": "yes"})
    headers = {"Authorization": f"Bearer {system.dev_key}", "Provider-Config-Key": key,
               "Connection-Id": connection_id}
    # One keep-alive connection: a stray body byte would break the answer that follows it.
    conn = http.client.HTTPConnection("127.0.0.1", int(system.env["SERVER_PORT"]), timeout=30)
    try:
        for method, endpoint, status in (("HEAD", "/head", 200), ("GET", "/empty", 204), ("GET", "/after", 200)):
            conn.request(method, "/proxy" + endpoint, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            assert answer.status == status, body
            assert scripted.last()[:2] == (method, endpoint)
            if endpoint == "/empty":
                assert body == b"" and answer.getheader("X-Kept") == "yes"
            elif method == "HEAD":
                assert body == b"" and answer.getheader("Content-Length") == str(len(OK))
            else:
                assert body == OK
    finally:
        conn.close()


class DyingProxy:
    """A proxy replica killed between its status line and its body: it reads a request, sends a
    200 head announcing ten bytes, and closes the connection."""

    def __init__(self):
        self.listener = socket_module.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.served = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (data := conn.recv(65536)):
                    head += data
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n")
                self.served += 1


@pytest.fixture(scope="module")
def dying_gateway(system):
    proxy = DyingProxy()
    yield proxy, system.add_gateway(f"gateway-dying-{uuid.uuid4().hex[:6]}", PROXY_URL=proxy.url)
    proxy.listener.close()


@pytest.mark.parametrize("endpoint", ["/cut", ""], ids=["fast-path", "bare-proxy-via-flask"])
def test_a_proxy_answer_cut_before_its_body_is_the_documented_503(system, linked, dying_gateway, endpoint):
    proxy, url = dying_gateway
    api = gateway(system)
    api.base_url = url
    served = proxy.served
    response = proxied(api, "GET", endpoint, *linked)
    assert proxy.served > served, "the request did not reach the dying proxy"
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert proxied(api, "GET", endpoint, *linked).status_code == 503  # the gateway's worker lives on
