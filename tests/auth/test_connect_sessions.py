"""Connect sessions through the gateway: creation, reconnect, reading and deleting with the token,
and what the token may and may not do."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.api.builders import gateway, unique

TOKEN = re.compile(r"^nango_connect_session_[0-9a-f]{64}$")


def make_integration(api, provider: str = "test-apikey", **credentials) -> str:
    key = unique(provider)
    body = {"unique_key": key, "provider": provider}
    if credentials:
        body["credentials"] = {"type": "OAUTH2", **credentials}
    response = api.post("/integrations", json=body)
    assert response.status_code == 200, response.text
    return key


def create_session(api, **body) -> dict:
    body.setdefault("end_user", {"id": unique("user"), "email": "user@example.com", "display_name": "User"})
    response = api.post("/connect/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_create_session_returns_token_link_and_expiry(system):
    api = gateway(system)
    key = make_integration(api)
    data = create_session(api, allowed_integrations=[key])
    assert TOKEN.match(data["token"])
    assert data["connect_link"] == f"{system.url}/connect/?session_token={data['token']}"
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(minutes=30))) < timedelta(seconds=30)
    assert data["expires_at"].endswith("Z")


def test_session_token_reads_session_and_filtered_integrations(system):
    api = gateway(system)
    allowed, other = make_integration(api), make_integration(api)
    data = create_session(api, allowed_integrations=[allowed], organization={"id": "org-1"},
                          integrations_config_defaults={allowed: {"connection_config": {"region": "eu"}}})
    session = gateway(system, data["token"])
    got = session.get("/connect/session")
    assert got.status_code == 200, got.text
    body = got.json()["data"]
    assert body["endUser"]["email"] == "user@example.com"
    assert body["endUser"]["organization"] == {"id": "org-1", "display_name": None}
    assert body["allowed_integrations"] == [allowed]
    assert body["isReconnecting"] is False
    keys = [i["unique_key"] for i in session.get("/integrations").json()["data"]]
    assert keys == [allowed] and other not in keys
    assert session.get("/providers/test-apikey").status_code == 200
    # The token opens nothing else.
    refused = session.get("/connections")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_secret_key_format"
    assert session.post("/connect/sessions", json={"end_user": {"id": "x"}}).status_code == 401
    # The secret key cannot read a session.
    assert api.get("/connect/session").json()["error"]["code"] == "invalid_connect_session_token_format"


def test_deleted_session_stops_working_at_once(system):
    api = gateway(system)
    data = create_session(api)
    session = gateway(system, data["token"])
    assert session.get("/connect/session").status_code == 200
    assert session.delete("/connect/session").status_code == 204
    again = session.get("/connect/session")
    assert again.status_code == 401 and again.json()["error"]["code"] == "unknown_connect_session_token"


def test_malformed_and_unknown_tokens(system):
    bad = gateway(system, "nango_connect_session_nothex").get("/connect/session")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_connect_session_token_format"
    unknown = gateway(system, "nango_connect_session_" + "0" * 64).get("/integrations")
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unknown_connect_session_token"


def test_invalid_bodies(system):
    api = gateway(system)
    missing = api.post("/connect/sessions", json={})
    assert missing.status_code == 400
    assert missing.json() == {"error": {"code": "invalid_body", "errors": [{
        "code": "invalid_type", "message": "Invalid input: expected object, received undefined",
        "path": ["end_user"]}]}}
    unknown = api.post("/connect/sessions", json={"end_user": {"id": "u"}, "allowed_integrations": ["nope-1"]})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["errors"][0]["path"] == ["allowed_integrations", 0]
    extra = api.post("/connect/sessions", json={"end_user": {"id": "u"}, "surprise": 1})
    assert extra.status_code == 400 and extra.json()["error"]["code"] == "invalid_body"


def test_reconnect_session_is_bound_to_its_connection(system):
    api = gateway(system)
    key = make_integration(api)
    imported = api.post("/connections", json={"provider_config_key": key, "connection_id": "conn-re",
                                              "credentials": {"type": "API_KEY", "apiKey": "old"}})
    assert imported.status_code == 201, imported.text
    missing = api.post("/connect/sessions/reconnect", json={"connection_id": "nope", "integration_id": key})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_body"
    created = api.post("/connect/sessions/reconnect", json={"connection_id": "conn-re", "integration_id": key,
                                                            "end_user": {"id": "u-re"}})
    assert created.status_code == 201, created.text
    session = gateway(system, created.json()["data"]["token"]).get("/connect/session").json()["data"]
    assert session["isReconnecting"] is True and session["allowed_integrations"] == [key]
