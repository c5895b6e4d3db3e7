"""The helpers of the catalogue's `proxy.headers` / `proxy.query` templates, `${base64(…)}` and
`${now}`, through `injection.build` (pure functions, no servers)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import ApiError
from services.proxy import contract, injection


def call(endpoint: str = "/x", query: str = "", **headers) -> contract.ProxyCall:
    sent = {"Connection-Id": "c", "Provider-Config-Key": "k", **headers}
    return contract.parse(sent, endpoint, query, max_retries=10)


def build(mode: str, credentials: dict, headers: dict | None = None, query: dict | None = None,
          proxy_call: contract.ProxyCall | None = None, **config) -> injection.Outbound:
    proxy = {"base_url": "https://api.example.com", "headers": headers or {}, "query": query or {}}
    connection = {"provider": "p", "auth_mode": mode, "credentials": credentials, "connection_config": config,
                  "proxy": proxy}
    return injection.build(connection, proxy_call or call(), provider_fields={}, override_enabled=False)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_base64_of_nested_credentials():
    template = "Basic ${base64(${credentials.username}:${credentials.password})}"
    out = build("BASIC", {"username": "ann", "password": "p:ss wörd"}, {"authorization": template})
    assert out.headers["authorization"] == "Basic " + b64("ann:p:ss wörd")
    assert "authorization" in out.protected_headers


def test_base64_of_an_api_key_with_a_literal_suffix():
    out = build("API_KEY", {"apiKey": "sk_live_1"}, {"authorization": "Basic ${base64(${apiKey}:)}"})
    assert out.headers["authorization"] == "Basic " + b64("sk_live_1:")
    assert base64.b64decode(out.headers["authorization"].split()[1]) == b"sk_live_1:"
    assert "authorization" in out.protected_headers


def test_base64_of_connection_config_and_plain_text():
    out = build("API_KEY", {"apiKey": "k"}, {"x-account": "${base64(acct-${connectionConfig.account})}",
                                              "x-fixed": "${ base64(hello) }"}, account="42")
    assert out.headers["x-account"] == b64("acct-42") and out.headers["x-fixed"] == b64("hello")


def test_a_value_placed_by_base64_is_not_expanded_again():
    out = build("API_KEY", {"apiKey": "${now}}"}, {"x-key": "${base64(${apiKey})}", "x-raw": "${apiKey}"})
    assert base64.b64decode(out.headers["x-key"]) == b"${now}}" and out.headers["x-raw"] == "${now}}"


def test_a_missing_nested_value_drops_the_header_like_any_missing_value():
    template = "Basic ${base64(${credentials.username}:${credentials.password})}"
    out = build("API_KEY", {"apiKey": "k", "username": "ann"},
                {"authorization": template, "x-tenant": "${connectionConfig.tenant}", "x-key": "${apiKey}"})
    assert "authorization" not in out.headers and "x-tenant" not in out.headers
    assert out.headers["x-key"] == "k"


def test_a_missing_nested_value_drops_the_query_parameter():
    out = build("API_KEY", {"apiKey": "k"}, query={"sig": "${base64(${connectionConfig.secret})}", "key": "${apiKey}"})
    assert out.url == "https://api.example.com/x?key=k"


def test_base64_in_a_query_template_is_percent_encoded():
    out = build("API_KEY", {"apiKey": "k?"}, query={"auth": "${base64(${apiKey}:x)}"})
    assert out.url == "https://api.example.com/x?auth=" + b64("k?:x").replace("=", "%3D").replace("/", "%2F")


def test_now_is_the_current_time_in_iso_8601_utc():
    before = datetime.now(UTC)
    out = build("API_KEY", {"apiKey": "k"}, {"x-date": "${now}", "x-key": "${apiKey}"}, query={"at": "${now}"})
    stamp = out.headers["x-date"]
    assert stamp.endswith("Z") and len(stamp) == len("2024-01-02T03:04:05.678Z")
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert "x-date" not in out.protected_headers and "x-key" in out.protected_headers
    assert "at=" in out.url


def test_unknown_names_and_helpers_are_missing_values():
    out = build("API_KEY", {"apiKey": "k"}, {"x-a": "${sha256(${apiKey})}", "x-b": "${later}", "x-c": "${apiKey}"})
    assert set(out.headers) >= {"x-c"} and "x-a" not in out.headers and "x-b" not in out.headers


def test_unclosed_and_empty_placeholders_stay_plain_text():
    out = build("API_KEY", {"apiKey": "k"}, {"x-a": "${base64(${apiKey})", "x-b": "a${}b"})
    assert out.headers["x-a"] == "${base64(${apiKey})" and out.headers["x-b"] == "a${}b"


def test_the_caller_cannot_replace_a_header_built_with_base64():
    with pytest.raises(ApiError) as refused:
        build("API_KEY", {"apiKey": "k"}, {"authorization": "Basic ${base64(${apiKey}:)}"},
              proxy_call=call(**{"Nango-Proxy-Authorization": "Basic bWluZQ=="}))
    assert refused.value.code == "invalid_headers"


@pytest.mark.parametrize("mode", ["AWS_SIGV4"])
def test_signed_modes_without_their_keys_are_refused(mode):
    with pytest.raises(ApiError) as refused:
        build(mode, {"token": "t"})
    assert refused.value.code == "invalid_credentials" and refused.value.status == 400
