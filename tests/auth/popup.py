"""Drive the popup flow over plain HTTP and a websocket, as the frontend SDK and its popup would."""

from __future__ import annotations

import json
import socket
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import requests
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage


class Socket:
    """The SDK's websocket: connect, read the ack, then wait for the flow's result.

    A small client on wsproto: the server may send its ack in the same packet as the handshake's
    answer, and every event of every packet must be read (simple_websocket's client reads only the
    first event of the handshake's packet, and would miss such an ack)."""

    def __init__(self, gateway_url: str, path: str = "/", tls: ssl.SSLContext | None = None):
        parts = urlsplit(gateway_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
        if tls is not None:  # wss://
            self.sock = tls.wrap_socket(self.sock, server_hostname=parts.hostname)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.conn.send(Request(host=parts.netloc, target=path)))
        self.pending: list[str] = []
        self.accepted = False
        ack = json.loads(self._next_message(20))
        assert ack["message_type"] == "connection_ack", ack
        self.client_id = ack["ws_client_id"]

    def _next_message(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not data:
                return None
            self.conn.receive_data(data)
            for event in self.conn.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                elif isinstance(event, TextMessage):
                    self.pending.append(event.data)
                elif isinstance(event, CloseConnection) and not self.pending:
                    return None
        return self.pending.pop(0)

    def result(self, timeout: float = 15) -> dict:
        """The flow's result; the gateway closes the socket after it."""
        try:
            message = self._next_message(timeout)
        finally:
            self.close()
        assert message is not None, "no message on the websocket"
        return json.loads(message)

    def close(self) -> None:
        self.sock.close()


def run_popup(gateway_url: str, key: str, **query) -> tuple[requests.Response, list[requests.Response]]:
    """Open /oauth/connect/<key> and follow every redirect; (final answer, the hops before it)."""
    browser = requests.Session()
    browser.trust_env = False
    answer = browser.get(f"{gateway_url}/oauth/connect/{key}", params=query, allow_redirects=True, timeout=30)
    return answer, answer.history


def authorize_query(hops: list[requests.Response]) -> dict[str, str]:
    """The query the provider's authorize endpoint received (the first redirect's target)."""
    location = hops[0].headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
