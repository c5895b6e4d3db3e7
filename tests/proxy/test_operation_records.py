"""Every proxied call leaves one row in the store's `operations` table (services/proxy/records.py
sends them in batches, asynchronously): method, path without the query, status, attempts, egress
address, duration; never the credential, a query secret or a body. The store being away for a
moment costs no proxied call and, when it comes back in time, no record."""

from __future__ import annotations

import base64
import json
import secrets
import signal
import time
import uuid

import pytest
import redis
import yaml

from common.identity import Identity
from common.internal import StoreClient
from services.proxy.calls import Record
from services.proxy.contract import ProxyCall
from services.proxy.records import MAX_BODY, Recorder, encode, parts
from tests.proxy.builders import OAUTH2, connect, echo, error, gateway, proxied
from tests.proxy.conftest import SOURCE_IPS, catalogue
from tests.store import raw_text
from tests.support.databases import REDIS_URL, drop_redis_prefix, raw_rows, unavailable
from tests.support.system import free_port, make_system

COLUMNS = ("method", "path", "status", "attempts", "egress_address", "duration_ms", "outcome", "bytes", "success",
           "error_code", "kind", "actor")


def records(database_url: str, connection_id: str, count: int, timeout: float = 15.0) -> list[dict]:
    """The connection's proxy rows once `count` are there (the proxy flushes about every second); its
    other records (created, read) are the logs tests' business."""
    deadline = time.monotonic() + timeout
    while True:
        found = raw_rows(database_url, f"SELECT {', '.join(COLUMNS)} FROM operations "
                                       f"WHERE connection_id = '{connection_id}' AND kind = 'proxy' ORDER BY id")
        if len(found) >= count or time.monotonic() > deadline:
            return [dict(zip(COLUMNS, row, strict=True)) for row in found]
        time.sleep(0.1)


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def test_each_call_is_one_row_with_what_happened(api, system):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    sent = [("GET", "/repos/1"), ("POST", "/issues"), ("DELETE", "/repos/1/labels/x%2Fy"), ("GET", "/user")]
    sizes = []
    for method, endpoint in sent:
        response = proxied(api, method, endpoint + "?page=2&per_page=5", key, connection_id, data=b"{}")
        assert echo(response)["target"].endswith("?page=2&per_page=5")
        sizes.append(len(response.content))
    rows = records(system.database_url, connection_id, len(sent))
    assert [(r["method"], r["path"]) for r in rows] == sent
    for row, size in zip(rows, sizes, strict=True):
        assert row["kind"] == "proxy" and row["status"] == 200 and row["outcome"] == "ok" and row["success"]
        assert row["actor"] == "key:default"  # the secret key that made the call, by name
        assert row["attempts"] == 1 and row["egress_address"] in SOURCE_IPS and row["error_code"] is None
        assert row["bytes"] == size and 0 < row["duration_ms"] < 5000


def test_a_call_whose_answer_has_no_body_is_recorded_too(api, system):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    assert proxied(api, "HEAD", "/user", key, connection_id).status_code == 200
    [row] = records(system.database_url, connection_id, 1, timeout=3)
    assert (row["method"], row["path"], row["status"]) == ("HEAD", "/user", 200)


def test_a_retried_call_shows_its_attempts(api, system, upstream):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    path = f"/status/503?times=1&n={uuid.uuid4().hex}"
    response = proxied(api, "GET", path, key, connection_id, headers={"Retries": "2"})
    assert response.status_code == 200
    assert len([r for r in upstream.received if r.target == path]) == 2
    failed = proxied(api, "GET", f"/status/429?n={uuid.uuid4().hex}", key, connection_id)
    assert failed.status_code == 429
    first, second = records(system.database_url, connection_id, 2)
    assert (first["path"], first["status"], first["attempts"], first["success"]) == ("/status/503", 200, 2, True)
    assert (second["path"], second["status"], second["attempts"]) == ("/status/429", 429, 1)
    assert not second["success"] and second["outcome"] == "ok"  # the upstream's answer, relayed whole


def test_refused_calls_are_recorded_with_their_status(api, system, sentinel):
    key, connection_id = connect(api, "sentinel", {"type": "API_KEY", "apiKey": "never-sent"})
    ssrf = proxied(api, "GET", "/anything", key, connection_id)
    assert ssrf.status_code == 400 and error(ssrf)["code"] == "base_url_override_not_allowed"
    assert sentinel.connections == 0
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    unknown = proxied(api, "GET", "/anything", key, missing)
    assert unknown.status_code >= 400
    [refused] = records(system.database_url, connection_id, 1)
    assert refused["status"] == 400 and refused["outcome"].startswith("outbound_refused: ")
    assert refused["error_code"] == "outbound_refused" and refused["egress_address"] is None
    assert refused["path"] == "/anything" and not refused["success"]
    [absent] = records(system.database_url, missing, 1)
    assert absent["status"] == unknown.status_code and absent["error_code"] == error(unknown)["code"]


