"""A connection a flow creates or replaces is on record like an imported one (issue 10): by the
connect session or the public key that ran the flow, via the captured credential type, with no
credential in the record."""

from __future__ import annotations

import secrets

from tests.api.builders import gateway
from tests.auth.test_capture import post, public_key_of
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.support.databases import raw_rows


def records(api, connection_id: str) -> list[dict]:
    answer = api.get("/logs", params={"connection_id": connection_id})
    assert answer.status_code == 200, answer.text
    return [r for r in answer.json()["data"] if r["type"].startswith("connection.")]


def test_a_connect_session_flow_and_a_reconnect_are_recorded(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-apikey")
    first, second = "canary-key-" + secrets.token_hex(8), "canary-key-" + secrets.token_hex(8)
    oauth_server.api_keys.update({first, second})
    session = create_session(api, allowed_integrations=[key])
    saved = post(system, f"/api-auth/api-key/{key}", {"apiKey": first}, connect_session_token=session["token"])
    assert saved.status_code == 200, saved.text
    connection_id = saved.json()["connectionId"]
    again = api.post("/connect/sessions/reconnect", json={"connection_id": connection_id, "integration_id": key})
    assert again.status_code in (200, 201), again.text
    replaced = post(system, f"/api-auth/api-key/{key}", {"apiKey": second},
                    connect_session_token=again.json()["data"]["token"])
    assert replaced.status_code == 200, replaced.text
    found = records(api, connection_id)
    assert [(r["type"], r["detail"].get("via"), r["detail"].get("connect_session"), r["detail"].get("fields"))
            for r in found] == [
        ("connection.updated", "api_key", "reconnect", ["connection_config", "credentials"]),
        ("connection.created", "api_key", "connect", None)]
    assert all(r["actor"].startswith("connect_session:") and r["outcome"] == "success" for r in found)
    stored = str(raw_rows(system.database_url, "SELECT * FROM operations"))
    assert first not in stored and second not in stored


def test_a_public_key_flow_is_recorded_by_the_public_key(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-apikey")
    good = "canary-key-" + secrets.token_hex(8)
    oauth_server.api_keys.add(good)
    saved = post(system, f"/api-auth/api-key/{key}", {"apiKey": good}, public_key=public_key_of(system))
    assert saved.status_code == 200, saved.text
    [created] = records(api, saved.json()["connectionId"])
    assert created["type"] == "connection.created" and created["detail"]["via"] == "api_key"
    assert created["actor"].startswith("public_key:") and created["integration"] == key
