"""One proxied call, start to end: credentials from the store, the upstream request built, sent
through the egress layer with retries under one deadline, and the answer streamed back.

Every call leaves one operation record (`Record`): method, path (never the query), status,
outcome, duration, attempts, egress address and bytes relayed, and nothing of the credential or
the bodies. It is queued for the store's `operations` table (services/proxy/records.py, sent in
batches off the request path), and with LOG_LEVEL=debug also logged as a JSON line on
`authport.proxy.operations` (debug, not info: the table is the durable record, and encoding a
line per call would cost every call CPU for a copy nobody needs by default).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from common import metrics
from common.access_log import CURRENT as CURRENT_REQUEST_ID
from common.egress import Deadline, Egress, EgressResponse, OutboundRefused, UpstreamTimeout, UpstreamUnreachable
from common.errors import ApiError
from common.identity import Identity
from common.internal import StoreClient
from common.wsgi import HOP_BY_HOP
from services.proxy import injection, retry
from services.proxy.contract import ProxyCall
from services.proxy.credentials import CredentialCache
from services.proxy.records import Recorder

operations = logging.getLogger("authport.proxy.operations")
REFRESHABLE = {"OAUTH2", "OAUTH2_CC", "APP", "JWT", "TWO_STEP", "SIGNATURE", "BILL", "MCP_OAUTH2"}


@dataclass
class Record:
    """What the operation record says about one call; logged once, when the call ends."""

    identity: Identity
    call: ProxyCall
    method: str
    recorder: Recorder | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    attempts: int = 0
    status: int | None = None
    egress: str | None = None
    outcome: str = "ok"
    bytes: int = 0
    request_id: str | None = field(default_factory=CURRENT_REQUEST_ID.get)

    def log(self) -> None:
        """End the record: queue it for the store (cheap: no encoding here) and log it at debug."""
        self.ended = time.monotonic()
        metrics.PROXIED.labels(self.outcome, metrics.status_class(self.status), self.egress or "none").inc()
        if self.recorder is not None:
            self.recorder.add(self)
        if operations.isEnabledFor(logging.DEBUG):
            operations.debug(json.dumps({"operation": "proxy", **self.fields()}, separators=(",", ":")))

    def fields(self) -> dict:
        """The record's content: `call.endpoint` is the path without its query (passage.proxy_target)."""
        return {"environment_id": self.identity.environment_id, "provider_config_key": self.call.provider_config_key,
                "connection_id": self.call.connection_id, "method": self.method, "path": self.call.endpoint,
                "status": self.status, "outcome": self.outcome, "attempts": self.attempts,
                "egress_address": self.egress, "bytes": self.bytes,
                "duration_ms": round((self.ended - self.started) * 1000, 1),
                # The secret key that made the call, by id: the store names it as the record's actor.
                "key_id": self.identity.key_id if self.identity.key_kind == "secret" else None,
                "request_id": self.request_id}


@dataclass
class Body:
    content: object  # bytes, a stream, or None
    replayable: bool
    framing: dict[str, str]


