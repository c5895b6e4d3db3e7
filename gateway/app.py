"""The gateway: the only public process. Authenticates callers and routes to the services."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from common import metrics
from common.errors import ApiError, NotFound
from common.httpapp import base_app, error_response, install_health
from common.internal import ServiceClient, StoreClient
from common.settings import Settings, load_settings
from common.startup import StartupError
from gateway import forwarding, openapi, root_page, routing, websockets
from gateway.admission import Admission
from gateway.fastpath import ProxyFastPath
from gateway.keycache import KeyCache
from gateway.ratelimit import RateLimiter
from gateway.usage import UsageMeter

CORS_ALLOW_HEADERS = ("Authorization, Content-Type, Accept, Provider-Config-Key, Connection-Id, Base-Url-Override, "
                      "Retries, Retry-On, Decompress, Nango-Activity-Log-Id, Nango-Is-Dry-Run, Nango-Is-Sync, "
                      "Nango-Is-Script, Accept-Language")
SERVICE_BODY_LIMIT = 1024 * 1024  # what every service but the proxy accepts (common.httpapp)
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


def dashboard_route(client: ServiceClient, cache: KeyCache):
    """The dashboard's pages, passed through without an API key (it admits its own users)."""
    request.max_content_length = SERVICE_BODY_LIMIT
    response = forwarding.forward(client, None, headers=forwarding.dashboard_headers(
        request.headers, request.remote_addr or "unknown"))
    if request.method == "POST" and response.status_code < 400:
        cache.clear()  # the operator may just have rotated or revoked a key of this gateway's callers
    return response


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    if not settings.INTERNAL_API_KEY:
        raise StartupError("INTERNAL_API_KEY: must be set (the secret services require from each other)")
    clients = service_clients(settings)
    admission = build_admission(settings, clients["store"])
    cache = admission.cache
    app = base_app("authport.gateway")
    app.config["MAX_CONTENT_LENGTH"] = None  # the owning service enforces its own limit
    app.wsgi_app = ProxyFastPath(app.wsgi_app, admission, clients["proxy"], CORS_HEADERS,
                                 settings.REDIS_KEY_PREFIX if settings.NANGO_REDIS_URL else None)
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

    @app.route("/<path:_path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND",
                                         "REPORT"])  # the last two: WebDAV calls the SDK proxies
    def route(_path: str):
        # "." and ".." segments are refused: the HTTP client removes them when forwarding, so
        # "/connections/../internal/..." would reach a service's internal routes with our secret.
        request.environ[metrics.ROUTE_KEY] = routing.template(request.path)
        dot_segment = any(segment in (".", "..") for segment in request.path.split("/"))
        area = None if dot_segment else routing.unsupported(request.path, request.method)
        if area is not None:
            if request.method == "OPTIONS":
                return "", 204
            admission.admit_request(request.method, request.path, request.headers, request.args,
                                    request.remote_addr or "unknown")  # who may ask is asked first
            raise ApiError(f"{area} are a Nango feature Authport does not implement.",
                           code="not_supported_by_authport", status=501)
        service = None if dot_segment or area is not None else routing.owner(request.path)
        if service is None:
            raise NotFound("Route not found")
        if service == "dashboard":
            return dashboard_route(clients["dashboard"], cache)
        if request.method == "OPTIONS":
            return "", 204
        if service != "proxy":
            # Refuse an oversized body here, before it is sent on: a service that answers 413 without
            # reading the body closes the connection, and the next request sent on it would fail.
            request.max_content_length = SERVICE_BODY_LIMIT
        try:
            identity, decision = admission.admit_request(request.method, request.path, request.headers, request.args,
                                                         request.remote_addr or "unknown")
        except ApiError as error:
            if error.status == 401 and request.path.startswith("/oauth/connect/"):
                return websockets.refuse_popup(hub, error, request.path, request.args)
            raise
        # Streamed both ways: proxied calls, and the log export (a SIEM's time range, any size).
        response = forwarding.forward(clients[service], identity,
                                      stream=service == "proxy" or request.path == "/logs/export")
        hub.relay(response)
        if decision is not None:
            response.headers.update(decision.headers())
        if service == "store" and request.path.startswith("/environment/") and response.status_code < 400:
            cache.clear()  # a key of this gateway's callers may just have changed
        return response

    return app
