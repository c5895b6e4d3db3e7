"""Slow clients cannot hold the gateway's finite pool of connections (WORKER_CONNECTIONS, here 20):
sockets that send nothing and slowloris sockets (a header byte now and then), twice as many as
the pool holds, are closed within GATEWAY_HEADER_TIMEOUT of their accept while real requests go on
being served; a body that stalls is cut after GATEWAY_BODY_IDLE_TIMEOUT, but a slow and steady
upload through /proxy (64 KiB/s for 30 s) is not, and arrives intact."""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time

import pytest
import yaml

from tests.api.builders import gateway
from tests.proxy.builders import connect, proxied
from tests.support.system import make_system
from tests.support.upstream import Upstream

POOL = 20
HEADER, KEEPALIVE, BODY_IDLE = 2.0, 2.0, 3.0


@pytest.fixture(scope="module")
def upstream():
    with Upstream("127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def running(tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("slow-clients")
    (tmp / "providers.yaml").write_text(yaml.safe_dump(
        {"echo-key": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream.url,
                                                        "headers": {"x-api-key": "${apiKey}"}}}}))
    system = make_system(tmp, f"sqlite:///{tmp / 'authport.db'}", PROVIDERS_FILE=str(tmp / "providers.yaml"),
                         DEFAULT_PLAN="growth", OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", WORKER_CONNECTIONS=str(POOL),
                         GATEWAY_HEADER_TIMEOUT=str(HEADER), GATEWAY_KEEPALIVE_TIMEOUT=str(KEEPALIVE),
                         GATEWAY_BODY_IDLE_TIMEOUT=str(BODY_IDLE)).start()
    yield system
    system.stop()


class SlowSockets:
    """Sockets to the gateway that send nothing (`idle`) or one header byte every `every` seconds
    (`loris`), watched by one thread that records when the server closed each and what it sent."""

    def __init__(self, port: int, idle: int, loris: int, every: float = 0.5):
        self.opened = time.monotonic()
        self.sockets = {}
        for kind, count in (("idle", idle), ("loris", loris)):
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.setblocking(False)
                self.sockets[sock] = {"kind": kind, "closed": None, "answer": b""}
                if kind == "loris":
                    sock.send(b"GET /connections HTTP/1.1\r\nHost: x\r\n")
        self.every = every
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self, limit: float = 45.0) -> None:
        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            selector.register(sock, selectors.EVENT_READ)
        next_byte = time.monotonic() + self.every
        while any(s["closed"] is None for s in self.sockets.values()) and time.monotonic() - self.opened < limit:
            for key, _ in selector.select(timeout=0.1):
                self._read(key.fileobj, selector)
            if time.monotonic() >= next_byte:
                next_byte += self.every
                for sock, state in self.sockets.items():
                    if state["kind"] == "loris" and state["closed"] is None:
                        try:
                            sock.send(b"X")  # a header line that never ends
                        except OSError:
                            pass

    def _read(self, sock, selector) -> None:
        state = self.sockets[sock]
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        state["answer"] += data
        if not data:
            state["closed"] = time.monotonic() - self.opened
            selector.unregister(sock)
            sock.close()

    def wait(self) -> list[dict]:
        self.thread.join()
        return list(self.sockets.values())


def test_idle_and_slowloris_sockets_beyond_the_pool_are_closed_while_requests_are_served(running):
    api = gateway(running)
    assert api.get("/connections").status_code == 200
    slow = SlowSockets(int(running.env["SERVER_PORT"]), idle=POOL, loris=POOL)  # 40 sockets, pool of 20

    served = []
    while slow.thread.is_alive() and time.monotonic() - slow.opened < 20:
        started = time.monotonic()
        with gateway(running) as fresh:  # a new connection each time: it must find a free slot
            status = fresh.get("/connections", timeout=30).status_code
        served.append((status, time.monotonic() - started))
        time.sleep(0.3)
    states = slow.wait()

    # Two rounds of 20 accepted sockets, each closed HEADER after its accept (the second round
    # waits in the listen queue meanwhile): all gone well before gunicorn's 30 s keep-alive.
    bound = 2 * HEADER + 4
    assert all(s["closed"] is not None and s["closed"] < bound for s in states), sorted(
        (s["kind"], s["closed"]) for s in states)
    assert all(s["answer"] == b"" for s in states if s["kind"] == "idle")  # nothing sent: closed quietly
    for state in (s for s in states if s["kind"] == "loris"):
        assert state["answer"].startswith(b"HTTP/1.1 408 "), state["answer"][:100]
        assert b'"code": "request_timeout"' in state["answer"]
    assert served and all(status == 200 for status, _ in served), served
    assert max(took for _, took in served) < bound, served


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(running):
    with socket.create_connection(("127.0.0.1", int(running.env["SERVER_PORT"])), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        idle = time.monotonic() - answered
    assert received.startswith(b"HTTP/1.1 200 ") and received.count(b"HTTP/1.1") == 1
    assert KEEPALIVE - 0.5 < idle < KEEPALIVE + 2


@pytest.mark.parametrize("path", ["/connections", "/proxy/upload"])
def test_a_stalled_body_is_answered_408_and_closed(running, path):
    extra = ""
    if path.startswith("/proxy"):
        key, connection_id = connect(gateway(running), "echo-key", {"type": "API_KEY", "apiKey": "k-stall"})
        extra = f"Provider-Config-Key: {key}\r\nConnection-Id: {connection_id}\r\n"
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {running.dev_key}\r\n{extra}"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", int(running.env["SERVER_PORT"])), timeout=20) as sock:
        sock.sendall(head.encode() + b'{"provider_config_key": ')
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        took = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert BODY_IDLE - 0.5 < took < BODY_IDLE + 3


def test_a_slow_steady_upload_through_the_proxy_is_not_cut(running, upstream):
    api = gateway(running)
    key, connection_id = connect(api, "echo-key", {"type": "API_KEY", "apiKey": "k-slow"})
    rate, seconds, piece = 64 * 1024, 30, 8 * 1024
    payload = os.urandom(rate * seconds)

    def paced():
        started = time.monotonic()
        for offset in range(0, len(payload), piece):
            # Each 8 KiB leaves on schedule: 64 KiB/s, never a pause near BODY_IDLE.
            time.sleep(max(0.0, started + offset / rate - time.monotonic()))
            yield payload[offset:offset + piece]

    started = time.monotonic()
    answer = proxied(api, "POST", "/upload", key, connection_id, data=paced(),
                     headers={"Content-Type": "application/octet-stream"}, timeout=90)
    took = time.monotonic() - started

    assert answer.status_code == 200, answer.text[:300]
    assert took >= seconds - 1  # it really was slow: ten times BODY_IDLE
    got = upstream.last()
    assert got.path == "/upload" and got.body == payload
