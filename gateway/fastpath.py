"""Proxied calls (`/proxy/...`), the most frequent request, handled as plain WSGI.

The same checks and the same answers as the Flask route in `gateway.app` — caller authenticated,
request charged to the plan, body and answer streamed, JSON errors, CORS and rate-limit headers —
without Flask's per-request machinery (request context, URL map, response object, hooks), which
cost about a fifth of the gateway's CPU on this call. Anything unusual (a preflight, a dot
segment, the bare `/proxy`) goes to Flask, which answers it as before.
"""

from __future__ import annotations

from werkzeug.datastructures import EnvironHeaders, MultiDict

from common import credential_versions as versions
from common.errors import ApiError
from common.internal import ServiceClient
from common.metrics import ROUTE_KEY
from common.wsgi import METHODS as PUBLIC_METHODS
from common.wsgi import error_answer, raw_target, status_line, unexpected
from gateway import forwarding
from gateway.admission import Admission

PREFIX = "/proxy/"
# What the Flask route accepts too, less OPTIONS (a preflight, answered there without a key).
METHODS = PUBLIC_METHODS - {"OPTIONS"}
NO_ARGUMENTS = MultiDict()  # /proxy/* takes its key from the Authorization header only


class ProxyFastPath:
    """WSGI middleware: `/proxy/<endpoint>` straight to the proxy service, the rest to `app`."""

    def __init__(self, app, admission: Admission, proxy: ServiceClient, cors_headers: list[tuple[str, str]],
                 redis_prefix: str | None = None):
        self.app = app
        self.admission = admission
        self.proxy = proxy
        self.cors_headers = cors_headers
        self.redis_prefix = redis_prefix  # set when the proxy caches credentials (it shares our Redis)

    def handles(self, environ) -> bool:
        path = environ.get("PATH_INFO", "")
        return (path.startswith(PREFIX) and environ.get("REQUEST_METHOD") in METHODS
                and "/./" not in path + "/" and "/../" not in path + "/")

    def __call__(self, environ, start_response):
        if not self.handles(environ):
            return self.app(environ, start_response)
        environ[ROUTE_KEY] = "/proxy/*"
        try:
            return self._proxy(environ, start_response)
        except ApiError as error:
            return error_answer(start_response, error, self.cors_headers)
        except Exception:  # noqa: BLE001 - the one JSON 500, as the Flask app gives
            return error_answer(start_response, unexpected(environ), self.cors_headers)

    def _proxy(self, environ, start_response):
        method, headers = environ["REQUEST_METHOD"], EnvironHeaders(environ)
        identity, decision = self.admission.admit_request(
            method, environ["PATH_INFO"], headers, NO_ARGUMENTS, environ.get("REMOTE_ADDR") or "unknown",
            peek=self._version_keys(headers))
        body, framing = forwarding.streamed_body(environ)
        outbound = {**forwarding.outbound_headers(headers), **framing}
        if decision is not None and len(decision.peeked) == 2:
            outbound[versions.VERSIONS_HEADER] = versions.encode_versions(*decision.peeked)
        upstream = self.proxy.request(method, raw_target(environ), body=body, headers=outbound,
                                      identity=identity, stream=True)
        answer_headers, chunks = forwarding.streamed_answer(upstream)
        answer_headers += self.cors_headers
        if decision is not None:
            answer_headers += decision.headers().items()
        start_response(status_line(upstream.status), answer_headers)
        return chunks

    def _version_keys(self, headers):
        """What the proxy's credential cache checks for this call, read in our Redis round trip
        instead of one of its own (common/credential_versions.py)."""
        connection_id, provider_config_key = headers.get("Connection-Id"), headers.get("Provider-Config-Key")
        if self.redis_prefix is None or not connection_id or not provider_config_key:
            return None
        prefix = self.redis_prefix
        return lambda identity: (versions.version_key(prefix, identity.environment_id, provider_config_key,
                                                      connection_id), versions.epoch_key(prefix))
