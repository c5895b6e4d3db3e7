"""`/proxy/*` through the real gateway and proxy, against an echo upstream on 127.0.0.1: what
reaches the upstream (credential, headers, path, query, body, source address) and what the
caller gets back."""

from __future__ import annotations

import base64

import pytest

from tests.proxy.builders import OAUTH2, connect, echo, error, gateway, proxied
from tests.proxy.conftest import SOURCE_IPS


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


@pytest.fixture(scope="module")
def oauth(api):
    return connect(api, "echo-oauth", OAUTH2)


def test_oauth2_token_is_sent_as_bearer_and_only_prefixed_headers_pass(api, oauth, upstream):
    got = echo(proxied(api, "GET", "/user/repos?per_page=2&q=a%20b", *oauth, headers={
        "Nango-Proxy-X-Custom": "hello", "X-Not-Forwarded": "1", "Retries": "0"}))
    assert got["target"] == "/user/repos?per_page=2&q=a%20b"
    assert got["headers"]["authorization"] == "Bearer tok-oauth-secret"
    assert got["headers"]["x-custom"] == "hello"
    assert got["headers"]["accept"] == "application/vnd.echo+json"
    for absent in ("x-not-forwarded", "connection-id", "provider-config-key", "nango-is-sync", "retries",
                   "x-authport-internal-key", "x-authport-account", "base-url-override"):
        assert absent not in got["headers"]
    assert got["headers"]["authorization"] != f"Bearer {api.headers['Authorization']}"
    assert got["peer"] in SOURCE_IPS


def test_calls_leave_from_every_egress_source_address(api, oauth, upstream):
    before = len(upstream.received)
    for _ in range(6):
        assert proxied(api, "GET", "/spread", *oauth).status_code == 200
    assert {r.peer for r in upstream.received[before:]} == set(SOURCE_IPS)


def test_upstream_answer_comes_back_unchanged(api, oauth):
    response = proxied(api, "GET", "/anything", *oauth)
    assert response.status_code == 200
    assert response.headers["X-Echo"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert "X-RateLimit-Limit" in response.headers
    status = proxied(api, "GET", "/status/418", *oauth)
    assert status.status_code == 418 and status.content == b'{"error":"upstream"}'


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_json_bodies_and_methods(api, oauth, method):
    got = echo(proxied(api, method, "/items", *oauth, json={"title": "hi", "labels": ["a"]}))
    assert got["method"] == method
    assert got["body"] == b'{"title": "hi", "labels": ["a"]}'
    assert got["headers"]["content-type"] == "application/json"


def test_head_propfind_and_empty_put(api, oauth):
    assert proxied(api, "HEAD", "/items", *oauth).status_code == 200
    assert echo(proxied(api, "PROPFIND", "/dav", *oauth))["method"] == "PROPFIND"
    got = echo(proxied(api, "PUT", "/thing", *oauth))
    assert got["body"] == b"" and got["method"] == "PUT"


def test_binary_and_multipart_bodies_arrive_byte_for_byte(api, oauth):
    blob = bytes(range(256)) * 4096  # 1 MiB, beyond the replay buffer: streamed
    got = echo(proxied(api, "POST", "/upload", *oauth, data=blob,
                       headers={"Content-Type": "application/octet-stream"}))
    assert got["body"] == blob
    multipart = proxied(api, "POST", "/form", *oauth, files={"file": ("a.bin", b"\0\1\2", "application/x-raw")},
                        data={"field": "value"})
    got = echo(multipart)
    assert got["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert b"\0\1\2" in got["body"] and b'name="field"' in got["body"]


def test_chunked_upload_streams_through(api, oauth):
    got = echo(proxied(api, "POST", "/chunks", *oauth, data=(part for part in [b"a" * 70000, b"b" * 70000]),
                       headers={"Content-Type": "text/plain"}))
    assert got["body"] == b"a" * 70000 + b"b" * 70000


def test_encoded_path_is_kept_as_sent(api, oauth):
    assert echo(proxied(api, "GET", "/files/a%2Fb/c%20d", *oauth))["target"] == "/files/a%2Fb/c%20d"


def test_api_key_header_template_and_base_path(api):
    connection = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "k-123-secret"})
    got = echo(proxied(api, "GET", "/v1/models", *connection))
    assert got["target"] == "/api/v1/models"
    assert got["headers"]["x-api-key"] == "k-123-secret"
    assert "authorization" not in got["headers"]


def test_query_credential_cannot_be_duplicated(api):
    connection = connect(api, "echo-query", {"type": "API_KEY", "apiKey": "q-secret"})
    got = echo(proxied(api, "GET", "/search?api_key=attacker&term=x", *connection))
    assert got["target"] in ("/search?term=x&api_key=q-secret",)


def test_basic_credentials(api):
    connection = connect(api, "echo-basic", {"type": "BASIC", "username": "u", "password": "p:w"})
    got = echo(proxied(api, "GET", "/me", *connection))
    assert got["headers"]["authorization"] == "Basic " + base64.b64encode(b"u:p:w").decode()


def test_client_credentials_token_and_connection_config_header(api):
    connection = connect(api, "echo-cc", {"type": "OAUTH2_CC", "token": "cc-token", "client_id": "id",
                                          "client_secret": "s"}, connection_config={"tenant": "t-1"})
    got = echo(proxied(api, "GET", "/me", *connection))
    assert got["headers"]["authorization"] == "Bearer cc-token"
    assert got["headers"]["x-tenant"] == "t-1"


