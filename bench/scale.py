"""Benchmark: the credential read and the connection list at 1,000 and 1,000,000 connections (issue 14).

    .venv/bin/python -m bench.scale [--sizes 1000,1000000] [--seconds 5]

For each size it starts the five processes on a fresh Postgres database with a private Redis
(bench/credentials.py's Target: the integration `gh`, its connection `bench`), then writes the
other connections straight into the table in COPY batches, each built as the store builds a row:
its own uid, the credentials of `bench` (with their own tokens) sealed by `Connection.sealed`
under the installation's key and bound to that row, an end user of 10,000 and an organization of
1,000, a tag of 100, one in a thousand with a failed refresh. Then:

- `GET /connections/:id` at concurrency 1 (wrk): one connection read again and again (the
  store's read cache answers), random connections with the cache on, and random connections
  with the cache off (STORE_READ_CACHE_ENTRIES=0: every read takes the database path);
- `GET /connections` with filters, `limit` and `page`: p50 and p95 of 30 calls each.

It prints the figures per size, then the p50 ratio of the largest size to the smallest.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import uuid
from datetime import datetime, timedelta

from bench.common import ROOT, copy_connections, latency_ms, temp_dir, wrk
from bench.credentials import PATH, Target
from common.crypto import Cipher
from common.settings import load_settings
from services.store.models import Connection
from tests.support.databases import raw_rows

BATCH = 50_000
COLUMNS = ("uid", "environment_id", "integration_id", "connection_id", "credentials_enc", "credentials_type",
           "connection_config", "metadata", "tags", "end_user", "end_user_id", "organization_id", "expires_at",
           "last_refresh_failure", "refresh_attempts", "refresh_exhausted", "created_at", "updated_at")
LISTS = {  # label -> query of GET /connections
    "limit=100": {"limit": 100},
    "limit=100&page=50": {"limit": 100, "page": 50},
    "integrationId&limit=50&page=3": {"integrationId": "gh", "limit": 50, "page": 3},
    "endUserId": {"endUserId": "user-42"},
    "endUserOrganizationId&limit=100": {"endUserOrganizationId": "org-7", "limit": 100},
    "connectionId": {"connectionId": "c0000777"},
    "withError=true&limit=100": {"withError": "true", "limit": 100},
    "tags[team]&limit=100": {"tags[team]": "t42", "limit": 100},
    "search&limit=20": {"search": "user-42", "limit": 20},
}
READ_SCRIPT = """
math.randomseed(%d)
request = function()
  return wrk.format("GET", string.format("/connections/c%%07d?provider_config_key=gh", math.random(0, %d)))
end
"""


def connection_id(index: int) -> str:
    return f"c{index:07d}"


def seed(target: Target, count: int) -> None:
    """`count` connections of the integration `gh` besides `bench`, encrypted as the store encrypts."""
    settings = load_settings(target.system.env)
    cipher = Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD)
    ((env_id, integration_id, uid, sealed, kind, config, expires_at),) = raw_rows(target.database, (
        "SELECT c.environment_id, c.integration_id, c.uid, c.credentials_enc, c.credentials_type, "
        "c.connection_config, c.expires_at FROM connections c WHERE c.connection_id = 'bench'"))
    template = json.loads(cipher.decrypt(sealed, *Connection.binding("credentials_enc", uid)))
    start = datetime(2026, 1, 1)

    def batches():
        for first in range(0, count, BATCH):
            buffer = io.StringIO()
            out = csv.writer(buffer)
            for index in range(first, min(first + BATCH, count)):
                row_uid = str(uuid.uuid4())
                credentials = {**template, "access_token": f"tok-{index}", "refresh_token": f"ref-{index}"}
                user = f"user-{index % 10_000}"
                created = start + timedelta(milliseconds=index)
                out.writerow((row_uid, env_id, integration_id, connection_id(index),
                              Connection.sealed(cipher, "credentials_enc", row_uid, json.dumps(credentials)), kind,
                              config, "{}", json.dumps({"team": f"t{index % 100}"}, separators=(",", ":")),
                              json.dumps({"id": user, "email": f"{user}@example.com"}, separators=(",", ":")), user,
                              f"org-{index % 1_000}", expires_at,
                              created if index % 1_000 == 999 else None, 0, False, created, created))
            yield buffer

    copy_connections(target.database, COLUMNS, batches(), options="WITH (FORMAT csv)")


def read_figures(target: Target, count: int, seconds: int, label: str) -> dict[str, float]:
    auth = {"Authorization": f"Bearer {target.system.dev_key}"}
    script = temp_dir() / "reads.lua"
    script.write_text(READ_SCRIPT % (random.randrange(1 << 30), count - 1))
    url = target.system.url
    wrk(url + PATH, auth, connections=16, seconds=2)  # warm-up
    figures = {}
    runs = {"one connection": (url + PATH, None), "random connections": (url + "/", script)}
    for name, (where, lua) in runs.items():
        if label == "cache off" and name == "one connection":
            continue
        result = wrk(where, auth, connections=1, seconds=seconds, script=lua)
        figures[f"read {name}, {label}"] = result.p50_ms
        print(f"  GET /connections/:id c1, {name}, {label}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
              f"p99 {result.p99_ms:.2f} ms, errors {result.errors}", flush=True)
    return figures


def list_figures(target: Target) -> dict[str, float]:
    http = target.system.session()
    figures = {}
    for label, params in LISTS.items():
        p50, p95 = latency_ms(lambda p: http.get(target.system.url + "/connections", params=p, timeout=60), 30,
                              warmup=2, prepare=lambda params=params: params)
        figures[f"list {label}"] = p50
        found = len(http.get(target.system.url + "/connections", params=params, timeout=60).json()["connections"])
        print(f"  GET /connections?{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({found} listed)", flush=True)
    return figures


def bench_size(size: int, seconds: int) -> dict[str, float]:
    print(f"{size:,} connections", flush=True)
    target = Target(f"{size:,}", ROOT, "postgres").start()
    try:
        seed(target, size - 1)
        figures = read_figures(target, size - 1, seconds, "cache on")
        figures.update(list_figures(target))
        target.system.stop()
        target.system.env["STORE_READ_CACHE_ENTRIES"] = "0"
        target.system.start()
        figures.update(read_figures(target, size - 1, seconds, "cache off"))
    finally:
        target.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {size: bench_size(size, args.seconds) for size in sizes}
    small, large = results[min(sizes)], results[max(sizes)]
    print(f"\np50 at {max(sizes):,} / p50 at {min(sizes):,} connections:")
    for name in small:
        print(f"  {name}: {large[name] / small[name]:.2f} ({small[name]:.2f} -> {large[name]:.2f} ms)")


if __name__ == "__main__":
    main()

