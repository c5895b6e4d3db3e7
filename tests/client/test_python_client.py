"""authport.client against the running processes, every method in the sync and the async form:
integrations, providers, connections, metadata, connect sessions, environment settings, keys, logs,
the proxy (buffered and streamed both ways), errors as one class per code, and 429s retried after
Retry-After."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from authport import errors
from authport.client import AsyncAuthport, Authport
from tests.store import admin
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import make_system
from tests.support.upstream import Upstream

MODES = ("sync", "async")


class Driver:
    """One client, called the same way in both forms: an async method's coroutine is run to its end."""

    def __init__(self, mode: str, url: str, key: str, **options):
        self.mode = mode
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self.client = (AsyncAuthport if self.loop else Authport)(url, key, **options)

    def __getattr__(self, name: str):
        method = getattr(self.client, name)

        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            if inspect.isasyncgen(out):
                return self.loop.run_until_complete(_collect(out))
            if inspect.isawaitable(out):
                return self.loop.run_until_complete(out)
            return list(out) if inspect.isgenerator(out) else out
        return call

    def streamed(self, *args, upload: list[bytes], **kwargs) -> tuple[int, bytes]:
        """A streamed proxied call: the body sent in chunks, the answer read in chunks."""
        if self.loop is None:
            with self.client.stream_proxy(*args, content=iter(upload), **kwargs) as answer:
                return answer.status_code, b"".join(answer.iter_bytes())

        async def chunks():
            for chunk in upload:
                yield chunk

        async def run():
            async with self.client.stream_proxy(*args, content=chunks(), **kwargs) as answer:
                return answer.status_code, b"".join([part async for part in answer.aiter_bytes()])
        return self.loop.run_until_complete(run())

    def close(self) -> None:
        if self.loop is None:
            self.client.close()
        else:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()


async def _collect(generator) -> list:
    return [item async for item in generator]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("client")
    with Upstream("127.0.0.1") as upstream:
        providers = {
            "echo-key": {"auth_mode": "API_KEY", "display_name": "Echo key",
                         "proxy": {"base_url": upstream.url, "headers": {"x-api-key": "${apiKey}"}}},
            "echo-oauth": {"auth_mode": "OAUTH2", "display_name": "Echo OAuth",
                           "authorization_url": upstream.url + "/authorize", "token_url": upstream.url + "/token",
                           "proxy": {"base_url": upstream.url}},
        }
        (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
        url = create_postgres_database()
        system = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                             OUTBOUND_ALLOW_CIDRS="127.0.0.1/32").start()
        try:
            yield system, upstream
        finally:
            system.stop()
            drop_postgres_database(url)


@pytest.fixture(params=MODES)
def api(request, world):
    driver = Driver(request.param, world[0].url, world[0].dev_key)
    yield driver
    driver.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_integrations_and_providers(api):
    assert {p["name"] for p in api.list_providers()} >= {"echo-key", "echo-oauth"}
    assert [p["name"] for p in api.list_providers(search="echo-oa")] == ["echo-oauth"]
    assert api.get_provider("echo-key")["auth_mode"] == "API_KEY"
    key = unique("oauth")
    made = api.create_integration(key, "echo-oauth", client_id="cid", client_secret="client-secret-canary",
                                  scopes="read,write")
    assert made["unique_key"] == key and made["provider"] == "echo-oauth"
    assert key in [i["unique_key"] for i in api.list_integrations()]
    assert "client_secret" not in json.dumps(api.get_integration(key))
    shown = api.get_integration(key, include_credentials=True)
    assert shown["credentials"]["client_secret"] == "client-secret-canary"
    assert api.update_integration(key, display_name="Renamed")["display_name"] == "Renamed"
    api.delete_integration(key)
    with pytest.raises(errors.NotFound) as refused:
        api.get_integration(key)
    assert refused.value.status == 404 and refused.value.code == "not_found"
    with pytest.raises(errors.InvalidBody) as bad:
        api.create_integration("", "echo-key")
    assert bad.value.status == 400 and isinstance(bad.value, errors.BadRequest)


