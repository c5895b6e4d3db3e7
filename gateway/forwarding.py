"""Forward a public request to the internal service that owns it, and its answer back."""

from __future__ import annotations

from flask import Response, request

from common.identity import HEADER_PREFIX, Identity
from common.internal import ServiceClient

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "cookie"}
STREAM_CHUNK = 64 * 1024


def outbound_headers() -> dict[str, str]:
    """The caller's headers minus hop-by-hop ones, its credentials and anything spoofing ours."""
    return {
        name: value for name, value in request.headers.items()
        if name.lower() not in NOT_FORWARDED and not name.lower().startswith(HEADER_PREFIX.lower())
    }


def raw_target() -> str:
    """The path and query exactly as the caller sent them (percent-encoding kept), for the proxy."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    return request.full_path if request.query_string else request.path


def streamed_body() -> tuple[object, dict[str, str]]:
    """The caller's body as a stream (never held whole) and the framing header to send it with."""
    length = request.headers.get("Content-Length")
    if length is not None and length.strip().isdigit():
        return (request.stream if int(length) else None), {"Content-Length": length.strip()}
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return request.stream, {}  # urllib3 sends a stream of unknown length chunked
    return None, {}


def forward(client: ServiceClient, identity: Identity | None, *, stream: bool = False) -> Response:
    """Forward the request; with `stream` (the proxy) bodies flow through in chunks both ways."""
    if stream:
        path = raw_target()
        body, framing = streamed_body()
    else:
        path = request.full_path if request.query_string else request.path
        body, framing = request.get_data() or None, {}
    upstream = client.request(
        request.method, path, body=body, headers={**outbound_headers(), **framing}, identity=identity,
        stream=stream,
    )
    if not stream:
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(upstream.data, status=upstream.status, headers=headers)
    return streamed_response(upstream)


def streamed_response(upstream) -> Response:
    """The proxy's answer passed on byte for byte: its length kept, its encoding not undone."""
    headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP - {"content-length"}]

    def body_chunks():
        complete = False
        try:
            while chunk := upstream.read1(STREAM_CHUNK, decode_content=False):
                yield chunk
            complete = True
        finally:
            if not complete:  # the caller left early: this connection still holds unread bytes
                upstream.close()
            upstream.release_conn()

    response = Response(body_chunks(), status=upstream.status, headers=headers)
    if "content-type" not in {k.lower() for k, _ in headers}:
        del response.headers["Content-Type"]
    return response
