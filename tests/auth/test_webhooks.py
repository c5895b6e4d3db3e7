"""Signed auth webhooks: a real receiver on loopback gets Nango's body after a connection is
created or overridden and after a refresh fails, signed so that `@nangohq/node` accepts it."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.api.builders import gateway
from tests.auth.test_capture import post, public_key_of
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.auth.test_public_key_flows import digest, hmac_key
from tests.auth.test_refresh import connected, expire_soon, read
from tests.store import admin
from tests.support.npm import npm_install
from tests.support.webhook_receiver import WebhookReceiver

VERIFY_SCRIPT = Path(__file__).with_name("verify_webhook.mjs")


@pytest.fixture
def receiver(system):
    """A receiver set as the dev environment's webhook URL for the test, cleared after it."""
    running = WebhookReceiver().start()
    assert gateway(system).patch("/environment/webhook", json={"url": running.url}).status_code == 200
    yield running
    gateway(system).patch("/environment/webhook", json={"url": None})
    running.stop()


def capture_api_key(system, oauth_server, key: str, **params) -> str:
    good = "canary-key-" + secrets.token_hex(8)
    oauth_server.api_keys.add(good)
    saved = post(system, f"/api-auth/api-key/{key}", {"apiKey": good}, **params)
    assert saved.status_code == 200, saved.text
    return saved.json()["connectionId"]


def sdk_verdict(secret_key: str, delivery) -> dict:
    sdk = npm_install("@nangohq/node@0.71.10")
    plan = json.dumps({"secretKey": secret_key, "body": delivery.raw.decode(), "headers": delivery.headers})
    done = subprocess.run(["node", str(VERIFY_SCRIPT), str(sdk)], input=plan, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_webhook_url_is_set_and_read_with_the_secret_key(system):
    api = gateway(system)
    assert api.patch("/environment/webhook", json={"url": "https://hooks.example.com/nango"}).json() == {
        "data": {"url": "https://hooks.example.com/nango"}}
    assert api.get("/environment/webhook").json() == {"data": {"url": "https://hooks.example.com/nango"}}
    assert gateway(system, "prod").get("/environment/webhook").json() == {"data": {"url": None}}
    for bad in ({"url": "ftp://x"}, {"url": 3}, {}, {"url": None, "other": 1}):
        refused = api.patch("/environment/webhook", json=bad)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_body"
    public = gateway(system, public_key_of(system)).get("/environment/webhook")
    assert public.status_code in (401, 403) and "error" in public.json()
    assert api.patch("/environment/webhook", json={"url": None}).json() == {"data": {"url": None}}


def test_a_captured_connection_sends_a_signed_creation_webhook(system, oauth_server, receiver):
    api = gateway(system)
    key = make_integration(api, "test-apikey")
    session = create_session(api, allowed_integrations=[key], tags={"team": "blue"},
                             end_user={"id": "eu-7", "email": "eu7@example.com"},
                             organization={"id": "org-3", "display_name": "Org"})
    connection_id = capture_api_key(system, oauth_server, key, connect_session_token=session["token"])
    [delivery] = receiver.wait_for(connection_id)
    assert delivery.path == "/hooks/nango"
    assert delivery.body == {
        "from": "nango", "type": "auth", "connectionId": connection_id, "providerConfigKey": key,
        "authMode": "API_KEY", "provider": "test-apikey", "environment": "dev", "operation": "creation",
        "success": True, "tags": {"team": "blue", "end_user_id": "eu-7", "end_user_email": "eu7@example.com",
                                  "organization_id": "org-3"},
        "endUser": {"endUserId": "eu-7", "endUserEmail": "eu7@example.com", "organizationId": "org-3"}}
    assert delivery.headers["Content-Type"] == "application/json"
    # The exact bytes: compact, sorted, what JSON.stringify of the parsed body gives back.
    assert delivery.raw == json.dumps(delivery.body, separators=(",", ":"), sort_keys=True,
                                      ensure_ascii=False).encode()
    assert "canary-key" not in delivery.raw.decode()  # credentials never travel in a webhook
    signing_key = system.dev_key
    assert delivery.headers["X-Nango-Signature"] == hashlib.sha256(signing_key.encode() + delivery.raw).hexdigest()
    assert sdk_verdict(signing_key, delivery) == {"incoming": True, "legacy": True}
    assert sdk_verdict(system.prod_key, delivery) == {"incoming": False, "legacy": False}
    tampered = type(delivery)(delivery.path, delivery.headers, delivery.raw.replace(b"creation", b"override"))
    assert sdk_verdict(signing_key, tampered) == {"incoming": False, "legacy": False}


def test_a_second_capture_sends_an_override_webhook(system, oauth_server, receiver):
    key = make_integration(gateway(system), "test-apikey")
    public = public_key_of(system)
    connection_id = capture_api_key(system, oauth_server, key, public_key=public, connection_id=f"c-{key}")
    # Replacing a connection from the public key needs the backend's hmac (the public-key flows' rule).
    proof = digest(hmac_key(system), key, connection_id)
    assert capture_api_key(system, oauth_server, key, public_key=public, connection_id=f"c-{key}",
                           hmac=proof) == connection_id
    first, second = receiver.wait_for(connection_id, 2)
    assert (first.body["operation"], second.body["operation"]) == ("creation", "override")
    assert second.body["success"] is True and "error" not in second.body and "endUser" not in second.body


def test_a_session_webhook_override_replaces_the_environment_url(system, oauth_server, receiver):
    api = gateway(system)
    key = make_integration(api, "test-apikey")
    other = WebhookReceiver().start()
    try:
        session = create_session(api, allowed_integrations=[key], webhook_url_override=other.url)
        connection_id = capture_api_key(system, oauth_server, key, connect_session_token=session["token"])
        assert other.wait_for(connection_id)[0].body["operation"] == "creation"
        time.sleep(0.5)
        assert receiver.about(connection_id) == []
    finally:
        other.stop()


def test_a_failed_refresh_sends_a_refresh_failure_webhook(system, oauth_server, receiver):
    key, connection_id = connected(system, oauth_server)
    assert receiver.wait_for(connection_id)[0].body["authMode"] == "OAUTH2"
    for token in oauth_server.tokens.values():  # the provider revokes the grant
        token.revoked = True
    expire_soon(system, connection_id)
    failed = read(system, key, connection_id)
    assert failed.status_code == 400, failed.text
    creation, refresh = receiver.wait_for(connection_id, 2)
    assert refresh.body["operation"] == "refresh" and refresh.body["success"] is False
    assert refresh.body["providerConfigKey"] == key and refresh.body["authMode"] == "OAUTH2"
    assert refresh.body["error"]["type"] == "refresh_token_external_error"
    assert isinstance(refresh.body["error"]["description"], str)
    assert sdk_verdict(system.dev_key, refresh)["incoming"] is True


def test_a_failing_receiver_is_retried_with_backoff(system, oauth_server, receiver):
    receiver.statuses = [500, 500]
    key = make_integration(gateway(system), "test-apikey")
    connection_id = capture_api_key(system, oauth_server, key, public_key=public_key_of(system))
    attempts = receiver.wait_for(connection_id, 3)
    time.sleep(1.0)
    assert len(receiver.about(connection_id)) == 3  # the third answer was 200: no fourth attempt
    assert len({a.raw for a in attempts}) == 1 and len({a.headers["X-Nango-Hmac-Sha256"] for a in attempts}) == 1


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: the worst a webhook receiver can do."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("target", ["silent", "closed"])
def test_an_unreachable_receiver_never_delays_nor_fails_the_flow(system, oauth_server, silent_server, target):
    api = gateway(system)
    url = silent_server if target == "silent" else "http://127.0.0.1:9/hook"
    assert api.patch("/environment/webhook", json={"url": url}).status_code == 200
    try:
        key = make_integration(api, "test-apikey")
        started = time.monotonic()
        connection_id = capture_api_key(system, oauth_server, key, public_key=public_key_of(system))
        assert time.monotonic() - started < 3.0
        assert api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).status_code == 200
    finally:
        api.patch("/environment/webhook", json={"url": None})


