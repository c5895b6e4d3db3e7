"""Benchmark: a proxied GET through gateway and proxy versus the same GET sent to the upstream.

Prints, from one run on one Postgres and one Redis: throughput and latency (p50, p99) at
concurrency 16 and 1 against a fast upstream; against an upstream that answers in 200 ms, with
256 connections, both at saturation (wrk) and at 500 requests per second offered (bench/paced.py,
open loop); the ratios to the direct calls; CPU per call of each process; and the resident memory
of gateway and proxy while a 1 GB answer streams through.
Usage: [WORKERS=1] .venv/bin/python -m bench.proxy   (WORKERS: gunicorn workers per process)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
import requests
import yaml

from bench.common import ROOT, make_system, temp_dir, tree_cpu_seconds, wrk
from tests.support.databases import REDIS_URL, create_postgres_database, drop_postgres_database, raw_rows
from tests.support.system import free_port

SECONDS = 10
GIGABYTE = 10**9


def start_upstream() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.upstream", "127.0.0.1", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/fast", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the benchmark upstream did not start")


def seed(system) -> dict[str, str]:
    http = system.session()
    http.post(system.url + "/integrations", json={"unique_key": "api", "provider": "bench-api"}).raise_for_status()
    http.post(system.url + "/connections", json={
        "provider_config_key": "api", "connection_id": "bench",
        "credentials": {"type": "API_KEY", "apiKey": "bench-key"}}).raise_for_status()
    raw_rows(system.database_url, "UPDATE accounts SET plan = 'enterprise', rate_limit = 100000000")
    redis.Redis.from_url(system.env["NANGO_REDIS_URL"]).incr(f"{system.env['REDIS_KEY_PREFIX']}:keys:epoch")
    return {"Authorization": f"Bearer {system.dev_key}", "Connection-Id": "bench", "Provider-Config-Key": "api"}


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its direct children (gunicorn master and workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(entry) == pid or int(stat[1]) == pid:
                status = Path(f"/proc/{entry}/status").read_text()
                total += int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def stream_gigabyte(system, headers: dict[str, str]) -> None:
    pids = {name: system.procs[name].pid for name in ("gateway", "proxy")}
    samples: dict[str, list[float]] = {name: [] for name in pids}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for name, pid in pids.items():
                samples[name].append(tree_rss_mib(pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, received = time.monotonic(), 0
    with requests.get(f"{system.url}/proxy/big?n={GIGABYTE}", headers=headers, stream=True, timeout=120) as answer:
        for chunk in answer.iter_content(1 << 20):
            received += len(chunk)
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    rate = received / seconds / 1e6
    print(f"\n1 GB through gateway and proxy: {received} bytes in {seconds:.1f} s ({rate:.0f} MB/s)")
    for name, values in samples.items():
        print(f"  {name} resident memory (all workers): start {values[0]:.0f} MiB, max {max(values):.0f} MiB, "
              f"end {values[-1]:.0f} MiB")


def paced(url: str, headers: dict[str, str], rate: int, connections: int, seconds: int) -> dict:
    """Open-loop load (bench/paced.py): `rate` requests per second over `connections` connections."""
    args = [sys.executable, "-m", "bench.paced", url, str(rate), str(connections), str(seconds)]
    out = subprocess.run(args + [f"{k}: {v}" for k, v in headers.items()], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def paced_line(label: str, result: dict) -> str:
    return (f"{label:<44} {result['rps']:>8.0f} req/s  p50 {result['p50_ms']:>7.2f} ms  p99 {result['p99_ms']:>7.2f} ms"
            f"  non-2xx/errors {result['errors']}")


def compare(label: str, via, direct) -> None:
    print(via.line(f"{label} via gateway+proxy"))
    print(direct.line(f"{label} direct to upstream"))


def run(system, upstream: str, headers: dict[str, str]) -> None:
    proxied, direct = system.url + "/proxy/fast", upstream + "/fast"
    wrk(proxied, headers, connections=16, seconds=3)  # warm-up
    print(f"Proxied GET, Postgres + Redis, {SECONDS}s per run (wrk on the same machine)\n")
    pids = {name: system.procs[name].pid for name in ("gateway", "proxy", "store")}
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    via16 = wrk(proxied, headers, connections=16, seconds=SECONDS)
    cpu = {name: tree_cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    direct16 = wrk(direct, {}, connections=16, seconds=SECONDS)
    compare("fast upstream, c16", via16, direct16)
    via1, direct1 = wrk(proxied, headers, connections=1, seconds=5), wrk(direct, {}, connections=1, seconds=5)
    compare("fast upstream, c1", via1, direct1)
    slow256 = wrk(system.url + "/proxy/slow", headers, connections=256, seconds=SECONDS, threads=2)
    slow_direct = wrk(upstream + "/slow", {}, connections=256, seconds=SECONDS, threads=2)
    compare("200 ms upstream, c256 closed loop", slow256, slow_direct)
    # wrk's closed loop measures latency only at saturation (256 / mean latency = throughput); the
    # aim "500 req/s with p50 <= 260 ms" is a latency at a given rate: 500 req/s offered, open loop.
    at500 = paced(system.url + "/proxy/slow", headers, 500, 256, SECONDS)
    at500_direct = paced(upstream + "/slow", {}, 500, 256, SECONDS)
    print(paced_line("200 ms upstream, 500 req/s offered, 256 conns via gateway+proxy", at500))
    print(paced_line("200 ms upstream, 500 req/s offered, 256 conns direct", at500_direct))
    print(f"\nthroughput ratio proxied/direct at c16: {via16.rps / direct16.rps:.2f}  (aim: >= 600 req/s proxied)")
    print(f"p50 added at c1: {via1.p50_ms - direct1.p50_ms:.2f} ms  (aim: <= 3 ms)")
    print(f"200 ms upstream, 256 callers: {slow256.rps:.0f} req/s at saturation (errors {slow256.errors}); "
          f"at 500 req/s offered: {at500['rps']:.0f} req/s, p50 {at500['p50_ms']:.0f} ms, errors {at500['errors']}"
          "  (aim: >= 500 req/s, p50 <= 260 ms, no errors)")
    print("CPU per proxied request at c16: " + ", ".join(
        f"{name} {1000 * seconds / via16.requests:.2f} ms" for name, seconds in cpu.items()))
    stream_gigabyte(system, headers)


def main() -> None:
    database, tmp = create_postgres_database(), temp_dir()
    upstream_proc, upstream = start_upstream()
    catalogue = tmp / "providers.yaml"
    catalogue.write_text(yaml.safe_dump({"bench-api": {"auth_mode": "API_KEY", "proxy": {
        "base_url": upstream, "headers": {"authorization": "Bearer ${apiKey}"}}}}))
    env = {"NANGO_REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}",
           "WORKERS": os.environ.get("WORKERS", "1"),
           "THREADS": "8", "LOG_LEVEL": "info", "OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8",
           "PROVIDERS_FILE": str(catalogue), "PROXY_MAX_RESPONSE_BYTES": "2GiB"}
    system = make_system(tmp, database, **env).start()
    try:
        run(system, upstream, seed(system))
    finally:
        system.stop()
        upstream_proc.terminate()
        drop_postgres_database(database)


if __name__ == "__main__":
    main()
