"""The dashboard process: the operator's pages. It owns no data: every page reads and every form
acts through the store's routes, as `dashboard:<user>`. Reached through the gateway at /dashboard."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

from flask import Flask, abort, g, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException

from common.dashboard_client import DashboardClient, DashboardStore
from common.errors import ApiError
from common.httpapp import HTTP_CODES, base_app, error_response, install_health, require_internal_key
from common.internal import ServiceClient
from common.settings import Settings, load_settings
from common.startup import StartupError, internal_key
from services.dashboard import csrf
from services.dashboard.access import SECURE_HINT, Gate
from services.dashboard.context import DashboardContext, actor_user, ctx, environments

log = logging.getLogger("authport.dashboard")
PREFIX = "/dashboard"
STATIC = Path(__file__).resolve().parent / "static"
CLIENT_ADDRESS_HEADER = "X-Authport-Client-Address"
CLIENT_HOST_HEADER = "X-Authport-Client-Host"
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def asset_versions() -> dict[str, str]:
    """Each static file's content hash: its URL changes with its content, so it is cached for good."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in STATIC.iterdir() if p.is_file()}


def install_gate(app: Flask) -> None:
    """Admit the request (Basic, or loopback when open), give it a session cookie, check its CSRF token."""

    @app.before_request
    def _admit():
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return None  # health probes: require_internal_key already decided
        if request.path.startswith(PREFIX + "/static/"):
            return None  # CSS and JS hold nothing secret
        state = ctx()
        verdict = state.gate.check(request.authorization, request.headers.get(CLIENT_ADDRESS_HEADER, ""),
                                   request.headers.get(CLIENT_HOST_HEADER, ""))
        if verdict.user is None:
            if verdict.first_failure:
                record_sign_in(actor_user(request.authorization.username or "_"), success=False)
            return refusal(verdict.status, verdict.reason)
        g.user = verdict.user
        g.session = request.cookies.get(csrf.COOKIE)
        if not g.session:
            g.session = g.new_session = state.csrf.new_session()
            record_sign_in(actor_user(g.user), success=True)
        if request.method == "POST" and not state.csrf.valid(request.cookies.get(csrf.COOKIE),
                                                             request.form.get(csrf.FIELD)):
            return refusal(403, "This form was sent without its security token (or with an old one). "
                                "Reload the page and try again.")
        return None

    @app.after_request
    def _headers(response):
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith(PREFIX + "/static/"):
            response.headers["Cache-Control"] = "no-store"
        new = getattr(g, "new_session", None)
        if new:
            response.set_cookie(csrf.COOKIE, new, path=PREFIX, httponly=True, samesite="Strict",
                                secure=ctx().settings.server_url.startswith("https://"))
        return response


def record_sign_in(user: str, *, success: bool) -> None:
    envs = environments()
    if envs:
        ctx().store.record(envs[0][1].environment_id, "sign_in", user, success=success)


def refusal(status: int, reason: str):
    headers = {}
    if status == 401 and not ctx().gate.open_locally:
        headers["WWW-Authenticate"] = 'Basic realm="Authport dashboard", charset="UTF-8"'
    hint = SECURE_HINT if ctx().gate.open_locally else None
    return render_template("dashboard/refused.html", status=status, reason=reason, hint=hint), status, headers


def install_error_pages(app: Flask) -> None:
    """Pages answer errors as pages (the probes and the JSON errors of base_app stay for the rest)."""

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if not request.path.startswith(PREFIX):
            message = "Route not found" if error.code == 404 else error.description
            return error_response(ApiError(message, code=HTTP_CODES.get(error.code or 500, "server_error"),
                                           status=error.code or 500))
        return render_template("dashboard/refused.html", status=error.code, reason=error.description,
                               hint=None), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        request_id = uuid.uuid4().hex
        log.exception("unhandled error request_id=%s %s %s", request_id, request.method, request.path)
        reason = f"An unexpected error occurred. Request id: {request_id}"
        if not request.path.startswith(PREFIX):
            return error_response(ApiError(reason, code="generic_error_support", status=500))
        return render_template("dashboard/refused.html", status=500, reason=reason, hint=None), 500

    @app.errorhandler(ApiError)
    def _api(error: ApiError):
        # The store unreachable (503) or refusing what a page needed to read.
        return render_template("dashboard/refused.html", status=error.status, reason=error.message,
                               hint=None), error.status


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    internal_key(settings)
    if bool(settings.NANGO_DASHBOARD_USERNAME) != bool(settings.NANGO_DASHBOARD_PASSWORD):
        missing = "NANGO_DASHBOARD_PASSWORD" if settings.NANGO_DASHBOARD_USERNAME else "NANGO_DASHBOARD_USERNAME"
        raise StartupError(f"{missing}: set both NANGO_DASHBOARD_USERNAME and NANGO_DASHBOARD_PASSWORD, or neither "
                           "(the dashboard then serves this machine only)")
    app = base_app("authport.dashboard")
    app.root_path = str(Path(__file__).resolve().parent)  # templates/ beside this file
    store = DashboardStore(settings.service_url("store"), settings.INTERNAL_API_KEY, timeout=30.0, maxsize=16)
    app.extensions["authport_dashboard"] = DashboardContext(
        settings=settings, store=store, csrf=csrf.Csrf(settings.INTERNAL_API_KEY),
        auth=DashboardClient(settings.service_url("auth"), settings.INTERNAL_API_KEY, timeout=30.0, maxsize=4),
        gate=Gate(settings.NANGO_DASHBOARD_USERNAME, settings.NANGO_DASHBOARD_PASSWORD, settings.server_url))
    require_internal_key(app, settings.INTERNAL_API_KEY)
    install_health(app, lambda: store_state(store))
    install_gate(app)
    install_error_pages(app)
    versions = asset_versions()

    @app.context_processor
    def _page_data():
        return {"asset": lambda name: f"{PREFIX}/static/{versions[name]}/{name}", "prefix": PREFIX,
                "csrf_field": csrf.FIELD, "csrf_token": ctx().csrf.token(g.session) if g.get("session") else "",
                "open_locally": ctx().gate.open_locally, "secure_hint": SECURE_HINT, "user": g.get("user")}

    @app.get(f"{PREFIX}/static/<version>/<name>")
    def static_file(version: str, name: str):
        if versions.get(name) != version:
            abort(404)
        response = send_from_directory(STATIC, name, max_age=365 * 86400)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    from services.dashboard import connection_views, integration_views, log_views, settings_views, usage_views

    for module in (integration_views, connection_views, settings_views, log_views, usage_views):
        app.register_blueprint(module.bp)
    return app


def store_state(store: ServiceClient) -> dict[str, str]:
    try:
        return {"store": "ok" if store.request("GET", "/healthz").status == 200 else "unavailable"}
    except ApiError:
        return {"store": "unreachable"}