def test_connections_metadata_and_lifecycle(api):
    key = unique("key")
    api.create_integration(key, "echo-key")
    connection_id, end_user = unique("conn"), unique("user")
    imported = api.import_connection(key, connection_id, {"type": "API_KEY", "apiKey": "api-key-canary"},
                                     end_user={"id": end_user})
    assert imported["connection_id"] == connection_id
    got = api.get_connection(key, connection_id)
    assert got["credentials"] == {"type": "API_KEY", "apiKey": "api-key-canary"}
    assert api.get_token(key, connection_id) == "api-key-canary"
    assert [c["connection_id"] for c in api.list_connections(connection_id=connection_id)] == [connection_id]
    assert connection_id in [c["connection_id"] for c in api.list_connections(search=connection_id[-8:])]
    api.update_connection(key, connection_id, tags={"team": "blue"})
    assert api.get_connection(key, connection_id)["tags"]["team"] == "blue"
    api.set_metadata(key, connection_id, {"a": 1})
    api.update_metadata(key, connection_id, {"b": 2})
    assert api.get_connection(key, connection_id)["metadata"] == {"a": 1, "b": 2}
    api.delete_connection(key, connection_id)
    with pytest.raises(errors.NotFound):
        api.get_connection(key, connection_id)
    api.restore_connection(key, connection_id)
    assert api.get_token(key, connection_id) == "api-key-canary"
    with pytest.raises(errors.ConnectionExists) as live:
        api.restore_connection(key, connection_id)  # it is live again
    assert isinstance(live.value, errors.Conflict) and live.value.status == 409
    api.purge_connection(key, connection_id)
    with pytest.raises(errors.NotFound):
        api.get_connection(key, connection_id)
    other = unique("conn")
    api.import_connection(key, other, {"type": "API_KEY", "apiKey": "k"}, end_user={"id": end_user})
    api.purge_end_user(end_user)
    assert api.list_connections(connection_id=other) == []


def test_an_oauth_connection_gives_its_access_token(api):
    key = unique("oauth")
    api.create_integration(key, "echo-oauth", client_id="cid", client_secret="secret")
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    connection_id = unique("conn")
    api.import_connection(key, connection_id, {"type": "OAUTH2", "access_token": "at-canary",
                                               "refresh_token": "rt", "expires_at": expires})
    assert api.get_token(key, connection_id) == "at-canary"


def test_connect_sessions(api):
    key = unique("key")
    api.create_integration(key, "echo-key")
    session = api.create_connect_session({"id": unique("user"), "email": "u@example.com"},
                                         allowed_integrations=[key])
    assert session["token"] and session["connect_link"]
    seen = api.get_connect_session(session["token"])
    assert seen["allowed_integrations"] == [key]
    api.delete_connect_session(session["token"])
    with pytest.raises(errors.Unauthorized):
        api.get_connect_session(session["token"])
    connection_id = unique("conn")
    api.import_connection(key, connection_id, {"type": "API_KEY", "apiKey": "k"})
    again = api.create_reconnect_session(connection_id, key)
    assert again["token"] != session["token"]


def test_environment_settings_and_keys(api, world):
    system = world[0]
    assert api.list_environment_variables() == []
    hook = f"https://hooks.example.com/{uuid.uuid4().hex}"
    assert api.set_webhook_url(hook) == hook and api.get_webhook_url() == hook
    assert api.set_webhook_url(None) is None
    name = unique("ci")
    created = api.create_key(name)
    assert created["name"] == name and created["key"]
    assert name in [k["name"] for k in api.list_keys()]
    rotated = api.rotate_key(name)
    assert rotated["key"] != created["key"]
    old = Driver(api.mode, system.url, created["key"])
    try:
        with pytest.raises(errors.Unauthorized):
            old.list_integrations()
    finally:
        old.close()
    api.revoke_key(name)
    with pytest.raises(errors.AuthportError) as last:
        api.revoke_key("default")  # the environment's last live secret key stays
    assert last.value.code == "last_secret_key"
    public = api.rotate_public_key()
    assert public["kind"] == "public" and public["key"]


