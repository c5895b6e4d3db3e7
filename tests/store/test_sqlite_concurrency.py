"""The default database (SQLite, as `make up` runs it: one store worker, THREADS=8) under a small
team's write load: 64 callers at once importing connections, replacing and merging metadata and
setting tags. No answer is a 5xx ("database is locked"), and every acknowledged write is there
afterwards (merges into one shared connection included: none is lost to a concurrent one)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.builders import connection_body, gateway, make_connection, make_integration
from tests.support.databases import raw_rows
from tests.support.system import make_system

CALLERS = 64
ROUNDS = 2  # per caller, four writes each: 64 × 2 × 4 = 512 requests, bounded and enough to collide
KEY = "team-github"
SHARED = "shared-conn"


@pytest.fixture(scope="module")
def sqlite_system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sqlite-writers")
    # The defaults of `make up` (WORKERS=1, THREADS=8, WORKER_CONNECTIONS=1000) are make_system's;
    # before the fix in services/store/db.py about 1 write in 7 here was a 500 "database is locked".
    # only the plan is raised, so the rate limit does not answer first.
    running = make_system(tmp, f"sqlite:///{tmp / 'authport.db'}", DEFAULT_PLAN="growth").start()
    try:
        yield running
    finally:
        running.stop()


def caller_rounds(system, caller: int, start: threading.Barrier, rounds: int) -> tuple[list[int], dict]:
    """One caller's writes, each acknowledged one remembered: (statuses, what must be stored)."""
    api = gateway(system)
    own = f"own-{caller}"
    statuses, acked = [], {"imports": [], "merged": [], "meta": None, "tags": None}
    start.wait()
    for n in range(rounds):
        imported = f"imp-{caller}-{n}"
        answer = api.post("/connections", json=connection_body(KEY, connection_id=imported))
        statuses.append(answer.status_code)
        if answer.status_code == 201:
            acked["imports"].append(imported)
        answer = api.patch("/connections/metadata", json={"connection_id": SHARED, "provider_config_key": KEY,
                                                          "metadata": {f"c{caller}r{n}": n}})
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            acked["merged"].append(f"c{caller}r{n}")
        answer = api.post("/connections/metadata", json={"connection_id": own, "provider_config_key": KEY,
                                                         "metadata": {"round": n}})
        statuses.append(answer.status_code)
        if answer.status_code in (200, 201):
            acked["meta"] = {"round": n}
        answer = api.patch(f"/connections/{own}", params={"provider_config_key": KEY}, json={"tags": {"round": str(n)}})
        statuses.append(answer.status_code)
        if answer.status_code in (200, 204):
            acked["tags"] = {"round": str(n)}
    return statuses, acked


def test_64_concurrent_writers_get_no_5xx_and_no_write_is_lost(sqlite_system):
    api = gateway(sqlite_system)
    make_integration(api, unique_key=KEY)
    make_connection(api, KEY, connection_id=SHARED, metadata={})
    for caller in range(CALLERS):
        make_connection(api, KEY, connection_id=f"own-{caller}")

    start = threading.Barrier(CALLERS)
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        results = list(pool.map(lambda c: caller_rounds(sqlite_system, c, start, ROUNDS), range(CALLERS)))
    elapsed = time.monotonic() - began

    statuses = Counter(s for found, _ in results for s in found)
    print(f"\n{sum(statuses.values())} writes by {CALLERS} callers in {elapsed:.1f}s: {dict(statuses)}")
    assert not [s for s in statuses if s >= 500], (dict(statuses), sqlite_system.logs()[-3000:])
    assert set(statuses) <= {200, 201, 204}, dict(statuses)

    db = sqlite_system.database_url
    rows = {cid: (json.loads(meta) if meta else None, json.loads(tags))
            for cid, meta, tags in raw_rows(db, "SELECT connection_id, metadata, tags FROM connections "
                                                "WHERE deleted_at IS NULL")}
    for caller, (_, acked) in enumerate(results):
        assert all(imported in rows for imported in acked["imports"]), caller
        meta, tags = rows[f"own-{caller}"]
        assert meta == acked["meta"] and tags == acked["tags"], (caller, meta, tags, acked)
    merged = rows[SHARED][0]
    lost = [key for _, acked in results for key in acked["merged"] if key not in merged]
    assert not lost, f"{len(lost)} acknowledged merges lost, e.g. {lost[:5]}"