def test_no_row_holds_the_credential_a_query_secret_or_a_body(api, system):
    canary = secrets.token_hex(8)
    credential, query_secret = f"cred-canary-{canary}", f"query-canary-{canary}"
    request_body, response_body = f"request-canary-{canary}".encode(), f"response-canary-{canary}"
    key, connection_id = connect(api, "echo-query", {"type": "API_KEY", "apiKey": credential})
    response = proxied(api, "POST", f"/search?token={query_secret}&q={response_body}", key, connection_id,
                       data=request_body, headers={"Nango-Proxy-X-Note": response_body})
    seen = echo(response)
    assert credential in seen["target"] and query_secret in seen["target"] and seen["body"] == request_body
    assert response_body in response.text and credential in response.text  # the echo holds them all
    [row] = records(system.database_url, connection_id, 1)
    assert row["path"] == "/search" and row["status"] == 200
    stored = raw_text(system.database_url)  # every row of every table, credentials encrypted
    for needle in (canary, base64.b64encode(request_body).decode()):
        assert needle not in stored


@pytest.fixture(scope="module")
def cached(tmp_path_factory, upstream, sentinel):
    """A system whose gateway and proxy serve from memory (Redis) while the store is away."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    tmp_dir = tmp_path_factory.mktemp("records-outage")
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(
        catalogue(upstream.url, sentinel.url, f"http://127.0.0.1:{free_port()}")))
    prefix = f"t-records-{uuid.uuid4().hex}"
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}",
                          PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                          OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix)
    try:
        yield running.start()
    finally:
        running.stop()
        drop_redis_prefix(prefix)


def stop(system, name: str) -> None:
    proc = system.procs.pop(name)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def test_calls_go_on_while_the_store_is_away_and_their_records_follow(cached):
    api = gateway(cached)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "outage-key"})
    assert proxied(api, "GET", "/warm", key, connection_id).status_code == 200  # caches key and credentials
    stop(cached, "store")
    started = time.monotonic()
    during = [proxied(api, "GET", f"/during/{i}", key, connection_id) for i in range(5)]
    assert [r.status_code for r in during] == [200] * 5
    assert time.monotonic() - started < 3  # no call waited on the records
    time.sleep(1.5)  # a flush fails meanwhile
    cached.add_process("store", "services.store", "STORE_PORT", STORE_PORT=cached.env["STORE_PORT"])
    rows = records(cached.database_url, connection_id, 6, timeout=20)
    assert [r["path"] for r in rows] == ["/warm"] + [f"/during/{i}" for i in range(5)]
    assert all(r["status"] == 200 for r in rows)


def test_what_is_queued_is_sent_when_the_proxy_stops(cached):
    api = gateway(cached)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "exit-key"})
    for i in range(3):
        assert proxied(api, "GET", f"/last/{i}", key, connection_id).status_code == 200
    # Stopped within the flush interval, the records are most likely still queued (when the
    # interval happens to end first, they were sent the usual way: the assertion holds either way).
    stop(cached, "proxy")
    assert [r["path"] for r in records(cached.database_url, connection_id, 3)] == [f"/last/{i}" for i in range(3)]


def finished(connection_id: str, path: str, env_id: int = 1) -> Record:
    record = Record(Identity(1, env_id, "dev", "growth", 2000, "secret", 1), ProxyCall(connection_id, "api", path, ""),
                    "GET", status=200, attempts=1, egress="127.0.0.2")
    record.ended = record.started + 0.002
    return record


def test_oversized_values_are_cut_to_what_the_store_takes(system):
    env_id = raw_rows(system.database_url, "SELECT id FROM environments WHERE name = 'dev'")[0][0]
    connection_id = f"long-{uuid.uuid4().hex}" + "c" * 1000
    store = StoreClient(system.service_url("store"), system.env["INTERNAL_API_KEY"])
    assert store.record_operations(encode([finished(connection_id, "/" + "p" * 9000, env_id)])) == 1
    [(stored_id, path)] = raw_rows(system.database_url, "SELECT connection_id, path FROM operations "
                                                        f"WHERE connection_id LIKE '{connection_id[:40]}%'")
    assert stored_id == connection_id[:255] and path == "/" + "p" * 8191


def test_a_batch_of_long_records_is_cut_into_bodies_the_store_accepts():
    payload = encode([finished("c" * 255, "/" + "\u00e9" * 8000) for _ in range(300)])
    cut = parts(payload)
    assert len(cut) > 1 and sum(len(part) for part in cut) == 300
    assert all(len(json.dumps({"operations": part})) <= MAX_BODY for part in cut)
    assert len(parts(encode([finished("conn", "/user") for _ in range(500)]))) == 1


def test_a_full_queue_drops_and_counts_without_blocking():
    recorder = Recorder(StoreClient("http://127.0.0.1:9", "unused"), capacity=3, interval=3600)
    try:
        started = time.monotonic()
        for _ in range(5):
            recorder.add(finished("conn", "/x"))
        assert time.monotonic() - started < 0.1
        assert len(recorder.queue) == 3 and recorder.dropped == 2
    finally:
        recorder.queue.clear()
