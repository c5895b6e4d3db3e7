"""Small real upstream servers on 127.0.0.x for the egress and proxy tests.

`Upstream` records every request it receives (method, target, headers, body, peer address) and
counts the connections it accepts; what it answers depends on the path:

- `/status/<code>` answers that status; `?retry_after=<s>` adds Retry-After, `?times=<n>` answers
  it only to the first n requests with that exact target and 200 afterwards.
- `/slow?seconds=<s>` waits before answering; `/drip` sends a byte a second, forever.
- `/endless` streams zeros without end; `/bytes?n=<n>` sends n bytes (Content-Length).
- `/gzip-bomb?mib=<n>` sends n MiB of zeros, gzip-compressed, with Content-Encoding: gzip.
- `/redirect?to=<url>&status=<code>` redirects.
- anything else: 200 with a JSON echo of the request (and the header `X-Echo: 1`).
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    peer: str

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def log_message(self, *args):  # keep test output quiet
        pass

    def _record(self) -> tuple[Received, dict[str, str]]:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        got = Received(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        with self.state.lock:
            self.state.received.append(got)
            self.state.hits[got.target] = self.state.hits.get(got.target, 0) + 1
        params = {k: v[-1] for k, v in got.query.items()}
        return got, params

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, chunks, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            pass  # the client went away, as it should when a limit is crossed

    def _answer(self):
        got, params = self._record()
        path = got.path
        if path.startswith("/status/"):
            times = int(params.get("times", "1000000"))
            if self.state.hits[got.target] <= times:
                extra = {"Retry-After": params["retry_after"]} if "retry_after" in params else {}
                return self._send(int(path.rsplit("/", 1)[1]), b'{"error":"upstream"}', {
                    "Content-Type": "application/json", **extra})
        if path == "/slow":
            time.sleep(float(params.get("seconds", "1")))
        if path == "/drip":
            return self._stream(_drip(), {})
        if path == "/endless":
            zeros = b"\0" * 65536
            return self._stream(iter(lambda: zeros, None), {"Content-Type": "application/octet-stream"})
        if path == "/bytes":
            return self._send(200, b"a" * int(params.get("n", "10")), {"Content-Type": "application/octet-stream"})
        if path == "/gzip-bomb":
            body = gzip.compress(b"\0" * (int(params.get("mib", "64")) << 20), compresslevel=9)
            return self._send(200, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if path == "/redirect":
            return self._send(int(params.get("status", "302")), b"", {"Location": params["to"]})
        echo = {"method": got.method, "target": got.target, "headers": got.headers,
                "body": base64.b64encode(got.body).decode(), "peer": got.peer}
        return self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json", "X-Echo": "1"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_PROPFIND = do_REPORT = _answer


def _drip():
    while True:
        yield b"x"
        time.sleep(1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, address = super().get_request()
        with self.state.lock:
            self.state.connections += 1
        return sock, address

    def handle_error(self, request, client_address):
        # A caller that leaves mid-answer (tests do, on purpose) is not worth a traceback in the log.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Upstream:
    """A recording HTTP server on `host` (a 127.0.0.x address), started at once; stop() ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = _State()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = _Server((host, port), handler)
        self.server.state = self.state
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    @property
    def connections(self) -> int:
        with self.state.lock:
            return self.state.connections

    def last(self) -> Received:
        assert self.received, "the upstream received no request"
        return self.received[-1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
