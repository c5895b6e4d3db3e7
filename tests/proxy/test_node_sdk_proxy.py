"""The proxy driven by Nango's real Node SDK (@nangohq/node@0.71.10): get/post/put/patch/delete
and proxy() reach the echo upstream as Nango's own server delivers them (transcript S15-S17)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.test_node_sdk import call, returned, threw
from tests.proxy.builders import OAUTH2, connect, gateway


@pytest.fixture(scope="module")
def connection(system):
    return connect(gateway(system), "echo-oauth", OAUTH2)


def config(connection, endpoint: str, **extra) -> dict:
    key, connection_id = connection
    return {"endpoint": endpoint, "providerConfigKey": key, "connectionId": connection_id, **extra}


def received(result: dict) -> dict:
    status, data = returned(result)
    assert status == 200, data
    data["body"] = base64.b64decode(data["body"]).decode()
    data["headers"] = {k.lower(): v for k, v in data["headers"].items()}
    return data


def test_sdk_proxy_methods(sdk, connection, upstream):
    results = sdk(
        call("get", config(connection, "/user/repos", params={"per_page": "2"})),
        call("post", config(connection, "/items", data={"x": 1}, headers={"X-Custom": "v"})),
        call("put", config(connection, "thing")),
        call("patch", config(connection, "/items/1", data={"y": [1, 2]})),
        call("delete", config(connection, "/items/1", data={"why": "gone"})),
        call("proxy", config(connection, "/raw", method="GET", retries=2, retryOn=[503], decompress=True)),
    )
    got = received(results[0])
    assert got["target"] == "/user/repos?per_page=2"
    assert got["headers"]["authorization"] == "Bearer tok-oauth-secret"
    assert "nango-is-sync" not in got["headers"] and "user-agent" in got["headers"]
    posted = received(results[1])
    assert json.loads(posted["body"]) == {"x": 1}
    assert posted["headers"]["x-custom"] == "v" and posted["headers"]["content-type"].startswith("application/json")
    assert received(results[2])["target"] == "/thing" and received(results[2])["method"] == "PUT"
    assert json.loads(received(results[3])["body"]) == {"y": [1, 2]}
    deleted = received(results[4])
    assert deleted["method"] == "DELETE" and json.loads(deleted["body"]) == {"why": "gone"}
    assert received(results[5])["target"] == "/raw"
    assert {r.peer for r in upstream.received} <= {"127.0.0.2", "127.0.0.3"}


def test_sdk_base_url_override_is_refused(sdk, connection, sentinel):
    status, data = threw(sdk(call("get", config(connection, "/user", baseUrlOverride=sentinel.url)))[0])
    assert status == 400
    assert data == {"error": {"code": "base_url_override_not_allowed",
                              "message": "This base URL override is not allowed by server configuration."}}
    assert sentinel.connections == 0


def test_sdk_sees_upstream_errors_and_missing_connections(sdk, connection):
    key, _ = connection
    results = sdk(
        call("get", config(connection, "/status/404")),
        call("get", {"endpoint": "/user", "providerConfigKey": key, "connectionId": "nope"}),
    )
    status, data = threw(results[0])
    assert status == 404 and data == {"error": "upstream"}
    status, data = threw(results[1])
    assert status == 400 and data == {"error": {"code": "server_error", "message": "Failed to get connection"}}
