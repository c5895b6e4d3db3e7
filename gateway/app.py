"""The gateway: the only public process. Authenticates callers and routes to the services."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from common.errors import ApiError
from common.httpapp import base_app, error_response, install_health
from common.internal import ServiceClient, StoreClient
from common.settings import Settings, load_settings
from common.startup import StartupError, internal_key
from common.wsgi import METHODS
from gateway import openapi, root_page, routing, websockets
from gateway.admission import Admission
from gateway.fastpath import CredentialReadFastPath, ProxyFastPath
from gateway.keycache import KeyCache
from gateway.ratelimit import RateLimiter
from gateway.router import Router
from gateway.usage import UsageMeter

CORS_ALLOW_HEADERS = ("Authorization, Content-Type, Accept, Provider-Config-Key, Connection-Id, Base-Url-Override, "
                      "Retries, Retry-On, Decompress, Nango-Activity-Log-Id, Nango-Is-Dry-Run, Nango-Is-Sync, "
                      "Nango-Is-Script, Accept-Language")
DISCARD_LIMIT = 8 * 1024 * 1024
CORS_EXPOSE_HEADERS = ("Authorization, Etag, Content-Type, Content-Length, X-Nango-Signature, X-RateLimit-Limit, "
                       "X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After")


def discard_body(stream, limit: int = DISCARD_LIMIT) -> None:
    """Read and drop what is left of a refused body (up to `limit`), so that the caller's
    connection stays usable; the server closes it after a larger one."""
    while stream is not None and limit > 0:
        chunk = stream.read(min(64 * 1024, limit))
        if not chunk:
            return
        limit -= len(chunk)


CORS_HEADERS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)]


def install_cors(app: Flask) -> None:
    """Browsers may call the API from any origin (Nango's policy); preflights need no key."""

    @app.after_request
    def _cors(response):
        if routing.owner(request.path) == "dashboard":
            return response  # the operator's pages are read by their own origin only
        response.headers.update(CORS_HEADERS)
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response


def install_body_limit(app: Flask) -> None:
    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error):
        discard_body(request.environ.get("wsgi.input"))
        return error_response(ApiError("The request body is larger than the 1 MiB this route accepts",
                                       code="payload_too_large", status=413))


def service_clients(settings: Settings) -> dict[str, ServiceClient]:
    key = settings.INTERNAL_API_KEY
    return {
        "store": StoreClient(settings.service_url("store"), key),
        "auth": ServiceClient(settings.service_url("auth"), key),
        # One pooled connection per proxied call in flight (gevent worker): none opened and dropped per call.
        "proxy": ServiceClient(settings.service_url("proxy"), key, timeout=300, maxsize=settings.WORKER_CONNECTIONS),
        "dashboard": ServiceClient(settings.service_url("dashboard"), key, maxsize=8),
    }


# The API's readiness does not wait on the operator's pages: a stopped dashboard takes no API call down.
READINESS = ("store", "auth", "proxy")


def service_states(clients: dict[str, ServiceClient]) -> dict[str, str]:
    """Readiness of the gateway: every service it forwards to answers its liveness probe."""
    states = {}
    for name, client in clients.items():
        try:
            status = client.request("GET", "/healthz").status
            states[name] = "ok" if status == 200 else f"status {status}"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            states[name] = f"error: {type(exc).__name__}"
    return states


def build_admission(settings: Settings, store: StoreClient) -> Admission:
    """Key resolution and rate limits, shared through Redis when there is one."""
    if settings.WORKERS > 1 and not settings.NANGO_REDIS_URL:
        raise StartupError("WORKERS: several gateway workers need NANGO_REDIS_URL; in-memory rate-limit counters "
                           "are per process and would admit WORKERS times the plan's limit")
    limiter = RateLimiter(settings.NANGO_REDIS_URL, fail_open=settings.RATE_LIMIT_FAIL_OPEN,
                          auth_failure_limit=settings.AUTH_FAILURE_LIMIT, prefix=settings.REDIS_KEY_PREFIX)
    # With Redis, cached keys are dropped at once when the store bumps the keys epoch; without it
    # (one local process) a short lifetime bounds how long a key revoked by the admin CLI lives on.
    cache = KeyCache(ttl=10.0 if settings.NANGO_REDIS_URL else 2.0)
    return Admission(store, limiter, cache, UsageMeter(store))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    internal_key(settings)
    clients = service_clients(settings)
    admission = build_admission(settings, clients["store"])
    app = base_app("authport.gateway")
    app.config["MAX_CONTENT_LENGTH"] = None  # the owning service enforces its own limit
    redis_prefix = settings.REDIS_KEY_PREFIX if settings.NANGO_REDIS_URL else None
    app.wsgi_app = ProxyFastPath(app.wsgi_app, admission, clients["proxy"], CORS_HEADERS, redis_prefix)
    app.wsgi_app = CredentialReadFastPath(app.wsgi_app, admission, clients["store"], CORS_HEADERS, redis_prefix)
    if settings.TRUSTED_PROXIES:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.TRUSTED_PROXIES)

    install_cors(app)
    hub = websockets.Hub(settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)
    websockets.install(app, hub, settings.NANGO_SERVER_WEBSOCKETS_PATH)
    root_page.install(app, settings.server_url)
    openapi.install(app)  # its own rule: the catch-all below (and the proxy fast path) never see it
    install_body_limit(app)

    @app.get("/health")
    def health():
        return jsonify({"result": "ok"})

    install_health(app, lambda: service_states({name: clients[name] for name in READINESS}),
                   settings.INTERNAL_API_KEY)

    app.add_url_rule("/<path:_path>", "route", Router(admission, clients, hub), methods=sorted(METHODS))
    return app
