"""Request ids across processes and LOG_FORMAT=json (issue 15 item 3): the id of one proxied call
is in the gateway's, the proxy's and the store's log lines and in the call's operation record;
with LOG_FORMAT=json every line of every process is one JSON object; neither format logs a secret."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.support.databases import raw_rows
from tests.support.system import catalogue_system
from tests.support.upstream import Upstream

CANARY = "canary-0a11ce-json-never"
PROCESSES = ("gateway", "store", "auth", "proxy")


@pytest.fixture(scope="module")
def upstream():
    with Upstream() as server:
        yield server


@pytest.fixture(scope="module")
def system(tmp_path_factory, upstream):
    catalogue = {"my-api": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream.url,
                                                             "headers": {"authorization": "Bearer ${apiKey}"}}}}
    with catalogue_system(tmp_path_factory.mktemp("json-logs"), "sqlite", catalogue, LOG_LEVEL="info",
                          LOG_FORMAT="json") as running:
        yield running


def lines(system, name: str) -> list[dict]:
    text = (system.log_dir / f"{name}.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def with_id(system, name: str, request_id: str, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in lines(system, name) if line.get("request_id") == request_id]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no line with request_id {request_id} in {name}:\n{system.logs()}")


def test_one_proxied_calls_id_is_in_every_process_it_crossed_and_in_its_record(system, upstream):
    http = system.session()
    assert http.post(f"{system.url}/integrations", json={"provider": "my-api", "unique_key": "mine"}).ok
    assert http.post(f"{system.url}/connections", json={"provider_config_key": "mine", "connection_id": "c1",
                                                        "credentials": {"type": "API_KEY", "apiKey": "k1"}}).ok
    answer = http.get(f"{system.url}/proxy/items", headers={"Connection-Id": "c1", "Provider-Config-Key": "mine",
                                                             "X-Request-Id": "trace-json-1"})
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "trace-json-1"
    for name in ("gateway", "proxy"):
        [access] = [line for line in with_id(system, name, "trace-json-1") if line.get("type") == "access"]
        assert access["path"] == "/proxy/items" and access["status"] == 200 and access["method"] == "GET"
    # The proxy had no cached credentials for c1: it asked the store, and said on whose behalf.
    store = with_id(system, "store", "trace-json-1")
    assert any(line.get("type") == "access" for line in store)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = raw_rows(system.database_url, "SELECT request_id FROM operations WHERE kind = 'proxy' "
                                             "AND connection_id = 'c1'")
        if rows:
            break
        time.sleep(0.2)
    assert rows == [("trace-json-1",)]


def test_every_line_is_one_json_object_and_no_secret_is_in_any(system):
    base = system.url
    requests.get(f"{base}/connections", headers={"Authorization": f"Bearer {CANARY}"})
    requests.get(f"{base}/connections", params={"secret_key": CANARY})
    requests.get(f"{base}/oauth/callback", params={"code": CANARY, "state": CANARY})
    system.session().get(f"{base}/integrations", headers={"X-Request-Id": "trace-json-last"})
    with_id(system, "gateway", "trace-json-last")
    time.sleep(1.0)
    for name in PROCESSES:
        parsed = lines(system, name)  # raises on a line that is not JSON
        assert parsed and all({"time", "process", "level", "request_id"} <= set(line) for line in parsed), name
        assert {line["process"] for line in parsed} == {name}
    text = "".join((system.log_dir / f"{name}.log").read_text() for name in PROCESSES)
    assert CANARY not in text and system.dev_key not in text and system.env["INTERNAL_API_KEY"] not in text
