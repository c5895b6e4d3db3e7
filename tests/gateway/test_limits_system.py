"""Per-plan limits through real gateway processes: in memory for one process, exact in Redis for
several processes with several workers each, and Redis failing under load."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.support.databases import REDIS_URL
from tests.support.load import fire, wait_for_window
from tests.support.redis_server import RedisServer
from tests.support.system import ROOT, make_system

PLANS = {"free": 200, "starter": 1000, "growth": 2000}


def sqlite_system(tmp_path, **env):
    return make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", **env)


def test_every_authenticated_response_carries_the_headers(tmp_path):
    system = sqlite_system(tmp_path).start()
    try:
        http = system.session()
        wait_for_window(10)
        remaining = []
        for path in ("/integrations", "/connections", "/providers/github", "/environment-variables",
                     "/connections/nope?provider_config_key=nope"):
            response = http.get(system.url + path)
            assert response.headers["X-RateLimit-Limit"] == "200"
            assert int(response.headers["X-RateLimit-Reset"]) > time.time()
            assert response.headers["RateLimit-Policy"] == '"plan";q=200;w=60'
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == len(remaining)
        unauthenticated = requests.get(system.url + "/integrations")
        assert unauthenticated.status_code == 401 and "X-RateLimit-Limit" not in unauthenticated.headers
        assert "X-RateLimit-Limit" not in requests.get(system.url + "/health").headers
    finally:
        system.stop()


@pytest.mark.slow
def test_in_memory_limit_refuses_then_next_window_admits(tmp_path):
    system = sqlite_system(tmp_path).start()
    try:
        wait_for_window(20)
        results = fire([system.url], system.dev_key, 230, threads=8)
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 200 and statuses.count(429) == 30
        refused = next(headers for status, headers in results if status == 429)
        assert int(refused["Retry-After"]) >= 1 and refused["X-RateLimit-Remaining"] == "0"
        body = system.session().get(system.url + "/integrations").json()
        assert body["error"]["code"] == "too_many_request" and body["error"]["message"]
        time.sleep(int(refused["Retry-After"]) + 0.5)
        assert system.session().get(system.url + "/integrations").status_code == 200
    finally:
        system.stop()


def test_several_workers_without_redis_refuse_to_start(tmp_path):
    system = sqlite_system(tmp_path)
    result = subprocess.run([sys.executable, "-m", "gateway"], env={**system.env, "WORKERS": "3"}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NANGO_REDIS_URL" in lines[0] and "WORKERS" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("plan", list(PLANS))
def test_redis_limit_is_exact_across_processes_and_workers(tmp_path, plan):
    limit = PLANS[plan]
    env = {"NANGO_REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"t-{uuid.uuid4().hex}", "DEFAULT_PLAN": plan,
           "WORKERS": "2", "THREADS": "8"}
    system = sqlite_system(tmp_path, **env).start()
    try:
        urls = [system.url, system.add_gateway("gateway-2")]
        wait_for_window(25 if limit > 1000 else 15)
        started = time.time()
        results = fire(urls, system.dev_key, limit * 3 // 2, threads=48)
        assert int(started // 60) == int(time.time() // 60), "burst crossed a window; machine too slow"
        statuses = [status for status, _ in results]
        assert statuses.count(200) == limit, (statuses.count(200), statuses.count(429))
        assert statuses.count(429) == limit // 2
        assert all(int(h["Retry-After"]) >= 1 for s, h in results if s == 429)
    finally:
        system.stop()


@pytest.mark.parametrize("fail_open", [True, False])
def test_redis_outage_follows_the_setting_and_recovers(tmp_path, fail_open):
    server = RedisServer(tmp_path).start()
    system = sqlite_system(tmp_path, NANGO_REDIS_URL=server.url, RATE_LIMIT_FAIL_OPEN=str(fail_open).lower()).start()
    try:
        http = system.session()
        assert http.get(system.url + "/integrations").headers["X-RateLimit-Remaining"] == "199"
        server.stop()
        during = [http.get(system.url + "/integrations") for _ in range(5)]
        if fail_open:
            assert all(r.status_code == 200 and "X-RateLimit-Limit" not in r.headers for r in during)
        else:
            assert all(r.status_code == 503 for r in during)
            assert during[0].json()["error"]["code"] == "rate_limit_unavailable"
        server.start()
        deadline = time.time() + 10
        while time.time() < deadline:
            response = http.get(system.url + "/integrations")
            if response.status_code == 200 and "X-RateLimit-Limit" in response.headers:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"did not recover after Redis came back:\n{system.logs()}")
        assert "rate-limit store unreachable" in system.logs()
    finally:
        system.stop()
        server.stop()


def test_failed_authentications_are_limited_per_address(tmp_path):
    system = sqlite_system(tmp_path, AUTH_FAILURE_LIMIT="5").start()
    try:
        wait_for_window(10)
        bad = system.session(str(uuid.uuid4()))
        assert [bad.get(system.url + "/integrations").status_code for _ in range(5)] == [401] * 5
        refused = bad.get(system.url + "/integrations")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert system.session().get(system.url + "/integrations").status_code == 200  # the right key passes
        assert bad.get(system.url + "/integrations").status_code == 429
    finally:
        system.stop()