def test_base_url_from_connection_config(api, upstream):
    connection = connect(api, "echo-templated", {"type": "API_KEY", "apiKey": "t-key"},
                         connection_config={"host": "127.0.0.1", "region": "eu"})
    got = echo(proxied(api, "GET", "/x", *connection))
    assert got["target"] == "/t/eu/x"
    assert got["headers"]["authorization"] == "Key t-key"
    whole = connect(api, "echo-instance", {"type": "API_KEY", "apiKey": "i-key"},
                    connection_config={"instance_url": upstream.url + "/inst"})
    assert echo(proxied(api, "GET", "/y", *whole))["target"] == "/inst/y"


@pytest.mark.parametrize("config", [{"host": "127.0.0.1", "region": "mars"},
                                    {"host": "127.0.0.1/evil#", "region": "eu"},
                                    {"host": "evil@127.0.0.1", "region": "eu"}])
def test_connection_config_cannot_move_the_origin(api, upstream, config):
    connection = connect(api, "echo-templated", {"type": "API_KEY", "apiKey": "t-key"}, connection_config=config)
    before = len(upstream.received)
    response = proxied(api, "GET", "/x", *connection)
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_connection_config"
    assert len(upstream.received) == before


@pytest.mark.parametrize("header", ["Nango-Proxy-Authorization", "Nango-Proxy-authorization"])
def test_caller_cannot_replace_the_credential(api, oauth, upstream, header):
    before = len(upstream.received)
    response = proxied(api, "GET", "/me", *oauth, headers={header: "Bearer mine"})
    assert response.status_code == 400 and error(response)["code"] == "invalid_headers"
    assert len(upstream.received) == before


def test_caller_cannot_set_host_or_framing(api, oauth, upstream):
    got = echo(proxied(api, "GET", "/me", *oauth, headers={"Nango-Proxy-Host": "evil.example",
                                                            "Nango-Proxy-Transfer-Encoding": "chunked"}))
    assert got["headers"]["host"] == upstream.url.removeprefix("http://")
    assert "transfer-encoding" not in got["headers"]


def test_missing_headers_are_invalid(api):
    response = api.get("/proxy/user", headers={"Provider-Config-Key": "x"})
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_headers"
    assert error(response)["errors"][0]["path"] == ["connection-id"]
    bad = api.get("/proxy/user", headers={"Provider-Config-Key": "x", "Connection-Id": "y", "Retries": "two",
                                          "Retry-On": "abc", "Decompress": "maybe"})
    assert {tuple(e["path"]) for e in error(bad)["errors"]} == {("retries",), ("retry-on",), ("decompress",)}


def test_deleted_connection_and_unknown_integration(api):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    assert api.delete(f"/connections/{connection_id}", params={"provider_config_key": key}).status_code == 200
    response = proxied(api, "GET", "/user", key, connection_id)
    assert response.status_code == 400
    assert error(response) == {"code": "server_error", "message": "Failed to get connection"}
    response = proxied(api, "GET", "/user", "no-such-integration", connection_id)
    assert response.status_code == 404 and error(response)["code"] == "unknown_provider_config"


def test_base_url_override_is_refused_by_default(api, oauth, sentinel):
    response = proxied(api, "GET", "/user", *oauth, headers={"Base-Url-Override": sentinel.url})
    assert response.status_code == 400
    assert error(response) == {"code": "base_url_override_not_allowed",
                               "message": "This base URL override is not allowed by server configuration."}
    assert sentinel.connections == 0


@pytest.mark.parametrize("endpoint", ["//127.0.0.9/x", "/http://127.0.0.9/x", "/https:/127.0.0.9", "/@127.0.0.9/x",
                                      "/a%5c..%5cb", "/a/%2e%2e/b", "/a/%252e%252e/b", "/a/..%2fb", "/a%0d%0aX: 1"])
def test_path_tricks_are_refused(api, oauth, upstream, sentinel, endpoint):
    before = len(upstream.received)
    response = proxied(api, "GET", endpoint, *oauth)
    assert response.status_code in (400, 404), response.text
    assert "error" in response.json()
    assert len(upstream.received) == before and sentinel.connections == 0


def test_a_provider_aimed_at_a_non_allowed_address_is_refused(api, sentinel):
    connection = connect(api, "sentinel", {"type": "API_KEY", "apiKey": "never-sent"})
    response = proxied(api, "GET", "/x", *connection)
    assert response.status_code == 400
    assert error(response)["code"] == "base_url_override_not_allowed"
    assert sentinel.connections == 0 and sentinel.received == []


def test_egress_ips_route(api, system):
    response = api.get("/egress-ips")
    assert response.status_code == 200 and response.json() == {"data": {"ips": []}}
    assert gateway(system, key=None).get("/egress-ips").status_code == 401


def test_redirects_are_passed_back_unless_asked_and_rechecked_when_followed(api, oauth, upstream, sentinel):
    to_sentinel = f"/redirect?to={sentinel.url}/steal"
    response = proxied(api, "GET", to_sentinel, *oauth, allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == f"{sentinel.url}/steal"
    followed = proxied(api, "GET", to_sentinel, *oauth, headers={"Forward-Headers-On-Redirect": "true"})
    assert followed.status_code == 400 and error(followed)["code"] == "base_url_override_not_allowed"
    assert sentinel.connections == 0
    same_origin = echo(proxied(api, "GET", "/redirect?to=/landed", *oauth,
                               headers={"Forward-Headers-On-Redirect": "false"}))
    assert same_origin["target"] == "/landed"
    assert same_origin["headers"]["authorization"] == "Bearer tok-oauth-secret"
