"""Building the upstream request from a connection and a call (pure functions, no servers)."""

from __future__ import annotations

import pytest

from common.errors import ApiError
from services.proxy import contract, injection


def call(endpoint: str = "/x", query: str = "", **headers) -> contract.ProxyCall:
    sent = {"Connection-Id": "c", "Provider-Config-Key": "k", **headers}
    return contract.parse(sent, endpoint, query, max_retries=10)


def connection(mode: str = "OAUTH2", proxy: dict | None = None, credentials: dict | None = None, **config) -> dict:
    return {"provider": "p", "auth_mode": mode, "connection_config": config,
            "credentials": credentials or {"access_token": "at"},
            "proxy": proxy or {"base_url": "https://api.example.com/v2"}}


def build(conn: dict, proxy_call: contract.ProxyCall, fields: dict | None = None) -> injection.Outbound:
    return injection.build(conn, proxy_call, provider_fields=fields or {}, override_enabled=False)


def test_url_keeps_the_base_path_and_the_raw_query():
    out = build(connection(), call("/items/a%2Fb", "q=a%20b&x=1"))
    assert out.url == "https://api.example.com/v2/items/a%2Fb?q=a%20b&x=1"
    assert out.headers["authorization"] == "Bearer at" and out.protected_headers == {"authorization"}


def test_alternatives_and_field_checks_in_base_urls():
    proxy = {"base_url": "https://${connectionConfig.sub}.example.com || https://default.example.com"}
    assert build(connection(proxy=proxy, sub="acme"), call()).url == "https://acme.example.com/x"
    assert build(connection(proxy=proxy), call()).url == "https://default.example.com/x"
    assert build(connection(proxy=proxy, sub="evil.test/"), call()).url == "https://default.example.com/x"
    fields = {"sub": {"enum": ["eu", "us"]}}
    assert build(connection(proxy=proxy, sub="mars"), call(), fields).url == "https://default.example.com/x"


def test_query_templates_replace_the_callers_parameter():
    conn = connection("API_KEY", {"base_url": "https://a.example.com", "query": {"api_key": "${apiKey}"}},
                      {"apiKey": "s e/cret"})
    out = build(conn, call("/s", "API_KEY=mine&term=x"))
    assert out.url == "https://a.example.com/s?term=x&api_key=s%20e%2Fcret"
    assert out.protected_query == {"api_key"}


def test_credential_headers_cannot_come_from_the_caller_but_others_can_be_overridden():
    conn = connection("API_KEY", {"base_url": "https://a.example.com",
                                  "headers": {"x-api-key": "${apiKey}", "accept": "application/xml"}},
                      {"apiKey": "k"})
    out = build(conn, call(**{"Nango-Proxy-Accept": "application/json"}))
    assert out.headers["accept"] == "application/json" and out.headers["x-api-key"] == "k"
    with pytest.raises(ApiError) as refused:
        build(conn, call(**{"Nango-Proxy-X-Api-Key": "mine"}))
    assert refused.value.code == "invalid_headers"


@pytest.mark.parametrize("endpoint", ["//evil.test", "/https://evil.test", "/@evil.test", "/a\\b", "/a/../b",
                                      "/a/%2E%2E/b", "/a/%252e%252e", "/a%00", "/a b"])
def test_endpoints_that_could_leave_the_base_url_are_refused(endpoint):
    with pytest.raises(ApiError) as refused:
        call(endpoint)
    assert refused.value.code == "invalid_proxy_path"


@pytest.mark.parametrize("mode", ["AWS_SIGV4"])
def test_signed_modes_without_what_signing_needs_are_refused_rather_than_sent_unsigned(mode):
    with pytest.raises(ApiError) as refused:
        build(connection(mode, credentials={"token": "t"}), call())
    assert refused.value.code == "invalid_credentials"


def test_oauth1_without_what_signing_needs_is_refused_rather_than_sent_unsigned():
    with pytest.raises(ApiError) as refused:
        build(connection("OAUTH1", credentials={"oauth_token": "t", "oauth_token_secret": "s"}), call())
    assert refused.value.code == "missing_client_credentials"
