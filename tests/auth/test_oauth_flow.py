"""The OAuth 2 popup flow over HTTP and the gateway's websocket, against the test OAuth server."""

from __future__ import annotations

import requests

from tests.api.builders import gateway
from tests.auth.popup import Socket, authorize_query, run_popup
from tests.auth.test_connect_sessions import create_session, make_integration


def oauth_integration(api, oauth_server, provider: str = "test-oauth", scopes: str = "read,write") -> str:
    client = oauth_server.add_client()
    return make_integration(api, provider, client_id=client.client_id, client_secret=client.client_secret,
                            scopes=scopes)


def test_successful_flow_saves_tokens_and_tells_the_websocket(system, oauth_server):
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    session = create_session(api, allowed_integrations=[key], end_user={"id": "flow-user"})
    socket = Socket(system.url)
    answer, hops = run_popup(system.url, key, connect_session_token=session["token"], ws_client_id=socket.client_id,
                             **{"params[region]": "eu", "authorization_params[prompt]": "consent"})
    assert answer.status_code == 200, answer.text
    assert "nango_oauth_callback_success" in answer.text
    sent = authorize_query(hops)
    assert sent["scope"] == "read,write" and sent["audience"] == "test-api" and sent["prompt"] == "consent"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == f"{system.url}/oauth/callback" and sent["response_type"] == "code"
    result = socket.result()
    socket.close()
    assert result["message_type"] == "success" and result["provider_config_key"] == key
    assert result["is_pending"] is False
    conn = api.get(f"/connections/{result['connection_id']}", params={"provider_config_key": key,
                                                                       "refresh_token": "true"}).json()
    creds = conn["credentials"]
    assert creds["type"] == "OAUTH2" and creds["access_token"] in oauth_server.issued_access_tokens()
    assert creds["refresh_token"].startswith("canary-rt-") and creds["expires_at"].endswith("Z")
    assert conn["connection_config"] == {"region": "eu"}
    assert conn["end_user"]["id"] == "flow-user" and conn["tags"]["end_user_id"] == "flow-user"


def test_state_is_single_use(system, oauth_server):
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api)["token"]
    browser = requests.Session()
    to_provider = browser.get(f"{system.url}/oauth/connect/{key}", params={"connect_session_token": token},
                              allow_redirects=False)
    assert to_provider.status_code == 302
    callback = browser.get(to_provider.headers["Location"], allow_redirects=False).headers["Location"]
    assert browser.get(callback).status_code == 200
    replay = browser.get(callback)
    assert replay.status_code == 400 and "state_err" in replay.text


def test_denied_consent_reaches_the_websocket(system, oauth_server):
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api)["token"]
    socket = Socket(system.url)
    answer, _ = run_popup(system.url, key, connect_session_token=token, ws_client_id=socket.client_id,
                          **{"authorization_params[deny]": "1"})
    assert answer.status_code == 400 and "callback_err" in answer.text
    result = socket.result()
    assert result["message_type"] == "error" and result["error_type"] == "callback_err"
    assert "access_denied" in result["error_desc"]


def test_tampered_state_is_refused(system, oauth_server):
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api)["token"]
    answer, _ = run_popup(system.url, key, connect_session_token=token, **{"authorization_params[tamper_state]": "1"})
    assert answer.status_code == 400 and "state_err" in answer.text
    assert "Traceback" not in answer.text


def test_unknown_integration_and_bad_session(system, oauth_server):
    api = gateway(system)
    token = create_session(api)["token"]
    socket = Socket(system.url)
    answer, _ = run_popup(system.url, "no-such-key", connect_session_token=token, ws_client_id=socket.client_id)
    assert answer.status_code == 400 and "provider_config_err" in answer.text
    assert socket.result()["error_type"] == "provider_config_err"
    socket = Socket(system.url)
    answer, _ = run_popup(system.url, "no-such-key", connect_session_token="nango_connect_session_" + "b" * 64,
                          ws_client_id=socket.client_id)
    assert answer.status_code == 401 and "text/html" in answer.headers["Content-Type"]
    assert socket.result()["error_type"] == "unknown_connect_session_token"


def test_templated_urls_and_disabled_pkce(system, oauth_server):
    api = gateway(system)
    key = oauth_integration(api, oauth_server, provider="test-tenant", scopes="a,b")
    token = create_session(api)["token"]
    answer, hops = run_popup(system.url, key, connect_session_token=token, **{"params[tenant]": "acme"})
    assert answer.status_code == 200, answer.text
    assert oauth_server.authorize_requests[-1]["_tenant"] == "acme"
    sent = authorize_query(hops)
    assert "code_challenge" not in sent and sent["scope"] == "a b"
    missing, _ = run_popup(system.url, key, connect_session_token=token)
    assert missing.status_code == 400 and "url_param_err" in missing.text
    unsafe, hops = run_popup(system.url, key, connect_session_token=token, **{"params[tenant]": "evil.test/x?"})
    assert unsafe.status_code == 400 and "url_param_err" in unsafe.text and not hops


def test_client_id_override_and_user_scope(system, oauth_server):
    """An end user's own OAuth app (client id/secret overrides) is used for the authorize request and
    the code exchange, and `user_scope` reaches the provider."""
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    own_app = oauth_server.add_client()
    session = create_session(api, allowed_integrations=[key])
    answer, hops = run_popup(system.url, key, connect_session_token=session["token"], user_scope="chat:write",
                             **{"credentials[oauth_client_id_override]": own_app.client_id,
                                "credentials[oauth_client_secret_override]": own_app.client_secret})
    assert answer.status_code == 200, answer.text
    sent = authorize_query(hops)
    assert sent["client_id"] == own_app.client_id and sent["user_scope"] == "chat:write"
    listed = api.get("/connections", params={"integrationId": key}).json()["connections"]
    conn = api.get(f"/connections/{listed[0]['connection_id']}", params={"provider_config_key": key}).json()
    assert conn["credentials"]["access_token"] in oauth_server.issued_access_tokens()
    assert own_app.client_secret not in answer.text