class ProxyCalls:
    def __init__(self, store: StoreClient, egress: Egress, settings, credentials: CredentialCache | None = None,
                 recorder: Recorder | None = None):
        self.store = store
        self.egress = egress
        self.settings = settings
        self.credentials = credentials or CredentialCache(store, None)
        self.recorder = recorder

    def run(self, identity: Identity, call: ProxyCall, method: str, body: Body, versions=None) -> Answer:
        """Make the call; `versions` are the credential versions the gateway read for it, if any."""
        record = Record(identity, call, method, self.recorder)
        try:
            answer = self._exchange(identity, call, method, body, record, versions)
            return self._relay(answer, call, record)
        except OutboundRefused as refused:
            # Nango's code and words for a destination its policy refuses; the reason goes to the log.
            record.status, record.outcome = 400, f"outbound_refused: {refused.message}"
            record.log()
            raise ApiError("This outbound URL is not allowed by server configuration.",
                           code="base_url_override_not_allowed", status=400) from None
        except ApiError as error:
            record.status, record.outcome = error.status, error.code
            record.log()
            raise

    def _outbound(self, connection: dict, call: ProxyCall) -> injection.Outbound:
        return injection.build(connection, call, provider_fields=connection.get("connection_config_schema") or {},
                               override_enabled=self.settings.NANGO_PROXY_BASE_URL_OVERRIDE_ENABLED)

    def _exchange(self, identity, call, method, body: Body, record: Record, versions=None) -> EgressResponse:
        connection = self.credentials.get(identity, call.provider_config_key, call.connection_id, versions)
        outbound = self._outbound(connection, call)
        deadline = Deadline(self.settings.PROXY_TOTAL_TIMEOUT)
        provider_retry = (connection.get("proxy") or {}).get("retry") or {}
        refreshed = False
        while True:
            record.attempts += 1
            more = body.replayable and record.attempts <= call.retries
            try:
                answer = self._send(method, outbound, call, body, deadline)
            except (UpstreamUnreachable, UpstreamTimeout):
                if not more or not self._pause(None, record.attempts, provider_retry, deadline):
                    raise
                continue
            record.egress, record.status = answer.egress_address, answer.status
            if answer.status == 401 and not refreshed and body.replayable:
                refreshed = True
                fresh = self._refresh(identity, call, connection)
                if fresh is not None:
                    answer.discard()
                    connection, outbound = fresh, self._outbound(fresh, call)
                    continue
            if more and retry.retryable_status(answer.status, answer.headers, call.retry_on, provider_retry):
                if self._pause(answer.headers, record.attempts, provider_retry, deadline):
                    answer.discard()
                    continue
            return answer

    def _refresh(self, identity: Identity, call: ProxyCall, connection: dict) -> dict | None:
        """After a 401: the connection with freshly refreshed credentials, or None if none came."""
        if connection.get("auth_mode") not in REFRESHABLE:
            return None
        self.credentials.forget(identity, call.provider_config_key, call.connection_id)
        fresh = self.store.connection_credentials(identity, call.provider_config_key, call.connection_id,
                                                  force_refresh=True)
        return fresh if fresh.get("refreshed") else None

    def _send(self, method: str, outbound: injection.Outbound, call: ProxyCall, body: Body,
              deadline: Deadline) -> EgressResponse:
        protected = set(outbound.protected_headers)
        if not call.forward_headers_on_redirect:
            protected |= {name.lower() for name in call.headers}
        headers = {**outbound.headers, **body.framing}
        if outbound.signer is not None:  # OAuth 1.0a: a fresh nonce and timestamp on every attempt
            headers.update(outbound.signer(method, outbound.url, headers, body.content))
        return self.egress.send(
            method, outbound.url, headers=headers, body=body.content,
            deadline=deadline, max_redirects=5 if call.follow_redirects else 0,
            protected_headers=protected, protected_query=outbound.protected_query)

    def _pause(self, headers, attempt: int, provider_retry: dict, deadline: Deadline) -> bool:
        """Sleep before the next attempt; False when the wait would overrun the deadline."""
        wait = retry.wait_before_retry(headers, attempt, provider_retry, self.settings.PROXY_RETRY_BACKOFF)
        if wait >= deadline.remaining():
            return False
        time.sleep(wait)
        return True

    def _relay(self, answer: EgressResponse, call: ProxyCall, record: Record) -> Answer:
        """The upstream answer for the caller; errors up to the first chunk are JSON."""
        answer.check_declared_size()
        inflating = answer.inflater(call.decompress) is not None
        chunks = answer.stream(call.decompress)
        first = next(chunks, b"")
        dropped = HOP_BY_HOP | ({"content-encoding", "content-length"} if inflating else set())
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in dropped]
        return Answer(answer.status, headers, RelayedBody(first, chunks, record))


@dataclass
class Answer:
    """What goes back to the caller: the upstream's status and headers, and its body streamed."""

    status: int
    headers: list[tuple[str, str]]
    body: RelayedBody


class RelayedBody:
    """The upstream body as a WSGI iterable. Its record is written when the server closes it,
    which happens even when the body is never read (HEAD, 204, 304, a caller that left)."""

    def __init__(self, first: bytes, chunks, record: Record):
        self.first, self.chunks, self.record = first, chunks, record
        self.started = self.finished = self.closed = False

    def __iter__(self):
        self.started = True
        self.record.bytes = len(self.first)
        try:
            yield self.first
            for chunk in self.chunks:
                self.record.bytes += len(chunk)
                yield chunk
            self.finished = True
        except ApiError as error:
            self.record.outcome = error.code  # the caller sees the stream cut short
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.started and not self.finished and self.record.outcome == "ok":
            self.record.outcome = "caller_left"
        self.chunks.close()
        self.record.log()
