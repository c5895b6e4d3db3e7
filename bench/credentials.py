"""Benchmark: the credential read, `GET /connections/:id`, through the gateway (issue 14).

    .venv/bin/python -m bench.credentials [--baseline REV] [--backends postgres,sqlite] [--seconds N]

For each backend (Postgres with a private Redis; SQLite with in-memory limits, the local
defaults) it starts the five processes, imports one OAuth2 connection through the API and reads
it with wrk at concurrency 1, 16 and 64. Per run it prints req/s, p50, p99, the CPU milliseconds
per request of the gateway, the store, this database's Postgres backends and Redis, their sum,
and the machine's idle share meanwhile. With `--baseline REV` the same runs are made, back to
back in the same invocation, on the code of REV (checked out in a temporary git worktree), so
old and new meet the same machine state; the ratios are printed at the end.

`python -m bench.scale` measures the same read at 1,000 and 1,000,000 connections.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis

from bench.common import ROOT, TICK, WrkResult, make_system, temp_dir, tree_cpu_seconds, wrk
from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows
from tests.support.redis_server import RedisServer

PATH = "/connections/bench?provider_config_key=gh"
CONCURRENCY = (1, 16, 64)


def machine_idle() -> tuple[int, int]:
    """(idle jiffies, all jiffies) of the machine so far (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def pid_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class PostgresBackends:
    """CPU of the Postgres server processes serving one database (pg_stat_activity's pids)."""

    def __init__(self, url: str):
        self.url, self.name = url, url.rsplit("/", 1)[1]

    def pids(self) -> set[int]:
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (self.name,))
                return {row[0] for row in cur.fetchall()}
        finally:
            conn.close()


@dataclass
class Run:
    label: str
    result: WrkResult
    cpu_ms: dict[str, float]  # per request, by process
    idle: float

    @property
    def total_ms(self) -> float:
        return sum(self.cpu_ms.values())

    def line(self) -> str:
        parts = "  ".join(f"{name} {value:.3f}" for name, value in self.cpu_ms.items())
        return (f"{self.label:<26} {self.result.rps:>7.0f} req/s  p50 {self.result.p50_ms:>6.2f} ms  "
                f"p99 {self.result.p99_ms:>6.2f} ms  CPU ms/req: {parts}  total {self.total_ms:.3f}  "
                f"idle {100 * self.idle:.0f}%  errors {self.result.errors}")


