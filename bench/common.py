"""Shared pieces of the benchmarks: a running system, wrk runs, CPU accounting per process tree."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from tests.support.system import make_system  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
    return path


def tree_cpu_seconds(pid: int) -> float:
    """user+system CPU of a process and its direct children (gunicorn master and workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        if int(entry) == pid or ppid == pid:
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def line(self, label: str) -> str:
        return (f"{label:<44} {self.rps:>8.0f} req/s  p50 {self.p50_ms:>7.2f} ms  p99 {self.p99_ms:>7.2f} ms"
                f"  non-2xx/errors {self.errors}")


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, headers: dict[str, str], *, connections: int, seconds: int = 10, threads: int = 2,
        script: Path | None = None) -> WrkResult:
    """wrk's figures for `url` (or for the requests a Lua `script` makes, e.g. over many paths)."""
    args = [ensure_wrk(), f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    if " requests in" not in out or "Latency Distribution" not in out:
        raise RuntimeError(f"wrk gave no figures:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = out.split("Latency Distribution", 1)[1]
    p50 = _ms(re.search(r"50%\s+(\S+)", latency).group(1))
    p99 = _ms(re.search(r"99%\s+(\S+)", latency).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return WrkResult(requests, rps, p50, p99, errors)


def measured(pid: int, run):
    """Run `run()`; return its result and the CPU seconds the process tree used meanwhile."""
    before = tree_cpu_seconds(pid)
    result = run()
    return result, tree_cpu_seconds(pid) - before


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="authport-bench-"))


__all__ = ["make_system", "wrk", "measured", "temp_dir", "WrkResult"]


def latency_ms(call, count: int, *, warmup: int = 1, prepare=lambda: None) -> tuple[float, float]:
    """(p50, p95) in milliseconds of `count` calls `call(prepare())`, after `warmup` untimed ones.

    `prepare` builds each call's arguments outside the timed window; `call` returns a response,
    checked (raise_for_status) after its time is taken."""
    for _ in range(warmup):
        call(prepare()).raise_for_status()
    times = []
    for _ in range(count):
        arguments = prepare()
        started = time.perf_counter()
        answer = call(arguments)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def copy_connections(database_url: str, columns: tuple[str, ...], batches, *, options: str = "") -> None:
    """COPY each batch (a file-like of rows, `options` as COPY's WITH clause) into the connections
    table, one commit per batch, then VACUUM ANALYZE it so the planner sees the loaded table."""
    conn = psycopg2.connect(database_url)
    try:
        for batch in batches:
            batch.seek(0)
            with conn.cursor() as cur:
                cur.copy_expert(f"COPY connections ({', '.join(columns)}) FROM STDIN {options}".rstrip(), batch)
            conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE connections")
    finally:
        conn.close()
