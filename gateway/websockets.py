"""The websocket the frontend SDK's popup flow waits on (`NANGO_SERVER_WEBSOCKETS_PATH`, default `/`).

On connect the client gets `{"message_type": "connection_ack", "ws_client_id": <uuid>}`; when the
flow ends, auth answers the gateway with the message for that client in a response header
(`common.popup.WS_MESSAGE_HEADER`) and the gateway publishes it. With `NANGO_REDIS_URL` it goes
through Redis pub/sub, so the gateway process holding the socket delivers it wherever the
callback landed; without Redis (one local process) it is delivered in process.

While Redis is unreachable a message is delivered in the process where the callback landed
only: a popup whose websocket another gateway process holds gets no message there, but still
the result page, which posts it to its opener. Sockets are still accepted; the listener
subscribes again by itself when Redis is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid

import redis
from flask import Flask, Response
from flask_sock import Sock

from common import redis_outage
from common.popup import WS_MESSAGE_HEADER

log = logging.getLogger("authport.gateway.websockets")
# An end user may take a while to consent, but an OAuth session lives 15 minutes; until the gateway
# runs event-loop workers, each open socket also holds one of its worker threads.
MAX_LIFETIME = 20 * 60.0
POLL = 1.0


class Hub:
    def __init__(self, redis_url: str | None, prefix: str = "authport"):
        self.channel = f"{prefix}:ws"
        self.redis_url = redis_url
        self.clients: dict[str, queue.Queue] = {}
        self.lock = threading.Lock()
        self._listening_pid: int | None = None
        self._client: redis.Redis | None = None
        self._subscribed = False
        self.outage = redis_outage.Outage("Redis (websocket fan-out)", "messages are delivered in this process only",
                                          log)

    def register(self) -> tuple[str, queue.Queue]:
        self._ensure_listener()
        client_id, inbox = str(uuid.uuid4()), queue.Queue()
        with self.lock:
            self.clients[client_id] = inbox
        return client_id, inbox

    def unregister(self, client_id: str) -> None:
        with self.lock:
            self.clients.pop(client_id, None)

    def deliver(self, client_id: str, message: dict) -> None:
        inbox = self.clients.get(client_id)
        if inbox is not None:
            inbox.put(message)

    def publish(self, client_id: str, message: dict) -> None:
        """Send `message` to websocket `client_id`, on whichever gateway process holds it."""
        if self.redis_url is None:
            self.deliver(client_id, message)
            return
        self._ensure_listener()
        data = json.dumps({"ws_client_id": client_id, "message": message})
        published = self.outage.call(lambda: self._client.publish(self.channel, data) is not None, lambda: False)
        if not published or not self._subscribed:  # our own listener would not hear it
            self.deliver(client_id, message)

    def _ensure_listener(self) -> None:
        """Start listening once per process (after gunicorn's fork), before any client is acknowledged."""
        if self.redis_url is None or self._listening_pid == os.getpid():
            return
        with self.lock:
            if self._listening_pid == os.getpid():
                return
            self._client = redis_outage.client(self.redis_url)
            pubsub = self.outage.call(self._subscribe, lambda: None)  # None: the listener keeps trying
            threading.Thread(target=self._listen, args=(pubsub,), name="ws-fanout", daemon=True).start()
            self._listening_pid = os.getpid()

    def _subscribe(self):
        # No read timeout: the listener waits for messages; a stopped Redis closes the socket.
        pubsub = redis_outage.client(self.redis_url, socket_timeout=None).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        pubsub.get_message(timeout=2.0)  # the confirmation: the subscription is active from here on
        self._subscribed = True
        return pubsub

    def _listen(self, pubsub) -> None:
        while True:
            if pubsub is None:
                time.sleep(redis_outage.RETRY)
                pubsub = self.outage.call(self._subscribe, lambda: None)
                continue
            try:
                for item in pubsub.listen():
                    if item.get("type") == "message":
                        self._dispatch(item["data"])
            except redis.RedisError as exc:
                self._subscribed = False
                self.outage.failed(exc)
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()
                pubsub = None

    def _dispatch(self, data: bytes) -> None:
        try:
            envelope = json.loads(data)
            self.deliver(str(envelope["ws_client_id"]), envelope["message"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed websocket fan-out message")

    def relay(self, response: Response) -> None:
        """Publish the message a service attached to its answer, and remove it from the answer."""
        raw = response.headers.pop(WS_MESSAGE_HEADER, None)
        if not raw:
            return
        try:
            envelope = json.loads(raw)
            self.publish(str(envelope["ws_client_id"]), envelope["message"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed websocket message from a service")


def install(app: Flask, hub: Hub, path: str) -> None:
    sock = Sock(app)

    @sock.route(path)
    def websocket(ws):
        client_id, inbox = hub.register()
        try:
            ws.send(json.dumps({"message_type": "connection_ack", "ws_client_id": client_id}))
            deadline = time.monotonic() + MAX_LIFETIME
            while ws.connected and time.monotonic() < deadline:
                try:
                    message = inbox.get(timeout=POLL)
                except queue.Empty:
                    continue
                ws.send(json.dumps(message))
                if message.get("message_type") in ("success", "error"):
                    break  # the flow is over: free the socket (and its worker thread) at once
        finally:
            hub.unregister(client_id)


def refuse_popup(hub: Hub, error, path: str, args) -> Response:
    """A popup whose credential was refused: the HTML result page, and the error on its websocket."""
    from common import popup

    key = path.removeprefix("/oauth/connect/") or None
    description = error.message or error.code
    body, headers = popup.page(False, error.code, description)
    client_id = args.get("ws_client_id")
    if client_id:
        hub.publish(client_id, popup.error_message(key, args.get("connection_id"), error.code, description))
    return Response(body, status=error.status, headers=headers)