def test_the_signing_key_is_never_logged(system, oauth_server, receiver):
    key = make_integration(gateway(system), "test-apikey")
    connection_id = capture_api_key(system, oauth_server, key, public_key=public_key_of(system))
    receiver.wait_for(connection_id)
    logs = system.logs()
    assert "auth webhook delivered" in logs  # the deliveries are logged…
    assert system.dev_key not in logs  # …without the key that signs them


def test_the_admin_command_sets_shows_and_clears_the_url(system, oauth_server):
    running = WebhookReceiver().start()
    try:
        done = admin(system.env, "webhook", "set", "--env", "dev", running.url)
        assert done.returncode == 0, done.stderr
        assert admin(system.env, "webhook", "show", "--env", "dev").stdout.strip() == running.url
        assert gateway(system).get("/environment/webhook").json() == {"data": {"url": running.url}}
        key = make_integration(gateway(system), "test-apikey")
        connection_id = capture_api_key(system, oauth_server, key, public_key=public_key_of(system))
        assert running.wait_for(connection_id)[0].body["operation"] == "creation"
        bad = admin(system.env, "webhook", "set", "--env", "dev", "not a url")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        assert admin(system.env, "webhook", "set", "--env", "dev", "--clear").returncode == 0
        assert admin(system.env, "webhook", "show", "--env", "dev").stdout.strip() == "(none)"
    finally:
        admin(system.env, "webhook", "set", "--env", "dev", "--clear")
        running.stop()
