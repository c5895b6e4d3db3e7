"""Benchmark: GET /connections/:id through the gateway versus straight to the store.

Prints throughput and latency (p50, p99) at concurrency 16 and 1, the gateway's CPU per request,
and the cost of the rate-limit check with Redis versus memory. All figures come from one run, on
one Postgres and one Redis, so ratios are comparable. Usage: .venv/bin/python bench/gateway.py
"""

from __future__ import annotations

import uuid

import redis
import requests

from bench.common import make_system, measured, temp_dir, wrk
from common.identity import INTERNAL_KEY_HEADER
from tests.support.databases import REDIS_URL, create_postgres_database, drop_postgres_database, raw_rows

SECONDS = 10


def seed(system) -> str:
    http = system.session()
    http.post(system.url + "/integrations", json={
        "unique_key": "gh", "provider": "github",
        "credentials": {"type": "OAUTH2", "client_id": "id", "client_secret": "secret"}}).raise_for_status()
    http.post(system.url + "/connections", json={
        "provider_config_key": "gh", "connection_id": "bench",
        "credentials": {"type": "OAUTH2", "access_token": "tok", "refresh_token": "ref",
                        "expires_at": "2099-01-01T00:00:00Z"}}).raise_for_status()
    raw_rows(system.database_url, "UPDATE accounts SET plan = 'enterprise', rate_limit = 100000000")
    # What the store does after a plan change: bump the keys epoch so gateways drop cached identities.
    redis.Redis.from_url(system.env["NANGO_REDIS_URL"]).incr(f"{system.env['REDIS_KEY_PREFIX']}:keys:epoch")
    return "/connections/bench?provider_config_key=gh&force_refresh=false&refresh_token=false"


def store_headers(system) -> dict[str, str]:
    identity = requests.post(system.service_url("store") + "/internal/keys/resolve",
                             json={"key": system.dev_key, "kind": "secret"},
                             headers={INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"]}).json()["identity"]
    from common.identity import Identity

    return {INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"], **Identity.from_dict(identity).to_headers()}


def main() -> None:
    database = create_postgres_database()
    tmp = temp_dir()
    env = {"NANGO_REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}", "WORKERS": "2",
           "THREADS": "8", "LOG_LEVEL": "warning"}
    system = make_system(tmp, database, **env).start()
    try:
        path = seed(system)
        auth = {"Authorization": f"Bearer {system.dev_key}"}
        direct = store_headers(system)
        gw_pid, store_pid = system.procs["gateway"].pid, system.procs["store"].pid
        redis_1w = system.add_gateway("gateway-redis-1w", WORKERS="1")
        memory_1w = system.add_gateway("gateway-memory-1w", WORKERS="1", NANGO_REDIS_URL=None)
        wrk(system.url + path, auth, connections=16, seconds=3)  # warm-up

        print(f"GET /connections/:id, Postgres, {SECONDS}s per run (wrk, same machine)\n")
        via, gw_cpu = measured(gw_pid, lambda: wrk(system.url + path, auth, connections=16, seconds=SECONDS))
        print(via.line("gateway -> store, c16 (Redis limits)"))
        straight, store_cpu = measured(store_pid, lambda: wrk(system.service_url("store") + path, direct,
                                                                connections=16, seconds=SECONDS))
        print(straight.line("store directly, c16"))
        via1 = wrk(system.url + path, auth, connections=1, seconds=5)
        straight1 = wrk(system.service_url("store") + path, direct, connections=1, seconds=5)
        print(via1.line("gateway -> store, c1"))
        print(straight1.line("store directly, c1"))
        print(f"\nthroughput ratio gateway/direct at c16: {via.rps / straight.rps:.2f}")
        print(f"p50 added by the gateway at c1: {via1.p50_ms - straight1.p50_ms:.2f} ms")
        print(f"gateway CPU per request (2 workers, Redis): {1000 * gw_cpu / via.requests:.2f} ms")
        print(f"store CPU per request (direct): {1000 * store_cpu / straight.requests:.2f} ms")

        pids = {name: system.procs[name].pid for name in ("gateway-redis-1w", "gateway-memory-1w")}
        for name, url in (("gateway-redis-1w", redis_1w), ("gateway-memory-1w", memory_1w)):
            result, cpu = measured(pids[name], lambda url=url: wrk(url + path, auth, connections=16,
                                                                   seconds=SECONDS))
            print(result.line(f"{name}, c16") + f"  gateway CPU {1000 * cpu / result.requests:.2f} ms/req")
    finally:
        system.stop()
        drop_postgres_database(database)


if __name__ == "__main__":
    main()
