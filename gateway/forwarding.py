"""Forward a public request to the internal service that owns it, and its answer back.

The pieces here take plain WSGI values (an environ, a headers mapping) so that the Flask route
and the proxied-call fast path (`gateway.fastpath`) forward in exactly the same way.
"""

from __future__ import annotations

import logging

import urllib3
from flask import Response, request

from common import wsgi
from common.identity import HEADER_PREFIX, Identity
from common.internal import UNREACHABLE, ServiceClient, ServiceUnavailable
from common.wsgi import raw_target

# Hop-by-hop headers, and the two the HTTP client sets itself for the next hop.
HOP_BY_HOP = wsgi.HOP_BY_HOP | {"host", "content-length"}
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "cookie"}
STREAM_CHUNK = 64 * 1024
log = logging.getLogger(__name__)
_PREFIX = HEADER_PREFIX.lower()


def outbound_headers(headers) -> dict[str, str]:
    """The caller's headers minus hop-by-hop ones, its credentials and anything spoofing ours."""
    return {
        name: value for name, value in headers.items()
        if name.lower() not in NOT_FORWARDED and not name.lower().startswith(_PREFIX)
    }


def streamed_body(environ) -> tuple[object, dict[str, str]]:
    """The caller's body as a stream (never held whole) and the framing header to send it with."""
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if length.isdigit():
        return (environ["wsgi.input"] if int(length) else None), {"Content-Length": length}
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return environ["wsgi.input"], {}  # urllib3 sends a stream of unknown length chunked
    return None, {}


CLIENT_ADDRESS_HEADER = "X-Authport-Client-Address"
CLIENT_HOST_HEADER = "X-Authport-Client-Host"


def dashboard_headers(headers, client_address: str) -> dict[str, str]:
    """What the dashboard is sent: the caller's headers with its Basic credentials and cookie
    (the dashboard checks them itself), the client address the gateway saw (after TRUSTED_PROXIES)
    and the Host the browser asked for (the dashboard refuses foreign hosts when it is open)."""
    kept = {name: value for name, value in headers.items()
            if name.lower() in ("authorization", "cookie")}
    return {**outbound_headers(headers), **kept, CLIENT_ADDRESS_HEADER: client_address,
            CLIENT_HOST_HEADER: headers.get("Host", "")}


def forward(client: ServiceClient, identity: Identity | None, *, stream: bool = False,
            headers: dict[str, str] | None = None) -> Response:
    """Forward the request; with `stream` (the proxy) bodies flow through in chunks both ways.
    `headers` replaces the caller's headers as sent on (default: `outbound_headers`)."""
    path = raw_target(request.environ)
    if stream:
        body, framing = streamed_body(request.environ)
    else:
        body, framing = request.get_data() or None, {}
    sent = outbound_headers(request.headers) if headers is None else headers
    upstream = client.request(
        request.method, path, body=body, headers={**sent, **framing}, identity=identity, stream=stream,
    )
    if not stream:
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(upstream.data, status=upstream.status, headers=headers)
    headers, chunks = streamed_answer(upstream)
    response = Response(chunks, status=upstream.status, headers=headers)
    if "content-type" not in {k.lower() for k, _ in headers}:
        del response.headers["Content-Type"]
    return response


def answer_headers(upstream, body: bytes) -> list[tuple[str, str]]:
    """The headers of a service's whole (not streamed) answer as passed on, with its length."""
    kept = [(k, v) for k, v in upstream.headers.items()
            if k.lower() not in HOP_BY_HOP and not k.lower().startswith(_PREFIX)]
    return [*kept, ("Content-Length", str(len(body)))]


def streamed_answer(upstream) -> tuple[list[tuple[str, str]], object]:
    """The proxy's answer passed on byte for byte: its length kept, its encoding not undone.

    An upstream API's answer never carries our internal headers on: one could otherwise pose as
    a service and, say, publish a message to a waiting websocket.

    The first chunk is read here, before the caller starts its answer: a proxy replica killed
    between its status line and its body is then the documented 503, not a 500 from the WSGI
    server (which sends nothing of the answer before its first body bytes). A failure after that
    cuts the answer short, and its Content-Length or chunked framing tells the client."""
    headers = [(k, v) for k, v in upstream.headers.items()
               if k.lower() not in HOP_BY_HOP - {"content-length"} and not k.lower().startswith(_PREFIX)]
    try:
        first = upstream.read1(STREAM_CHUNK, decode_content=False)
    except urllib3.exceptions.HTTPError as exc:
        upstream.close()
        upstream.release_conn()
        log.warning("internal service answer cut off before its body: %s %s", type(exc).__name__, exc)
        raise ServiceUnavailable(UNREACHABLE) from exc

    def body_chunks():
        complete = False
        try:
            chunk = first
            while chunk:
                yield chunk
                chunk = upstream.read1(STREAM_CHUNK, decode_content=False)
            complete = True
        finally:
            if not complete:  # the caller left early: this connection still holds unread bytes
                upstream.close()
            upstream.release_conn()

    return headers, body_chunks()
