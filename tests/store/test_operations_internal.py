"""The store's `POST /internal/operations` (batches of proxied calls' records) and the admin CLI
that reads records back, on the real store over both backends."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from common.identity import INTERNAL_KEY_HEADER
from tests.store import admin
from tests.support.databases import raw_rows

COLUMNS = ("kind, provider_config_key, connection_id, method, path, status, outcome, attempts, egress_address, "
           "bytes, duration_ms, success, error_code")


def post(system, payload, key: str | None = None) -> requests.Response:
    return requests.post(system.service_url("store") + "/internal/operations", json=payload, timeout=10,
                         headers={INTERNAL_KEY_HEADER: key or system.env["INTERNAL_API_KEY"]})


def environment_ids(system) -> dict[str, int]:
    return {name: env_id for env_id, name in raw_rows(system.database_url, "SELECT id, name FROM environments")}


def record(env_id: int, connection_id: str, **overrides) -> dict:
    return {"environment_id": env_id, "provider_config_key": "github", "connection_id": connection_id,
            "method": "GET", "path": "/user/repos", "status": 200, "outcome": "ok", "attempts": 1,
            "egress_address": "127.0.0.2", "bytes": 512, "duration_ms": 12.34, "at": time.time(), **overrides}


def rows(system, connection_id: str) -> list[tuple]:
    return raw_rows(system.database_url,
                    f"SELECT {COLUMNS} FROM operations WHERE connection_id = '{connection_id}' ORDER BY id")


def test_a_batch_is_stored_whole(system):
    dev = environment_ids(system)["dev"]
    conn = f"conn-{uuid.uuid4().hex[:8]}"
    batch = [record(dev, conn),
             record(dev, conn, method="POST", path="/issues", status=503, attempts=3, bytes=0),
             record(dev, conn, status=400, outcome="outbound_refused: 127.0.0.9 resolves to a loopback address",
                    egress_address=None, attempts=1, bytes=0)]
    response = post(system, {"operations": batch})
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 3}
    assert rows(system, conn) == [
        ("proxy", "github", conn, "GET", "/user/repos", 200, "ok", 1, "127.0.0.2", 512, 12.3, True, None),
        ("proxy", "github", conn, "POST", "/issues", 503, "ok", 3, "127.0.0.2", 0, 12.3, False, None),
        ("proxy", "github", conn, "GET", "/user/repos", 400,
         "outbound_refused: 127.0.0.9 resolves to a loopback address", 1, None, 0, 12.3, False, "outbound_refused"),
    ]


@pytest.mark.parametrize("bad", [
    {"path": "/user?token=secret"},  # a query never belongs in a record
    {"body": "a request body"},  # nor a field the schema does not know
    {"status": "200"},  # nothing is coerced
    {"attempts": -1},
    {"method": "get"},
    {"provider_config_key": "x" * 256},
    {"environment_id": 987_654},  # no such environment
])
def test_a_batch_with_one_bad_record_is_refused_and_nothing_of_it_is_written(system, bad):
    dev = environment_ids(system)["dev"]
    conn = f"conn-{uuid.uuid4().hex[:8]}"
    response = post(system, {"operations": [record(dev, conn), record(dev, conn, **bad)]})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["code"] == "invalid_body"
    assert rows(system, conn) == []


@pytest.mark.parametrize("payload", [{"operations": []}, {}, [], {"operations": "x"}])
def test_malformed_batches_are_refused(system, payload):
    response = post(system, payload)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_body"


def test_a_batch_over_the_limit_is_refused(system):
    dev = environment_ids(system)["dev"]
    conn = f"conn-{uuid.uuid4().hex[:8]}"
    response = post(system, {"operations": [record(dev, conn)] * 1001})
    assert response.status_code == 400
    assert rows(system, conn) == []


def test_only_sibling_services_may_record(system):
    dev = environment_ids(system)["dev"]
    conn = f"conn-{uuid.uuid4().hex[:8]}"
    response = post(system, {"operations": [record(dev, conn)]}, key="not-the-internal-key")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    through_gateway = system.session().post(system.url + "/internal/operations",
                                            json={"operations": [record(dev, conn)]})
    assert through_gateway.status_code == 404
    assert rows(system, conn) == []


def test_the_admin_cli_lists_recent_records_newest_first(system):
    envs = environment_ids(system)
    conn = f"conn-{uuid.uuid4().hex[:8]}"
    now = time.time()
    batch = [record(envs["prod"], conn, path=f"/items/{i}", at=now + i) for i in range(3)]
    assert post(system, {"operations": batch}).status_code == 200
    assert post(system, {"operations": [record(envs["dev"], conn, path="/dev-only")]}).status_code == 200
    done = admin(system.env, "operations", "list", "--environment", "prod", "--limit", "2")
    assert done.returncode == 0, done.stderr
    listed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [item["path"] for item in listed] == ["/items/2", "/items/1"]
    assert {item["environment"] for item in listed} == {"prod"}
    assert listed[0]["created_at"].endswith("Z") and listed[0]["kind"] == "proxy"
    assert listed[0]["status"] == 200 and listed[0]["egress_address"] == "127.0.0.2"
    everywhere = admin(system.env, "operations", "list", "--limit", "1")
    assert [json.loads(line)["path"] for line in everywhere.stdout.splitlines()] == ["/dev-only"]
    refused = admin(system.env, "operations", "list", "--limit", "0")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
