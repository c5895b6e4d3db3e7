"""Who may call: the gateway's key checks (transcript A33–A36, S20), the internal secret every
service demands, and the JSON answers for routes and methods that do not exist."""

from __future__ import annotations

import base64
import http.client
import uuid
from urllib.parse import urlparse

import pytest
import requests

from tests.api.builders import gateway, make_integration
from tests.support.databases import raw_rows

NOT_UUID4 = "Authentication failed. The provided secret key is not a UUID v4."
SERVICES = ("store", "auth", "proxy")


def auth_failure(code: str, message: str) -> dict:
    return {"error": {"message": message, "code": code, "payload": {}}}


def get_connections(system, authorization: str | None) -> requests.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return requests.get(system.url + "/connections", headers=headers)


def test_missing_header(system):
    response = get_connections(system, None)
    assert response.status_code == 401
    assert response.json() == auth_failure(
        "missing_auth_header", "Authentication failed. The request is missing the Authorization header.")
    assert not [h for h in response.headers if h.lower().startswith("x-ratelimit")]


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-key",
    "Bearer 00000000-0000-0000-0000-000000000000",
    "Basic Zm9vOmJhcg==",
    "Bearer 3f1c2a7e-9b4d-1c8e-a1f2-6d5e4c3b2a10",  # a UUID, but version 1
])
def test_keys_that_are_not_uuid4(system, authorization):
    response = get_connections(system, authorization)
    assert response.status_code == 401
    assert response.json() == auth_failure("invalid_secret_key_format", NOT_UUID4)


def test_unknown_uuid4_key(system):
    response = get_connections(system, f"Bearer {uuid.uuid4()}")
    assert response.status_code == 401
    assert response.json() == auth_failure(
        "unknown_account", "Authentication failed. The provided authorization header does not match any account.")


@pytest.mark.parametrize("authorization", ["Token abc", "garbage", "Basic !!!not-base64!!!"])
def test_malformed_header(system, authorization):
    response = get_connections(system, authorization)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "malformed_auth_header"
    assert response.json()["error"]["payload"] == {}


def test_both_keys_and_legacy_basic_are_accepted(system):
    basic = base64.b64encode(f"{system.dev_key}:".encode()).decode()
    for authorization in (f"Bearer {system.dev_key}", f"Bearer {system.prod_key}", f"Basic {basic}"):
        response = get_connections(system, authorization)
        assert response.status_code == 200, (authorization, response.text)
        assert "connections" in response.json()


def test_sdk_headers_are_tolerated(system):
    api = gateway(system)
    api.headers.update({"Nango-Is-Sync": "false", "Nango-Is-Script": "false", "Nango-Is-Dry-Run": "false",
                        "Content-Type": "application/json", "User-Agent": "nango-node-client/0.71.10",
                        "Nango-Activity-Log-Id": "", "Base-Url-Override": ""})
    assert api.get("/integrations").status_code == 200
    assert api.delete(f"/integrations/{uuid.uuid4().hex}").status_code == 404


@pytest.mark.parametrize("service", SERVICES)
def test_services_refuse_callers_without_the_internal_key(system, service):
    base = system.service_url(service)
    spoofed = {"X-Authport-Account": "1", "X-Authport-Environment-Id": "1", "X-Authport-Environment": "dev",
               "X-Authport-Plan": "free", "X-Authport-Rate-Limit": "200", "X-Authport-Key-Kind": "secret",
               "X-Authport-Key-Id": "1"}
    for headers in ({}, {"X-Authport-Internal-Key": "wrong"}, {"X-Authport-Internal-Key": ""}, spoofed,
                    {**spoofed, "X-Authport-Internal-Key": system.env["INTERNAL_API_KEY"][:-1]}):
        for method, path in (("GET", "/integrations"), ("POST", "/internal/keys/resolve"), ("GET", "/x")):
            response = requests.request(method, base + path, headers=headers, json={"key": system.dev_key})
            assert response.status_code == 403, (service, headers, path)
            assert response.json()["error"]["code"] == "forbidden"
    # The right secret gets past the check (to a JSON 404 for a route the service does not have).
    allowed = requests.get(base + "/no-such-route", headers={"X-Authport-Internal-Key": system.env["INTERNAL_API_KEY"]})
    assert allowed.status_code == 404 and allowed.json()["error"]["code"] == "not_found"


def test_identity_headers_sent_to_the_gateway_are_ignored(system):
    dev_only = make_integration(gateway(system, "dev"))["unique_key"]
    dev_env = raw_rows(system.database_url, "SELECT id FROM environments WHERE name = 'dev'")[0][0]
    prod = gateway(system, "prod")
    prod.headers.update({"X-Authport-Environment-Id": str(dev_env), "X-Authport-Environment": "dev",
                         "X-Authport-Internal-Key": "anything", "x-authport-key-kind": "secret"})

    listed = prod.get("/integrations")
    fetched = prod.get(f"/integrations/{dev_only}")

    assert listed.status_code == 200
    assert dev_only not in [i["unique_key"] for i in listed.json()["data"]]
    assert fetched.status_code == 404


def test_internal_routes_are_not_reachable_through_the_gateway(system):
    response = gateway(system).post("/internal/keys/resolve", json={"key": system.dev_key})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [
    "/connections/../internal/keys/resolve",
    "/integrations/%2e%2e/internal/keys/resolve",
    "/connections/..%2Finternal%2Fkeys%2Fresolve",
    "/proxy/./../internal/keys/resolve",
])
def test_dot_segments_do_not_lead_to_internal_routes(system, path):
    # Sent raw: requests would remove the dot segments before they reach the gateway.
    target = urlparse(system.url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    conn.request("POST", path, body=f'{{"key":"{system.dev_key}","kind":"secret"}}',
                 headers={"Authorization": f"Bearer {system.dev_key}", "Content-Type": "application/json"})
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    assert answer.status == 404, body
    assert b'"not_found"' in body and b"identity" not in body


def test_unknown_route_and_wrong_method_answer_json(system):
    api = gateway(system)
    unknown = api.get("/no-such-route")
    anonymous = requests.get(system.url + "/definitely/not/here")
    wrong_method = api.put("/integrations", json={})

    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert anonymous.status_code == 404 and anonymous.headers["Content-Type"].startswith("application/json")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers.get("Allow", "")


def test_cors_headers(system):
    preflight = requests.options(system.url + "/connections", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    answered = gateway(system).get("/integrations", headers={"Origin": "https://app.example.com"})
    refused = get_connections(system, None)

    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "provider-config-key", "connection-id", "nango-activity-log-id",
            "nango-is-dry-run", "nango-is-sync"} <= allowed
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    for response in (answered, refused):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
