"""`/proxy` and `/proxy/<endpoint>` served as plain WSGI, in front of the Flask app.

The proxied call is the most frequent request; Flask's per-request machinery (request context,
URL map, hooks, response object) cost about a fifth of the proxy's CPU on it. This middleware
does what the Flask app would — the internal secret checked in constant time, the identity the
gateway resolved, the one JSON error shape — and hands everything else (`/egress-ips`, health)
to Flask.
"""

from __future__ import annotations

from werkzeug.datastructures import EnvironHeaders

from common.credential_versions import VERSIONS_HEADER, decode_versions
from common.errors import ApiError, Forbidden, MethodNotAllowed, Unauthorized
from common.identity import Identity, require_secret
from common.wsgi import METHODS, carries_internal_key, error_answer, raw_target, status_line, unexpected
from services.proxy import contract
from services.proxy.calls import Body, ProxyCalls

FORBIDDEN = Forbidden("This service only accepts requests from Authport itself.")
_VERSIONS = "HTTP_" + VERSIONS_HEADER.upper().replace("-", "_")


def proxy_target(environ) -> tuple[str, str]:
    """(path after /proxy, query) exactly as sent, percent-encoding kept."""
    path, _, query = raw_target(environ).partition("?")
    return path[len("/proxy"):], query


def request_body(environ, max_replay: int) -> Body:
    """Small bodies are kept (so retries can resend them); larger ones stream straight through."""
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    length = int(declared) if declared.isdigit() else None
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not length and not chunked:
        return Body(None, True, {})
    stream = environ["wsgi.input"]
    if length is not None and length <= max_replay:
        return Body(stream.read(length), True, {})
    return Body(stream, False, {"Content-Length": str(length)} if length is not None else {})


class ProxyPassage:
    def __init__(self, app, calls: ProxyCalls, internal_key: str, settings):
        self.app = app
        self.calls = calls
        self.internal_key = internal_key
        self.max_retries = settings.PROXY_MAX_RETRIES
        self.max_replay = settings.PROXY_MAX_REPLAY_BYTES

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != "/proxy" and not path.startswith("/proxy/"):
            return self.app(environ, start_response)
        try:
            return self._proxy(environ, start_response)
        except ApiError as error:
            return error_answer(start_response, error)
        except Exception:  # noqa: BLE001 - the one JSON 500, as the Flask app gives
            return error_answer(start_response, unexpected(environ))

    def _proxy(self, environ, start_response):
        if not carries_internal_key(environ, self.internal_key):
            raise FORBIDDEN
        if environ["REQUEST_METHOD"] not in METHODS:
            raise MethodNotAllowed(f"Method {environ['REQUEST_METHOD']} not allowed on this route",
                                   headers={"Allow": ", ".join(sorted(METHODS))})
        headers = EnvironHeaders(environ)
        identity = Identity.from_headers(headers)
        if identity is None:
            raise Unauthorized("The request carries no resolved identity.")
        require_secret(identity, "Proxied calls need the environment's secret key.")
        endpoint, query = proxy_target(environ)
        call = contract.parse(headers, endpoint, query, max_retries=self.max_retries)
        answer = self.calls.run(identity, call, environ["REQUEST_METHOD"], request_body(environ, self.max_replay),
                                decode_versions(environ.get(_VERSIONS)))
        start_response(status_line(answer.status), answer.headers)
        return answer.body
