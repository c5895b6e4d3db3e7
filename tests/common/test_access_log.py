"""Readable operation (#17 item 4): one access line per request in every process it crosses, at
the default `info` level (method, path without the query, status, duration, request id), and
never a secret: a canary sent in query strings and in Authorization headers appears in no log."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.support.system import catalogue_system
from tests.support.upstream import Upstream

CANARY = "canary-5ec7e7-do-not-log"
LINE = re.compile(r"access (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+)ms request_id=(?P<id>\S+)$")


@pytest.fixture(scope="module")
def upstream():
    with Upstream() as server:
        yield server


@pytest.fixture(scope="module")
def system(tmp_path_factory, upstream):
    catalogue = {"my-api": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream.url,
                                                             "headers": {"authorization": "Bearer ${apiKey}"}}}}
    with catalogue_system(tmp_path_factory.mktemp("access-log"), "sqlite", catalogue, LOG_LEVEL="info") as running:
        yield running


def access_lines(system, name: str) -> list[dict]:
    text = (system.log_dir / f"{name}.log").read_text(errors="replace")
    return [m.groupdict() for m in map(LINE.search, text.splitlines()) if m]


def wait_for_line(system, name: str, request_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in access_lines(system, name) if line["id"] == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no access line for {request_id} in {name}:\n{system.logs()}")


def test_one_line_per_request_in_each_process_it_crosses_with_the_callers_request_id(system, upstream):
    http = system.session()
    assert http.post(f"{system.url}/integrations", json={"provider": "my-api", "unique_key": "mine"}).status_code \
        == 200
    imported = http.post(f"{system.url}/connections", json={
        "provider_config_key": "mine", "connection_id": "c1",
        "credentials": {"type": "API_KEY", "apiKey": f"stored-{CANARY}"}})
    assert imported.status_code in (200, 201), imported.text

    listed = http.get(f"{system.url}/connections", params={"search": CANARY},
                      headers={"X-Request-Id": "trace-1"})
    assert listed.status_code == 200 and listed.headers["X-Request-Id"] == "trace-1"
    line = wait_for_line(system, "gateway", "trace-1")
    assert (line["method"], line["path"], line["status"]) == ("GET", "/connections", "200")
    assert wait_for_line(system, "store", "trace-1")["path"] == "/connections"  # the id travels on

    proxied = http.get(f"{system.url}/proxy/items", params={"api_key": CANARY},
                       headers={"Connection-Id": "c1", "Provider-Config-Key": "mine", "X-Request-Id": "trace-2"})
    assert proxied.status_code == 200, proxied.text
    assert upstream.last().header("authorization") == f"Bearer stored-{CANARY}"
    assert wait_for_line(system, "gateway", "trace-2")["path"] == "/proxy/items"
    assert wait_for_line(system, "proxy", "trace-2")["status"] == "200"

    # Without a usable id of the caller's, one is made, answered, and logged.
    answer = requests.get(f"{system.url}/integrations", headers={"X-Request-Id": "has spaces; and=more"})
    assert answer.status_code == 401
    made = answer.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert wait_for_line(system, "gateway", made)["status"] == "401"


def test_a_secret_in_a_query_string_or_an_authorization_header_is_never_logged(system):
    base = system.url
    requests.get(f"{base}/connections", headers={"Authorization": f"Bearer {CANARY}"})
    requests.get(f"{base}/connections", auth=(CANARY, ""))
    requests.get(f"{base}/connections", params={"connection_id": CANARY, "secret_key": CANARY})
    requests.get(f"{base}/connect/session", params={"session_token": f"nango_connect_session_{CANARY}"})
    requests.get(f"{base}/oauth/callback", params={"code": CANARY, "state": CANARY})
    system.session().get(f"{base}/connections/c1", params={"provider_config_key": "mine", "token": CANARY})
    marker = "trace-last"
    system.session().get(f"{base}/integrations", headers={"X-Request-Id": marker})
    wait_for_line(system, "gateway", marker)
    time.sleep(1.5)  # the store's batched records and any late line
    logs = "".join((system.log_dir / f"{name}.log").read_text(errors="replace")
                   for name in ("gateway", "store", "auth", "proxy"))
    assert len([line for line in logs.splitlines() if LINE.search(line)]) >= 8
    assert CANARY not in logs
    assert system.dev_key not in logs and system.env["INTERNAL_API_KEY"] not in logs


@pytest.mark.parametrize("level, log_sql", [("debug", "false"), ("info", "true")])
def test_sql_is_logged_only_with_log_sql_and_debug_leaks_no_secret(tmp_path, level, log_sql):
    catalogue = {"my-api": {"auth_mode": "API_KEY", "proxy": {"base_url": "http://127.0.0.1:9"}}}
    with catalogue_system(tmp_path, "sqlite", catalogue, LOG_LEVEL=level, LOG_SQL=log_sql) as running:
        requests.get(f"{running.url}/connections", params={"secret_key": CANARY},
                     headers={"Authorization": f"Bearer {CANARY}"})
        running.session().get(f"{running.url}/connections", params={"search": CANARY})
        time.sleep(1.5)
    store = (running.log_dir / "store.log").read_text(errors="replace")
    assert ("SELECT" in store) == (log_sql == "true")
    if log_sql == "false":
        secrets = (CANARY, running.dev_key, running.env["INTERNAL_API_KEY"], running.env["NANGO_ENCRYPTION_KEY"])
        for path in running.log_dir.glob("*.log"):
            text = path.read_text(errors="replace")
            assert [s for s in secrets if s in text] == [], path.name
