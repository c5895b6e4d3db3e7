"""An open-loop load generator: requests sent at a fixed rate over a fixed set of connections.

wrk keeps every connection busy (a closed loop): with N connections its throughput is N divided by
the mean latency, so it measures latency only at the saturation point. This one sends request i
at `start + i / rate` on whichever connection is free, and counts its latency from that planned
moment — a request that had to wait for a free connection pays the wait, as a caller would (no
"coordinated omission"). It runs under gevent, one greenlet per connection, with raw sockets and
a minimal HTTP/1.1 reader (small answers with Content-Length, which is what it is pointed at).

Usage: python -m bench.paced <url> <rate> <connections> <seconds> [Header: value ...]
Prints one JSON line: {"sent", "ok", "errors", "rps", "p50_ms", "p99_ms"}; rps counts the answers
that arrived while requests were being sent, after the first second (a server that falls behind
shows a lower figure); latencies count every request.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
from gevent.queue import Queue  # noqa: E402

WARM_UP = 1.0  # seconds of the window left out of the throughput: the first answers are still on their way


def request_bytes(url: str, headers: list[str]) -> tuple[tuple[str, int], bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *headers, "", ""]
    return (parts.hostname, parts.port or 80), "\r\n".join(lines).encode()


def read_answer(sock: socket.socket, buffer: bytearray) -> int:
    """Read one answer; return its status. Leftover bytes stay in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    buffer[:] = rest[length:]
    return status


def run(url: str, rate: float, connections: int, seconds: float, headers: list[str]) -> dict:
    address, payload = request_bytes(url, headers)
    planned: Queue = Queue()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    completed = [0]  # answers that arrived in the steady part of the sending window

    def worker():
        sock, buffer = socket.create_connection(address), bytearray()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            moment = planned.get()
            if moment is None:
                return
            try:
                sock.sendall(payload)
                status = read_answer(sock, buffer)
            except OSError:
                counts["errors"] += 1
                sock, buffer = socket.create_connection(address), bytearray()
                continue
            done = time.monotonic()
            latencies.append(done - moment)
            if start + WARM_UP <= done < start + seconds:
                completed[0] += 1
            counts["ok" if status < 400 else "errors"] += 1

    start, sent = time.monotonic() + 0.2, 0
    workers = [gevent.spawn(worker) for _ in range(connections)]
    while (moment := start + sent / rate) < start + seconds:
        gevent.sleep(max(0.0, moment - time.monotonic()))
        planned.put(moment)
        sent += 1
    for _ in workers:
        planned.put(None)
    gevent.joinall(workers, timeout=30)
    ordered = sorted(latencies) or [float("nan")]
    return {"sent": sent, **counts, "rps": round(completed[0] / (seconds - WARM_UP), 1),
            "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


if __name__ == "__main__":
    url, rate, conns, secs, *extra = sys.argv[1:]
    print(json.dumps(run(url, float(rate), int(conns), float(secs), extra)))