def test_logs(api):
    key = unique("key")
    api.create_integration(key, "echo-key")
    connection_id = unique("conn")
    api.import_connection(key, connection_id, {"type": "API_KEY", "apiKey": "k"})
    api.delete_connection(key, connection_id)
    page = api.list_logs(connection_id=connection_id)
    assert [r["type"] for r in page["data"]] == ["connection.deleted", "connection.created"]
    assert api.get_log(page["data"][0]["id"]) == page["data"][0]
    assert [r["id"] for r in api.iter_logs(connection_id=connection_id, limit=1)] == [r["id"] for r in page["data"]]
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    exported = api.export_logs(start, end, connection_id=connection_id)
    assert [r["id"] for r in exported] == [r["id"] for r in reversed(page["data"])]
    with pytest.raises(errors.UnknownLogRecord):
        api.get_log(10**12)


def test_the_proxy_buffered_and_streamed(api, world):
    key = unique("key")
    api.create_integration(key, "echo-key")
    connection_id = unique("conn")
    api.import_connection(key, connection_id, {"type": "API_KEY", "apiKey": "proxy-key"})
    answer = api.proxy("POST", "/echo", key, connection_id, params={"q": "1"}, headers={"X-Note": "n"},
                       json_body={"hello": "world"})
    echo = answer.json()
    assert answer.status_code == 200 and echo["target"] == "/echo?q=1"
    sent = {name.lower(): value for name, value in echo["headers"].items()}
    assert sent["x-api-key"] == "proxy-key" and sent["x-note"] == "n"
    assert json.loads(base64.b64decode(echo["body"])) == {"hello": "world"}
    provider_error = api.proxy("GET", "/status/404", key, connection_id)  # the provider's own 404: returned
    assert provider_error.status_code == 404
    with pytest.raises(errors.AuthportError) as refused:  # Authport's own refusal, as Nango answers it
        api.proxy("GET", "/echo", key, unique("nobody"))
    assert (refused.value.status, refused.value.code) == (400, "server_error")
    upload = [b"chunk-%d;" % n for n in range(50)]
    status, body = api.streamed("PUT", "/upload", key, connection_id, upload=upload)
    assert status == 200 and base64.b64decode(json.loads(body)["body"]) == b"".join(upload)
    status, body = api.streamed("GET", "/bytes", key, connection_id, upload=[], params={"n": "300000"})
    assert status == 200 and body == b"a" * 300000


@pytest.mark.parametrize("mode", MODES)
def test_a_429_is_retried_after_retry_after_then_raised(world, mode):
    system = world[0]
    account = unique("acct")
    made = admin(system.env, "accounts", "create", account, "--plan", "enterprise", "--rate-limit", "5")
    assert made.returncode == 0, made.stderr
    key = next(line.split()[-1] for line in made.stdout.splitlines() if line.startswith("dev secret_key:"))
    patient = Driver(mode, system.url, key, max_retries=2, max_wait=0.3)
    impatient = Driver(mode, system.url, key, max_retries=0)
    try:
        for _ in range(5):
            patient.list_integrations()
        assert patient.client.rate_limit.limit == 5
        with pytest.raises(errors.RateLimited) as refused:
            impatient.list_integrations()
        assert refused.value.retry_after and refused.value.code == "too_many_request"
        started = time.monotonic()
        with pytest.raises(errors.RateLimited):
            patient.list_integrations()  # two waits of max_wait, then the third 429 raises
        assert time.monotonic() - started >= 0.55
        assert patient.client.rate_limit.remaining == 0
    finally:
        patient.close()
        impatient.close()


def test_every_code_has_its_class_under_its_status():
    for code, status in errors.KNOWN.items():
        cls = errors.for_code(code)
        assert cls.code == code and issubclass(cls, errors.AuthportError), code
        if status in errors.BY_STATUS:
            assert issubclass(cls, errors.BY_STATUS[status]), code
    assert errors.for_code("not_found") is errors.NotFound
    assert issubclass(errors.UnknownConnection, errors.NotFound)
    made = errors.for_code("a_code_of_tomorrow", 418)
    assert made.__name__ == "ACodeOfTomorrow" and made is errors.for_code("a_code_of_tomorrow")
