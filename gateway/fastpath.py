"""Proxied calls (`/proxy/...`) and credential reads (`GET /connections/:id`), the most frequent
requests, handled as plain WSGI.

The same checks and the same answers as the Flask route in `gateway.app` — caller authenticated,
request charged to the plan, body and answer streamed, JSON errors, CORS and rate-limit headers —
without Flask's per-request machinery (request context, URL map, response object, hooks), which
cost about a fifth of the gateway's CPU on this call. Anything unusual (a preflight, a dot
segment, the bare `/proxy`) goes to Flask, which answers it as before.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

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


class FastPath:
    """WSGI middleware: the requests `handles` accepts answered by `_answer`, the rest by `app`."""

    route = "other"

    def __init__(self, app, admission: Admission, service: ServiceClient, cors_headers: list[tuple[str, str]],
                 redis_prefix: str | None = None):
        self.app = app
        self.admission = admission
        self.service = service
        self.cors_headers = cors_headers
        self.redis_prefix = redis_prefix  # set when the service caches credentials (it shares our Redis)

    def handles(self, environ) -> bool:
        raise NotImplementedError

    def _answer(self, environ, start_response):
        raise NotImplementedError

    def __call__(self, environ, start_response):
        if not self.handles(environ):
            return self.app(environ, start_response)
        environ[ROUTE_KEY] = self.route
        try:
            return self._answer(environ, start_response)
        except ApiError as error:
            return error_answer(start_response, error, self.cors_headers)
        except Exception:  # noqa: BLE001 - the one JSON 500, as the Flask app gives
            return error_answer(start_response, unexpected(environ), self.cors_headers)

    def _versioned(self, outbound: dict[str, str], decision) -> None:
        """Pass on the connection's versions read in our Redis round trip (`_version_keys`)."""
        if decision is not None and len(decision.peeked) == 2:
            outbound[versions.VERSIONS_HEADER] = versions.encode_versions(*decision.peeked)

    def _version_keys(self, connection_id: str | None, provider_config_key: str | None):
        """What the service's credential cache checks for this call, read in our Redis round trip
        instead of one of its own (common/credential_versions.py)."""
        if self.redis_prefix is None or not connection_id or not provider_config_key:
            return None
        prefix = self.redis_prefix
        return lambda identity: (versions.version_key(prefix, identity.environment_id, provider_config_key,
                                                      connection_id), versions.epoch_key(prefix))


class ProxyFastPath(FastPath):
    """`/proxy/<endpoint>` straight to the proxy service."""

    route = "/proxy/*"

    def handles(self, environ) -> bool:
        path = environ.get("PATH_INFO", "")
        return (path.startswith(PREFIX) and environ.get("REQUEST_METHOD") in METHODS
                and "/./" not in path + "/" and "/../" not in path + "/")

    def _answer(self, environ, start_response):
        method, headers = environ["REQUEST_METHOD"], EnvironHeaders(environ)
        identity, decision = self.admission.admit_request(
            method, environ["PATH_INFO"], headers, NO_ARGUMENTS, environ.get("REMOTE_ADDR") or "unknown",
            peek=self._version_keys(headers.get("Connection-Id"), headers.get("Provider-Config-Key")))
        body, framing = forwarding.streamed_body(environ)
        outbound = {**forwarding.outbound_headers(headers), **framing}
        self._versioned(outbound, decision)
        upstream = self.service.request(method, raw_target(environ), body=body, headers=outbound,
                                        identity=identity, stream=True)
        answer_headers, chunks = forwarding.streamed_answer(upstream)
        answer_headers += self.cors_headers
        if decision is not None:
            answer_headers += decision.headers().items()
        start_response(status_line(upstream.status), answer_headers)
        return chunks


class CredentialReadFastPath(FastPath):
    """`GET /connections/<id>` (the credential read, the hottest call after proxied ones) straight
    to the store, with the connection's versions for the store's read cache
    (services/store/read_cache.py). A body, an id with a slash or a dot segment goes to Flask."""

    route = "/connections/*"
    PREFIXES = ("/connections/", "/connection/")

    def handles(self, environ) -> bool:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
            return False
        if "HTTP_TRANSFER_ENCODING" in environ:
            return False
        path = environ.get("PATH_INFO", "")
        for prefix in self.PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                return bool(rest) and "/" not in rest and rest not in (".", "..")
        return False

    def _answer(self, environ, start_response):
        headers = EnvironHeaders(environ)
        arguments = MultiDict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        connection_id = environ["PATH_INFO"].split("/", 2)[2]
        identity, decision = self.admission.admit_request(
            "GET", environ["PATH_INFO"], headers, arguments, environ.get("REMOTE_ADDR") or "unknown",
            peek=self._version_keys(connection_id, arguments.get("provider_config_key")))
        outbound = forwarding.outbound_headers(headers)
        self._versioned(outbound, decision)
        upstream = self.service.request("GET", raw_target(environ), headers=outbound, identity=identity)
        body = upstream.data
        answer_headers = forwarding.answer_headers(upstream, body) + self.cors_headers
        if decision is not None:
            answer_headers += decision.headers().items()
        start_response(status_line(upstream.status), answer_headers)
        return [body]
