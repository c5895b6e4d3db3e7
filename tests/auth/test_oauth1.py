"""The OAuth 1.0a popup flow over HTTP and the gateway's websocket, against the test OAuth 1.0a
provider (authlib's server, which verifies every HMAC-SHA1 signature)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from tests.api.builders import gateway, unique
from tests.auth.popup import Socket, authorize_query, run_popup
from tests.auth.test_connect_sessions import create_session


def oauth1_integration(api, oauth1_server, *, wrong_secret: bool = False, scopes: str | None = None) -> str:
    consumer = oauth1_server.add_consumer()
    key = unique("test-oauth1")
    credentials = {"type": "OAUTH1", "client_id": consumer.client_id,
                   "client_secret": "not-the-secret" if wrong_secret else consumer.client_secret}
    if scopes:
        credentials["scopes"] = scopes
    response = api.post("/integrations", json={"unique_key": key, "provider": "test-oauth1",
                                               "credentials": credentials})
    assert response.status_code == 200, response.text
    return key


def all_logs(system) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(system.log_dir.glob("*.log")))


def without(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_oauth1_flow_saves_token_credentials(system, oauth1_server):
    api = gateway(system)
    key = oauth1_integration(api, oauth1_server, scopes="read,write")
    session = create_session(api, allowed_integrations=[key], end_user={"id": "oauth1-user"})
    socket = Socket(system.url)
    answer, hops = run_popup(system.url, key, connect_session_token=session["token"], ws_client_id=socket.client_id,
                             **{"params[board]": "b1", "authorization_params[name]": "Authport"})
    assert answer.status_code == 200, answer.text
    assert "nango_oauth_callback_success" in answer.text
    sent = authorize_query(hops)
    assert sent["oauth_token"].startswith("canary1-t-") and sent["expiration"] == "never"
    assert sent["name"] == "Authport" and sent["scope"] == "read write"
    assert oauth1_server.request_token_params[-1] == {"app_name": "authport-tests"}
    result = socket.result()
    assert result["message_type"] == "success" and result["provider_config_key"] == key
    conn = api.get(f"/connections/{result['connection_id']}", params={"provider_config_key": key}).json()
    creds = conn["credentials"]
    assert creds["type"] == "OAUTH1" and oauth1_server.issued()[creds["oauth_token"]] == creds["oauth_token_secret"]
    assert creds["raw"]["oauth_token"] == creds["oauth_token"] and "expires_at" not in creds
    assert conn["connection_config"] == {"board": "b1"} and conn["end_user"]["id"] == "oauth1-user"
    # Never refreshed: a forced refresh keeps the same credentials.
    again = api.get(f"/connections/{result['connection_id']}", params={"provider_config_key": key,
                                                                        "force_refresh": "true"})
    assert again.status_code == 200 and again.json()["credentials"]["oauth_token"] == creds["oauth_token"]
    logs = all_logs(system)
    assert creds["oauth_token_secret"] not in logs and creds["oauth_token"] not in logs
    assert "canary1-s-" not in logs


def test_wrong_consumer_secret_is_a_token_error(system, oauth1_server):
    api = gateway(system)
    key = oauth1_integration(api, oauth1_server, wrong_secret=True)
    token = create_session(api)["token"]
    socket = Socket(system.url)
    answer, hops = run_popup(system.url, key, connect_session_token=token, ws_client_id=socket.client_id)
    assert answer.status_code == 400 and "token_err" in answer.text and not hops
    assert "Traceback" not in answer.text and "not-the-secret" not in answer.text
    result = socket.result()
    assert result["message_type"] == "error" and result["error_type"] == "token_err"
    assert "401" in result["error_desc"]


def test_bad_signature_at_the_exchange_is_a_token_error(system, oauth1_server):
    api = gateway(system)
    key = oauth1_integration(api, oauth1_server)
    token = create_session(api)["token"]
    socket = Socket(system.url)
    browser = requests.Session()
    to_provider = browser.get(f"{system.url}/oauth/connect/{key}", allow_redirects=False,
                              params={"connect_session_token": token, "ws_client_id": socket.client_id})
    assert to_provider.status_code == 302, to_provider.text
    callback = browser.get(to_provider.headers["Location"], allow_redirects=False).headers["Location"]
    assert "oauth_verifier=" in callback
    # The consumer secret changes between the authorization and the exchange: the signature is wrong.
    changed = api.patch(f"/integrations/{key}", json={"credentials": {
        "type": "OAUTH1", "client_id": oauth1_server.consumers[authorize_client(oauth1_server)].client_id,
        "client_secret": "rotated-secret"}})
    assert changed.status_code == 200, changed.text
    answer = browser.get(callback)
    assert answer.status_code == 400 and "token_err" in answer.text and "Traceback" not in answer.text
    result = socket.result()
    assert result["error_type"] == "token_err" and "401" in result["error_desc"]


def authorize_client(oauth1_server) -> str:
    """The consumer of the latest request token the provider issued."""
    token = oauth1_server.authorize_requests[-1]["oauth_token"]
    return oauth1_server.temporary[token].get_client_id()


def test_denied_authorization_and_missing_verifier_are_callback_errors(system, oauth1_server):
    api = gateway(system)
    key = oauth1_integration(api, oauth1_server)
    token = create_session(api)["token"]
    socket = Socket(system.url)
    answer, _ = run_popup(system.url, key, connect_session_token=token, ws_client_id=socket.client_id,
                          **{"authorization_params[deny]": "1"})
    assert answer.status_code == 400 and "callback_err" in answer.text
    result = socket.result()
    assert result["error_type"] == "callback_err" and "access_denied" in result["error_desc"]

    browser = requests.Session()
    to_provider = browser.get(f"{system.url}/oauth/connect/{key}", params={"connect_session_token": token},
                              allow_redirects=False)
    callback = browser.get(to_provider.headers["Location"], allow_redirects=False).headers["Location"]
    missing = browser.get(without(callback, "oauth_verifier"))
    assert missing.status_code == 400 and "callback_err" in missing.text
    replay = browser.get(callback)  # the state was consumed by the failed callback
    assert replay.status_code == 400 and "state_err" in replay.text
