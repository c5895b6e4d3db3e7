"""Proxied calls (`/proxy/...`), the most frequent request, handled as plain WSGI.

The same checks and the same answers as the Flask route in `gateway.app` — caller authenticated,
request charged to the plan, body and answer streamed, JSON errors, CORS and rate-limit headers —
without Flask's per-request machinery (request context, URL map, response object, hooks), which
cost about a fifth of the gateway's CPU on this call. Anything unusual (a preflight, a dot
segment, the bare `/proxy`) goes to Flask, which answers it as before.
"""

from __future__ import annotations

import json
import logging
import uuid

from werkzeug.datastructures import EnvironHeaders, MultiDict
from werkzeug.http import HTTP_STATUS_CODES

from common.errors import ApiError
from common.internal import ServiceClient
from gateway import forwarding
from gateway.admission import Admission

log = logging.getLogger("authport.gateway")
PREFIX = "/proxy/"
NO_ARGUMENTS = MultiDict()  # /proxy/* takes its key from the Authorization header only


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}"


class ProxyFastPath:
    """WSGI middleware: `/proxy/<endpoint>` straight to the proxy service, the rest to `app`."""

    def __init__(self, app, admission: Admission, proxy: ServiceClient, cors_headers: list[tuple[str, str]]):
        self.app = app
        self.admission = admission
        self.proxy = proxy
        self.cors_headers = cors_headers

    def handles(self, environ) -> bool:
        path = environ.get("PATH_INFO", "")
        return (path.startswith(PREFIX) and environ.get("REQUEST_METHOD") != "OPTIONS"
                and "/./" not in path + "/" and "/../" not in path + "/")

    def __call__(self, environ, start_response):
        if not self.handles(environ):
            return self.app(environ, start_response)
        try:
            return self._proxy(environ, start_response)
        except ApiError as error:
            return self._error(start_response, error)
        except Exception:  # noqa: BLE001 - the one JSON 500, as the Flask app gives
            request_id = uuid.uuid4().hex
            log.exception("unhandled error request_id=%s %s %s", request_id, environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return self._error(start_response, ApiError(
                f"An unexpected error occurred, please contact support with this unique id: {request_id}",
                code="generic_error_support", status=500))

    def _proxy(self, environ, start_response):
        method, headers = environ["REQUEST_METHOD"], EnvironHeaders(environ)
        identity, decision = self.admission.admit_request(
            method, environ["PATH_INFO"], headers, NO_ARGUMENTS, environ.get("REMOTE_ADDR") or "unknown")
        body, framing = forwarding.streamed_body(environ)
        upstream = self.proxy.request(method, forwarding.raw_target(environ), body=body,
                                      headers={**forwarding.outbound_headers(headers), **framing},
                                      identity=identity, stream=True)
        answer_headers, chunks = forwarding.streamed_answer(upstream)
        answer_headers += self.cors_headers
        if decision is not None:
            answer_headers += decision.headers().items()
        start_response(status_line(upstream.status), answer_headers)
        return chunks

    def _error(self, start_response, error: ApiError):
        payload = json.dumps(error.body(), separators=(",", ":")).encode() + b"\n"
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                   *self.cors_headers, *(getattr(error, "headers", None) or {}).items()]
        start_response(status_line(error.status), headers)
        return [payload]
