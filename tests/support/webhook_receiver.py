"""A customer's webhook endpoint for the tests: a real HTTP server on 127.0.0.1 that records every
delivery (raw body and headers) and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict:
        return json.loads(self.raw)


class WebhookReceiver:
    def __init__(self):
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []  # answered in order; 200 once they run out
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), raw))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/nango"

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def about(self, connection_id: str) -> list[Delivery]:
        return self.matching(lambda body: body.get("connectionId") == connection_id)

    def matching(self, wanted) -> list[Delivery]:
        """The deliveries whose parsed body `wanted(body)` accepts."""
        with self._lock:
            return [d for d in self.deliveries if wanted(d.body)]

    def wait_for(self, connection_id: str, count: int = 1, timeout: float = 15.0) -> list[Delivery]:
        """The deliveries about `connection_id`, once there are at least `count` (else AssertionError)."""
        return self.wait_for_match(lambda body: body.get("connectionId") == connection_id, count, timeout,
                                   f"about {connection_id}")

    def wait_for_match(self, wanted, count: int = 1, timeout: float = 15.0, what: str = "matching") -> list[Delivery]:
        """The deliveries `wanted(body)` accepts, once there are at least `count` (else AssertionError)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(wanted)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(self.matching(wanted))} deliveries {what}, wanted {count}")
