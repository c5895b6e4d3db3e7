"""Credential capture through the gateway, as the frontend SDK posts it: API key, basic and
client credentials, each checked against the test server before it is saved."""

from __future__ import annotations

import secrets

import requests

from tests.api.builders import gateway
from tests.auth.test_connect_sessions import create_session, make_integration


def post(system, path: str, body: dict, **params) -> requests.Response:
    # A plain client, like a browser's fetch: no Authorization header, the credential in the query.
    return requests.post(system.url + path, json=body, params=params, timeout=30)


def test_api_key_is_verified_then_saved_with_the_session_end_user(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-apikey")
    good = "canary-key-" + secrets.token_hex(8)
    oauth_server.api_keys.add(good)
    session = create_session(api, allowed_integrations=[key], tags={"team": "blue"},
                             end_user={"id": "eu-1", "email": "eu@example.com"})
    refused = post(system, f"/api-auth/api-key/{key}", {"apiKey": "wrong"}, connect_session_token=session["token"])
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "connection_test_failed"
    assert "wrong" not in refused.text
    saved = post(system, f"/api-auth/api-key/{key}", {"apiKey": good}, connect_session_token=session["token"])
    assert saved.status_code == 200, saved.text
    assert set(saved.json()) == {"connectionId", "providerConfigKey"}
    assert saved.json()["providerConfigKey"] == key
    conn = api.get(f"/connections/{saved.json()['connectionId']}", params={"provider_config_key": key}).json()
    assert conn["credentials"] == {"type": "API_KEY", "apiKey": good}
    assert conn["end_user"]["id"] == "eu-1"
    assert conn["tags"] == {"team": "blue", "end_user_id": "eu-1", "end_user_email": "eu@example.com"}


def test_session_limits_and_errors(system):
    api = gateway(system)
    allowed, other = make_integration(api, "test-apikey"), make_integration(api, "test-basic")
    token = create_session(api, allowed_integrations=[allowed])["token"]
    not_allowed = post(system, f"/api-auth/basic/{other}", {"username": "u", "password": "p"},
                       connect_session_token=token)
    assert not_allowed.status_code == 400 and not_allowed.json()["error"]["code"] == "integration_not_allowed"
    wrong_mode = post(system, f"/api-auth/basic/{allowed}", {"username": "u", "password": "p"},
                      connect_session_token=token)
    assert wrong_mode.status_code == 400 and wrong_mode.json()["error"]["code"] == "invalid_auth_mode"
    unknown = post(system, "/api-auth/api-key/no-such-integration", {"apiKey": "k"}, connect_session_token=token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_provider_config"
    with_id = post(system, f"/api-auth/api-key/{allowed}", {"apiKey": "k"}, connect_session_token=token,
                   connection_id="mine")
    assert with_id.status_code == 400 and with_id.json()["error"]["code"] == "invalid_query_params"
    no_auth = post(system, f"/api-auth/api-key/{allowed}", {"apiKey": "k"})
    assert no_auth.status_code == 401 and no_auth.json()["error"]["code"] == "missing_public_key"
    expired = post(system, f"/api-auth/api-key/{allowed}", {"apiKey": "k"}, connect_session_token="nango_connect_"
                   "session_" + "a" * 64)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "unknown_connect_session_token"
    bad_body = post(system, f"/api-auth/api-key/{allowed}", {"apiKey": "k", "other": 1}, connect_session_token=token)
    assert bad_body.status_code == 400 and bad_body.json()["error"]["code"] == "invalid_body"


def test_basic_credentials_with_public_key(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-basic")
    oauth_server.basic_users["alice"] = "s3cret"
    public = public_key_of(system)
    refused = post(system, f"/api-auth/basic/{key}", {"username": "alice", "password": "nope"}, public_key=public)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "connection_test_failed"
    saved = post(system, f"/api-auth/basic/{key}", {"username": "alice", "password": "s3cret"}, public_key=public,
                 connection_id="alice-conn")
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"connectionId": "alice-conn", "providerConfigKey": key}
    conn = api.get("/connections/alice-conn", params={"provider_config_key": key}).json()
    assert conn["credentials"] == {"type": "BASIC", "username": "alice", "password": "s3cret"}


def test_client_credentials_token_is_fetched_and_saved(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-cc")
    client = oauth_server.add_client()
    token = create_session(api, allowed_integrations=[key])["token"]
    missing = post(system, f"/oauth2/auth/{key}", {"client_secret": "x"}, connect_session_token=token)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_client_id"
    wrong = post(system, f"/oauth2/auth/{key}", {"client_id": client.client_id, "client_secret": "wrong"},
                 connect_session_token=token)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_credentials"
    saved = post(system, f"/oauth2/auth/{key}", {"client_id": client.client_id, "client_secret": client.client_secret},
                 connect_session_token=token)
    assert saved.status_code == 200, saved.text
    conn = api.get(f"/connections/{saved.json()['connectionId']}", params={"provider_config_key": key}).json()
    creds = conn["credentials"]
    assert creds["type"] == "OAUTH2_CC" and creds["token"] in oauth_server.issued_access_tokens()
    assert creds["client_id"] == client.client_id and creds["expires_at"].endswith("Z")


def public_key_of(system) -> str:
    """The dev environment's public key, read from the database the way the dashboard would show it."""
    from common.crypto import Cipher
    from common.settings import load_settings
    from services.store.app import open_configured_database
    from services.store.keys import live_key, reveal
    from services.store.models import Environment

    settings = load_settings(system.env)
    db = open_configured_database(settings)
    with db.connection_context():
        env = Environment.get(Environment.name == "dev")
        secret = reveal(Cipher(settings.NANGO_ENCRYPTION_KEY), live_key(env, "public"))
    getattr(db, "close_all", lambda: None)()
    return secret