class Target:
    """One running system of one checkout on one backend, seeded with the benchmark's connection."""

    def __init__(self, label: str, root: Path, backend: str):
        self.label, self.backend = label, backend
        self.tmp = temp_dir()
        self.redis = None
        env = {"WORKERS": "2", "THREADS": "8", "LOG_LEVEL": "warning", "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}"}
        if backend == "postgres":
            self.database = create_postgres_database()
            self.redis = RedisServer(self.tmp).start()
            env["NANGO_REDIS_URL"] = self.redis.url
        else:  # the local defaults: one gateway process, whose in-memory limits are exact only alone
            self.database = f"sqlite:///{self.tmp / 'authport.db'}"
            env["WORKERS"] = "1"
        self.system = make_system(self.tmp / "run", self.database, **env)
        self.system.root = root

    def start(self) -> Target:
        self.system.start()
        http = self.system.session()
        http.post(self.system.url + "/integrations", json={
            "unique_key": "gh", "provider": "github",
            "credentials": {"type": "OAUTH2", "client_id": "id", "client_secret": "secret"}}).raise_for_status()
        http.post(self.system.url + "/connections", json={
            "provider_config_key": "gh", "connection_id": "bench",
            "credentials": {"type": "OAUTH2", "access_token": "tok", "refresh_token": "ref",
                            "expires_at": "2099-01-01T00:00:00Z"}}).raise_for_status()
        raw_rows(self.database, "UPDATE accounts SET plan = 'enterprise', rate_limit = 100000000")
        if self.redis is not None:  # what the store does after a plan change
            redis.Redis.from_url(self.redis.url).incr(f"{self.system.env['REDIS_KEY_PREFIX']}:keys:epoch")
        else:
            time.sleep(2.5)  # the lone gateway's key cache lives 2 s without Redis
        return self

    def measure(self, connections: int, seconds: int) -> Run:
        auth = {"Authorization": f"Bearer {self.system.dev_key}"}
        backends = PostgresBackends(self.database) if self.backend == "postgres" else None
        pids = {"gateway": self.system.procs["gateway"].pid, "store": self.system.procs["store"].pid}
        pg_pids = backends.pids() if backends else set()
        before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
        pg_before = {pid: pid_cpu_seconds(pid) for pid in pg_pids}
        redis_before = pid_cpu_seconds(self.redis.proc.pid) if self.redis else 0.0
        idle_before = machine_idle()
        result = wrk(self.system.url + PATH, auth, connections=connections, seconds=seconds)
        idle_after = machine_idle()
        count = max(result.requests, 1)
        cpu = {name: 1000 * (tree_cpu_seconds(pid) - before[name]) / count for name, pid in pids.items()}
        if backends:
            pg_after = backends.pids() | pg_pids
            cpu["postgres"] = 1000 * sum(pid_cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in pg_after) / count
            cpu["redis"] = 1000 * (pid_cpu_seconds(self.redis.proc.pid) - redis_before) / count
        idle = (idle_after[0] - idle_before[0]) / max(idle_after[1] - idle_before[1], 1)
        return Run(f"{self.label} c{connections}", result, cpu, idle)

    def stop(self) -> None:
        self.system.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.backend == "postgres":
            drop_postgres_database(self.database)
        shutil.rmtree(self.tmp, ignore_errors=True)


def checkout(rev: str) -> Path:
    """REV's code in a temporary git worktree (removed at exit by `release`)."""
    path = Path(tempfile.mkdtemp(prefix="authport-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    return path


def release(path: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False,
                   capture_output=True)


def bench_backend(backend: str, roots: dict[str, Path], seconds: int) -> dict[tuple[str, int], Run]:
    runs: dict[tuple[str, int], Run] = {}
    targets = {name: Target(f"{backend} {name}", root, backend) for name, root in roots.items()}
    try:
        for target in targets.values():
            target.start()
            wrk(target.system.url + PATH, {"Authorization": f"Bearer {target.system.dev_key}"}, connections=16,
                seconds=3)  # warm-up: pools filled, caches made
        for connections in CONCURRENCY:
            for name, target in targets.items():  # old and new back to back at each concurrency
                run = runs[(name, connections)] = target.measure(connections, seconds)
                print(run.line(), flush=True)
    finally:
        for target in targets.values():
            target.stop()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git revision to measure beside the working tree")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    roots = {"new": ROOT}
    if args.baseline:
        roots = {"old": checkout(args.baseline), "new": ROOT}
    print(f"GET /connections/:id through the gateway, {args.seconds} s per run, wrk on the same machine, "
          f"{os.cpu_count()} cores; CPU per request by process (gunicorn master and workers; this database's "
          "Postgres backends; the private Redis)\n", flush=True)
    try:
        for backend in args.backends.split(","):
            runs = bench_backend(backend, roots, args.seconds)
            if "old" in roots:
                for connections in CONCURRENCY:
                    old, new = runs[("old", connections)], runs[("new", connections)]
                    print(f"{backend} c{connections}: throughput new/old {new.result.rps / old.result.rps:.2f}, "
                          f"CPU per request new/old {new.total_ms / old.total_ms:.2f}, "
                          f"p50 {old.result.p50_ms:.2f} -> {new.result.p50_ms:.2f} ms")
            print(flush=True)
    finally:
        if "old" in roots:
            release(roots["old"])


if __name__ == "__main__":
    main()
