"""GET /logs filtered by connection, at 10,000 and 1,000,000 records on Postgres: `python -m bench.logs`.

Starts the four processes on a fresh Postgres database (AUTHPORT_TEST_PG, default the local one),
bulk-loads records with COPY (spread over 1,000 connections of one environment, a minute apart
each, as a busy month would leave them), and times GET /logs?connection_id=… through the
gateway, one caller at a time (latency, not throughput): p50 and p95 over REQUESTS calls, each of
a connection picked at random, with `limit=10` so that both sizes answer pages of the same size
(at 10,000 records a connection has 10); then the default page of 100, filtered and not, and the
database's own time for the filtered query (EXPLAIN ANALYZE), which is what the index decides.
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from bench.common import latency_ms  # noqa: E402
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows  # noqa: E402
from tests.support.system import make_system  # noqa: E402

CONNECTIONS = 1000
REQUESTS = 300
COPY_CHUNK = 100_000
START = datetime(2030, 1, 1)


def load(url: str, env_id: int, first: int, count: int) -> None:
    """COPY `count` records (numbered from `first`) into operations."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for chunk in range(first, first + count, COPY_CHUNK):
                buffer = io.StringIO()
                for n in range(chunk, min(chunk + COPY_CHUNK, first + count)):
                    moment = (START + timedelta(seconds=n * 2.6)).isoformat(sep=" ")
                    kind = "proxy" if n % 4 else "credential.read"
                    buffer.write(f"{env_id}\t{kind}\tgithub\tbench-{n % CONNECTIONS}\t{'t' if n % 50 else 'f'}\t"
                                 f"\\N\t{{}}\t{moment}\tkey:default\treq-{n}\n")
                buffer.seek(0)
                cur.copy_expert("COPY operations (environment_id, kind, provider_config_key, connection_id, success, "
                                "error_code, detail, created_at, actor, request_id) FROM STDIN", buffer)
        conn.commit()
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE operations")
    finally:
        conn.close()


def timed(http: requests.Session, url: str, params_of) -> tuple[float, float]:
    """(p50, p95) in milliseconds of REQUESTS calls, after a warm-up."""
    return latency_ms(lambda params: http.get(url, params=params), REQUESTS, warmup=20, prepare=params_of)


def database_ms(url: str, env_id: int) -> tuple[float, str]:
    """Postgres's execution time of the filtered page query, and the index it used."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM operations WHERE environment_id = %s AND "
                        "connection_id = %s ORDER BY created_at DESC, id DESC LIMIT 101", (env_id, "bench-7"))
            plan = cur.fetchone()[0][0]
    finally:
        conn.close()
    node = plan["Plan"]
    while "Index Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    return plan["Execution Time"], node.get("Index Name", node["Node Type"])


def measure(system, env_id: int, label: str) -> float:
    http = system.session()
    http.headers["Connection"] = "keep-alive"
    url = system.url + "/logs"
    ten = timed(http, url, lambda: {"connection_id": f"bench-{random.randrange(CONNECTIONS)}", "limit": 10})
    hundred = timed(http, url, lambda: {"connection_id": f"bench-{random.randrange(CONNECTIONS)}"})
    unfiltered = timed(http, url, lambda: {})
    executed, index = database_ms(system.database_url, env_id)
    print(f"{label:>9} records | by connection, limit 10: p50 {ten[0]:5.2f} ms p95 {ten[1]:5.2f} ms | "
          f"limit 100: p50 {hundred[0]:5.2f} ms p95 {hundred[1]:5.2f} ms | unfiltered, limit 100: "
          f"p50 {unfiltered[0]:5.2f} ms | database {executed:.2f} ms ({index})", flush=True)
    return ten[0]


def main() -> int:
    url = create_postgres_database()
    tmp = Path(tempfile.mkdtemp(prefix="authport-bench-logs-"))
    system = make_system(tmp, url, DEFAULT_PLAN="enterprise", LOG_LEVEL="warning").start()
    try:
        env_id = raw_rows(url, "SELECT e.id FROM environments e JOIN accounts a ON a.id = e.account_id "
                               "WHERE a.name = 'default' AND e.name = 'dev'")[0][0]
        raw_rows(url, "UPDATE accounts SET plan = 'enterprise', rate_limit = 1000000")
        load(url, env_id, 0, 10_000)
        small = measure(system, env_id, "10,000")
        started = time.monotonic()
        load(url, env_id, 10_000, 990_000)
        print(f"(loaded 990,000 more in {time.monotonic() - started:.0f} s)", flush=True)
        large = measure(system, env_id, "1,000,000")
        print(f"1M / 10k p50 ratio: {large / small:.2f}")
    finally:
        system.stop()
        drop_postgres_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
