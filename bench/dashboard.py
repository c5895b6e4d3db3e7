"""The dashboard's connections page at 1,000 and 100,000 connections on Postgres:
`python -m bench.dashboard`.

Starts the five processes on a fresh Postgres database (AUTHPORT_TEST_PG, default the local one),
imports one connection through the API, then COPY-loads copies of its row (the page lists, it never
decrypts), and times GET /dashboard/dev/connections through the gateway, one caller at a time:
p50 and p95 of the first page, of the tenth page, of a search by end user id, and of the
"refresh failing" filter (one connection in 1,000 has a failed refresh), 30 calls each at 1,000
and 10 at 100,000.
"""

from __future__ import annotations

import io
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import copy_connections, latency_ms  # noqa: E402
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows  # noqa: E402
from tests.support.system import make_system  # noqa: E402

REQUESTS = 30
COLUMNS = ("uid", "environment_id", "integration_id", "connection_id", "credentials_enc", "credentials_type",
           "connection_config", "tags", "end_user", "end_user_id", "refresh_attempts", "refresh_exhausted",
           "created_at", "updated_at", "last_refresh_failure")


def load(url: str, first: int, count: int) -> None:
    """COPY `count` connections (numbered from `first`) cloned from the imported one."""
    ((env_id, integration_id, enc, kind),) = raw_rows(url, (
        "SELECT environment_id, integration_id, credentials_enc, credentials_type FROM connections "
        "WHERE connection_id = 'bench-seed'"))
    buffer = io.StringIO()
    for n in range(first, first + count):
        moment = f"2030-01-{1 + n // 86400 % 28:02d} {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
        buffer.write("\t".join([str(uuid.uuid4()), str(env_id), str(integration_id), f"bench-{n}", enc, kind,
                                "{}", "{}", f'{{"id": "user-{n}"}}', f"user-{n}", "0", "f", moment,
                                moment, moment if n % 1000 == 7 else "\\N"]) + "\n")
    copy_connections(url, COLUMNS, [buffer])


def timed(http: requests.Session, url: str, requests_: int) -> tuple[float, float]:
    return latency_ms(lambda _: http.get(url), requests_)


def measure(system, label: str, calls: int) -> float:
    http = requests.Session()
    http.trust_env = False
    base = system.url + "/dashboard/dev/connections"
    first = timed(http, base, calls)
    tenth = timed(http, base + "?page=9", calls)
    search = timed(http, base + "?search=user-500", calls)
    failing = timed(http, base + "?state=failing", calls)
    print(f"{label:>8} connections | first page p50 {first[0]:7.2f} ms p95 {first[1]:7.2f} ms | tenth page "
          f"p50 {tenth[0]:7.2f} ms | search p50 {search[0]:7.2f} ms | refresh failing p50 {failing[0]:7.2f} ms",
          flush=True)
    return first[0]


def main() -> int:
    url = create_postgres_database()
    tmp = Path(tempfile.mkdtemp(prefix="authport-bench-dashboard-"))
    system = make_system(tmp, url, LOG_LEVEL="warning").start()
    try:
        api = system.session()
        api.post(system.url + "/integrations", json={"unique_key": "github", "provider": "github"}).raise_for_status()
        api.post(system.url + "/connections", json={
            "provider_config_key": "github", "connection_id": "bench-seed",
            "credentials": {"type": "OAUTH2", "access_token": "bench-token"}}).raise_for_status()
        load(url, 0, 999)
        small = measure(system, "1,000", REQUESTS)
        load(url, 999, 99_000)
        large = measure(system, "100,000", 10)
        print(f"100k / 1k first-page p50 ratio: {large / small:.2f} (aim: at most 1.5)")
        assert raw_rows(url, "SELECT COUNT(*) FROM connections")[0][0] == 100_000
    finally:
        system.stop()
        drop_postgres_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
