"""Inputs that once reached further than the gateway checked (the hardening issue, items 3, 4, 7):
a percent-encoded `?` or `#` in a path, numbers that are not JSON, and ids the API could write but
never read back. Each class is tried over every route it applies to, on both backends."""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, urlparse

import pytest
import requests

from tests.api.builders import gateway, make_connection, make_integration, unique
from tests.auth.test_capture import public_key_of
from tests.support.databases import raw_rows


def strict_json(text: str):
    """Parse as a JavaScript client would have to: `Infinity` and `NaN` are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def send_raw(system, method: str, target: str, body: bytes | None = None, key: str | None = None) -> tuple[int, str]:
    """Send the request line exactly as given (no client re-encoding); `key` as Provider-Config-Key."""
    url = urlparse(system.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {system.dev_key}"}
    if key:
        headers["Provider-Config-Key"] = key
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, target, body=body, headers=headers)
    answer = conn.getresponse()
    text = answer.read().decode()
    conn.close()
    return answer.status, text


# --- item 3: the service acts on the path and query the gateway authorised -------------------

SMUGGLED = ["%3F", "%23", "%3f"]


@pytest.mark.parametrize("char", SMUGGLED)
@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/connections/{id}{c}provider_config_key%3D{key}"),
    ("DELETE", "/connections/{id}{c}provider_config_key%3D{key}"),
    ("DELETE", "/connection/{id}{c}provider_config_key%3D{key}"),
    ("PATCH", "/connections/{id}{c}provider_config_key%3D{key}"),
    ("POST", "/connection/{id}{c}provider_config_key%3D{key}/metadata"),
])
def test_an_encoded_query_or_fragment_stays_part_of_the_id(system, method, template, char):
    api = gateway(system)
    key = make_integration(api)["unique_key"]
    conn = make_connection(api, key, metadata={"kept": True})
    before = api.get(f"/connections/{conn['connection_id']}", params={"provider_config_key": key}).json()
    body = json.dumps({"metadata": {"overwritten": True}} if method != "PATCH" else {"tags": {"x": "y"}}).encode()
    status, text = send_raw(system, method, template.format(id=conn["connection_id"], c=char, key=key),
                            body if method in ("PATCH", "POST") else None, key=key)
    assert status in (400, 404), text
    assert "credentials" not in text and before["credentials"]["access_token"] not in text
    after = api.get(f"/connections/{conn['connection_id']}", params={"provider_config_key": key})
    assert after.status_code == 200
    assert {**after.json(), "last_fetched_at": None} == {**before, "last_fetched_at": None}


@pytest.mark.parametrize("char", SMUGGLED)
def test_an_integration_path_cannot_ask_for_its_credentials(system, char):
    api = gateway(system)
    integration = make_integration(api)
    key = integration["unique_key"]
    status, text = send_raw(system, "GET", f"/integrations/{key}{char}include%3Dcredentials")
    assert status in (400, 404), text
    assert "fake-client-secret" not in text
    status, text = send_raw(system, "DELETE", f"/integrations/{key}{char}x")
    assert status in (400, 404), text
    assert api.get(f"/integrations/{key}").status_code == 200


def test_encoded_slashes_and_punctuation_reach_the_same_connection(system):
    api = gateway(system)
    key = make_integration(api)["unique_key"]
    for connection_id in ("team/42", "a b", "{x}|[y]", "o'k\"q", "back\\slash", "a.b", "x=y;z:w,@~+$"):
        make_connection(api, key, connection_id=connection_id)
        path = "/connections/" + quote(connection_id, safe="")
        status, text = send_raw(system, "GET", f"{path}?provider_config_key={key}")
        assert status == 200, (connection_id, text)
        assert strict_json(text)["connection_id"] == connection_id


# --- item 4: numbers that are not JSON are refused wherever JSON is accepted ----------------

NOT_FINITE = ["1e999", "-1e999", "1E400", "[1, 2e308]"]


def json_routes(key: str, connection_id: str, value: str) -> list[tuple[str, str, str]]:
    return [
        ("POST", "/connections", f'{{"provider_config_key":"{key}","connection_id":"{unique("c")}",'
                                 f'"credentials":{{"type":"API_KEY","apiKey":"k"}},"metadata":{{"n":{value}}}}}'),
        ("POST", "/connections", f'{{"provider_config_key":"{key}","connection_id":"{unique("c")}",'
                                 f'"credentials":{{"type":"API_KEY","apiKey":"k"}},'
                                 f'"connection_config":{{"n":{value}}}}}'),
        ("POST", "/connections/metadata", f'{{"connection_id":"{connection_id}","provider_config_key":"{key}",'
                                          f'"metadata":{{"deep":{{"n":{value}}}}}}}'),
        ("PATCH", "/connections/metadata", f'{{"connection_id":"{connection_id}","provider_config_key":"{key}",'
                                           f'"metadata":{{"n":{value}}}}}'),
        ("POST", f"/connection/{connection_id}/metadata", f'{{"n":{value}}}'),
        ("PATCH", f"/connections/{connection_id}?provider_config_key={key}", f'{{"metadata":{{"n":{value}}}}}'),
        ("POST", "/integrations", f'{{"unique_key":"{unique("i")}","provider":"github","custom":{{"n":{value}}}}}'),
        ("POST", "/connect/sessions", f'{{"end_user":{{"id":"u"}},"organization":{{"id":"o"}},"n":{value}}}'),
        ("PATCH", f"/integrations/{key}", f'{{"custom":{{"n":{value}}}}}'),
    ]


@pytest.mark.parametrize("value", NOT_FINITE)
def test_non_finite_numbers_are_refused_and_listings_stay_json(system, value):
    api = gateway(system)
    key = make_integration(api)["unique_key"]
    conn = make_connection(api, key)
    before = raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id")
    for method, path, text in json_routes(key, conn["connection_id"], value):
        status, answer = send_raw(system, method, path, text.encode(), key=key)
        assert status == 400, (method, path, answer)
        assert strict_json(answer)["error"]["code"] in ("invalid_body", "invalid_json")
    assert raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id") == before
    listing = api.get("/connections")
    assert listing.status_code == 200 and strict_json(listing.text)["connections"]


def test_a_provider_answer_with_an_overflowing_number_is_read_as_null():
    from common.validation import loads_finite

    assert loads_finite('{"a": 1e999, "b": [NaN, -Infinity, 2.5], "c": 3}') == {"a": None, "b": [None, None, 2.5],
                                                                                 "c": 3}


# --- item 7: one id grammar, enforced where ids enter -------------------------------------

UNREACHABLE = ["a/../../b", "..", ".", "./a", "a/.", "a/..", "/a", "a/", "a//b"]


@pytest.mark.parametrize("bad", UNREACHABLE)
def test_ids_that_no_route_could_reach_are_refused_where_they_enter(system, bad):
    api = gateway(system)
    key = make_integration(api)["unique_key"]
    before = raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id")
    imported = api.post("/connections", json={"provider_config_key": key, "connection_id": bad,
                                              "credentials": {"type": "API_KEY", "apiKey": "k"}})
    assert imported.status_code == 400 and imported.json()["error"]["code"] == "invalid_body", imported.text
    assert raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id") == before
    metadata = api.post("/connections/metadata", json={"connection_id": bad, "provider_config_key": key,
                                                       "metadata": {"a": 1}})
    assert metadata.status_code == 400
    flow = requests.post(f"{system.url}/api-auth/api-key/{key}", json={"apiKey": "k"},
                         params={"public_key": public_key_of(system), "connection_id": bad}, timeout=30)
    assert flow.status_code == 400 and flow.json()["error"]["code"] == "invalid_query_params", flow.text
    reconnect = api.post("/connect/sessions/reconnect", json={"connection_id": bad, "integration_id": key,
                                                              "end_user": {"id": "u"}})
    assert reconnect.status_code == 400, reconnect.text
    if "/" not in bad:
        integration = api.post("/integrations", json={"unique_key": bad, "provider": "github"})
        assert integration.status_code == 400, integration.text
    assert raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id") == before


def test_every_id_route_reaches_an_id_the_api_accepted(system):
    api = gateway(system)
    key = make_integration(api)["unique_key"]
    for connection_id in ("x/y/z", "dots.in.id", "...", "a/.../b", "~:@"):
        make_connection(api, key, connection_id=connection_id)
        path = "/connections/" + quote(connection_id, safe="")
        assert api.get(path, params={"provider_config_key": key}).status_code == 200, connection_id
        assert api.patch(path, params={"provider_config_key": key}, json={"tags": {"k": "v"}}).status_code == 200
        legacy = "/connection/" + quote(connection_id, safe="") + "/metadata"
        assert api.post(legacy, headers={"Provider-Config-Key": key}, json={"m": 1}).status_code in (200, 201)
        assert api.delete(path, params={"provider_config_key": key}).status_code in (200, 204)
        assert api.get(path, params={"provider_config_key": key}).status_code == 404
