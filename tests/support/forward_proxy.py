"""A tiny forward HTTP proxy for the egress tests: absolute-form requests and CONNECT tunnels.

It opens its own connection to the target from `source` (a 127.0.0.x address), so an upstream
can tell that a request came through the proxy, and records every target it was asked for: the
absolute URL of a relayed request, `host:port` of a CONNECT. What a client sends into a tunnel is
kept in `tunnelled`, so a test can show the proxy saw only ciphertext.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _relay(self):
        self.server.targets.append(self.path)
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10,
                                              source_address=(self.server.source, 0))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request(self.command, target, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    def do_CONNECT(self):
        self.server.targets.append(self.path)
        host, _, port = self.path.rpartition(":")
        self.close_connection = True
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10,
                                                source_address=(self.server.source, 0))
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        with upstream:
            self._tunnel(upstream)

    def _tunnel(self, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes (or both are idle for 10 s)."""
        ends = {self.connection: upstream, upstream: self.connection}
        while True:
            readable, _, _ = select.select(list(ends), [], [], 10)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                    if sock is self.connection:
                        with self.server.lock:
                            self.server.tunnelled.extend(data)
                    if not data:
                        return
                    ends[sock].sendall(data)
                except OSError:
                    return


class ForwardProxy:
    def __init__(self, host: str = "127.0.0.4", source: str = "127.0.0.5"):
        self.server = ThreadingHTTPServer((host, 0), _Handler)
        self.server.daemon_threads = True
        self.server.targets = []
        self.server.tunnelled = bytearray()
        self.server.lock = threading.Lock()
        self.server.source = source
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def targets(self) -> list[str]:
        return list(self.server.targets)

    @property
    def tunnelled(self) -> bytes:
        with self.server.lock:
            return bytes(self.server.tunnelled)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
