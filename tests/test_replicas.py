"""What Kubernetes would run, on loopback: two gateway processes (two workers each) and two proxy
processes over one Postgres and one Redis. Limits and key rotation hold across all of them."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from common.identity import INTERNAL_KEY_HEADER
from tests.store import admin
from tests.support.databases import REDIS_URL, create_postgres_database, drop_postgres_database
from tests.support.load import fire, wait_for_window
from tests.support.system import make_system


@pytest.fixture
def replicas(tmp_path):
    database = create_postgres_database()
    system = make_system(tmp_path, database, NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=f"t-{uuid.uuid4().hex}",
                         WORKERS="2", THREADS="8").start()
    try:
        proxy_2 = system.add_process("proxy-2", "services.proxy", "PROXY_PORT")
        gateway_2 = system.add_gateway("gateway-2", PROXY_PORT=proxy_2.rsplit(":", 1)[1])
        yield system, [system.url, gateway_2]
    finally:
        system.stop()
        drop_postgres_database(database)


@pytest.mark.slow
def test_limits_and_rotation_hold_across_replicas(replicas):
    system, gateways = replicas
    for url in gateways:
        ready = requests.get(url + "/readyz", headers={INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"]}, timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "auth": "ok", "proxy": "ok"}
    changed = admin(system.env, "accounts", "set-plan", "default", "starter")
    assert changed.returncode == 0, changed.stderr

    wait_for_window(20)
    started = time.time()
    statuses = [status for status, _ in fire(gateways, system.dev_key, 1500, threads=48)]
    assert int(started // 60) == int(time.time() // 60), "burst crossed a window; machine too slow"
    assert (statuses.count(200), statuses.count(429)) == (1000, 500)

    time.sleep(max(0.0, 60 - time.time() % 60) + 0.2)  # the next window, where the limit admits again
    with requests.Session() as http:
        http.trust_env = False
        rotated = http.post(gateways[0] + "/environment/keys/default/rotate",
                            headers={"Authorization": f"Bearer {system.dev_key}"}, timeout=30)
        assert rotated.status_code == 200, rotated.text
        new_key = rotated.json()["data"]["key"]
        for url in gateways:
            old = http.get(url + "/integrations", headers={"Authorization": f"Bearer {system.dev_key}"})
            assert old.status_code == 401 and old.json()["error"]["code"] == "unknown_account"
            assert http.get(url + "/integrations", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
