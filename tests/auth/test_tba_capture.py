"""TBA tokens captured through the gateway (`POST /auth/tba/:key`, as the frontend SDK posts them):
verified with a signed call first, then saved, then usable by the proxy."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.api.builders import gateway, unique
from tests.auth.test_capture import public_key_of
from tests.auth.test_connect_sessions import create_session
from tests.proxy.builders import proxied
from tests.proxy.test_tba_signing import TbaApi, tba_catalogue
from tests.support.system import catalogue_system


@pytest.fixture(scope="module")
def tba_api():
    api = TbaApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def tba_system(request, tmp_path_factory, tba_api):
    with catalogue_system(tmp_path_factory.mktemp(f"tba-auth-{request.param}"), request.param,
                          tba_catalogue(tba_api)) as running:
        yield running


def post(system, key: str, body: dict, **params) -> requests.Response:
    # A plain client, like a browser's fetch: no Authorization header, the credential in the query.
    return requests.post(f"{system.url}/auth/tba/{key}", json=body, params=params, timeout=30)


def integration(api, tba_api, provider: str = "tba-api", *, with_client: bool = True) -> str:
    key = unique("tba")
    body: dict = {"unique_key": key, "provider": provider}
    if with_client:
        consumer_key, consumer_secret = unique("ck"), "cs-" + secrets.token_hex(8)
        tba_api.consumers[consumer_key] = consumer_secret
        body["credentials"] = {"type": "TBA", "client_id": consumer_key, "client_secret": consumer_secret}
    response = api.post("/integrations", json=body)
    assert response.status_code == 200, response.text
    return key


def token(tba_api, account: str) -> dict:
    token_id, token_secret = unique("tid"), "ts-" + secrets.token_hex(8)
    tba_api.tokens[token_id], tba_api.accounts[token_id] = token_secret, account
    return {"token_id": token_id, "token_secret": token_secret}


def code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def test_tokens_are_verified_then_saved_and_proxied_calls_work(tba_system, tba_api):
    api = gateway(tba_system)
    key = integration(api, tba_api)
    session = create_session(api, allowed_integrations=[key], end_user={"id": "eu-tba"})
    good = token(tba_api, "1234567-sb1")
    params = {"connect_session_token": session["token"], "params[accountId]": "1234567-sb1"}
    before = len(tba_api.received)
    refused = post(tba_system, key, {**good, "token_secret": "wrong-secret"}, **params)
    assert refused.status_code == 400 and code(refused) == "connection_test_failed"
    assert "wrong-secret" not in refused.text
    assert tba_api.received[before]["target"] == "/1234567-sb1/api/whoami?format=json"
    saved = post(tba_system, key, good, **params)
    assert saved.status_code == 200, saved.text
    assert set(saved.json()) == {"connectionId", "providerConfigKey"} and saved.json()["providerConfigKey"] == key
    assert tba_api.last()["valid"] and tba_api.last()["oauth"]["realm"] == "1234567_SB1"
    connection_id = saved.json()["connectionId"]
    conn = api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).json()
    assert conn["credentials"] == {"type": "TBA", **good}
    assert conn["connection_config"] == {"accountId": "1234567-sb1"} and conn["end_user"]["id"] == "eu-tba"
    response = proxied(api, "GET", "/record/v1/customer", key, connection_id)
    assert response.status_code == 200, response.text
    assert tba_api.last()["valid"] and tba_api.last()["target"].startswith("/1234567-sb1/api/record/v1/customer")


def test_client_overrides_sign_and_are_kept_with_the_public_key(tba_system, tba_api):
    api = gateway(tba_system)
    key = integration(api, tba_api, with_client=False)
    consumer_key, consumer_secret = unique("ck-own"), "own-" + secrets.token_hex(8)
    tba_api.consumers[consumer_key] = consumer_secret
    good = token(tba_api, "7654321")
    body = {**good, "oauth_client_id_override": consumer_key, "oauth_client_secret_override": consumer_secret}
    saved = post(tba_system, key, body, public_key=public_key_of(tba_system), connection_id="tba-own",
                 **{"params[accountId]": "7654321"})
    assert saved.status_code == 200, saved.text
    conn = api.get("/connections/tba-own", params={"provider_config_key": key}).json()
    assert conn["credentials"]["config_override"] == {"client_id": consumer_key, "client_secret": consumer_secret}
    response = proxied(api, "GET", "/record", key, "tba-own")
    assert response.status_code == 200, response.text
    assert tba_api.last()["oauth"]["oauth_consumer_key"] == consumer_key


def test_bad_bodies_configs_and_modes_are_refused(tba_system, tba_api):
    api = gateway(tba_system)
    key, other = integration(api, tba_api), integration(api, tba_api, "plain-key", with_client=False)
    no_client = integration(api, tba_api, with_client=False)
    session = create_session(api, allowed_integrations=[key, other, no_client])["token"]
    good = token(tba_api, "1234567")
    ok = {"connect_session_token": session, "params[accountId]": "1234567"}
    before = len(tba_api.received)
    for body in ({"token_id": good["token_id"]}, {"token_secret": "s"}, {**good, "token_id": ""},
                 {**good, "extra": 1}, {**good, "oauth_client_id_override": 5}):
        response = post(tba_system, key, body, **ok)
        assert response.status_code == 400 and code(response) == "invalid_body", (body, response.text)
    missing = post(tba_system, key, good, connect_session_token=session)
    assert missing.status_code == 400 and code(missing) == "invalid_connection_config"
    for account in ("evil.example", "1234567_SB1", 'x", oauth_token="y'):
        bad = post(tba_system, key, good, connect_session_token=session, **{"params[accountId]": account})
        assert bad.status_code == 400 and code(bad) == "invalid_connection_config", bad.text
        assert "accountId" in bad.json()["error"]["message"]
    unsigned = post(tba_system, no_client, good, **ok)
    assert unsigned.status_code == 400 and code(unsigned) == "missing_client_credentials"
    assert len(tba_api.received) == before  # nothing was sent for any of these
    wrong_mode = post(tba_system, other, good, **ok)
    assert wrong_mode.status_code == 400 and code(wrong_mode) == "invalid_auth_mode"
    no_auth = post(tba_system, key, good, **{"params[accountId]": "1234567"})
    assert no_auth.status_code == 401 and code(no_auth) == "missing_public_key"
