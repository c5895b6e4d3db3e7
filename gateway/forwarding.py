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


def forward(client: ServiceClient, identity: Identity | None, *, stream: bool = False) -> Response:
    path = request.full_path if request.query_string else request.path
    upstream = client.request(
        request.method, path, body=request.get_data() or None, headers=outbound_headers(), identity=identity,
        stream=stream,
    )
    headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
    if not stream:
        return Response(upstream.data, status=upstream.status, headers=headers)

    def body():
        try:
            yield from upstream.stream(STREAM_CHUNK)
        finally:
            upstream.release_conn()

    return Response(body(), status=upstream.status, headers=headers)
