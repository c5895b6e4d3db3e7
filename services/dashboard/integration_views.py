"""Integrations: list, create from the provider catalogue, delete (naming the connections it takes)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, abort, g, redirect, request

from common.dashboard_client import path_of
from services.dashboard.context import act, ctx, environment, environments
from services.dashboard.pages import done, render

bp = Blueprint("integrations", __name__, url_prefix="/dashboard")
SHOWN_MATCHES = 50
OAUTH_MODES = {"OAUTH1", "OAUTH2", "TBA", "MCP_OAUTH2", "AWS_SIGV4"}  # AWS_SIGV4: the AWS access key id and secret
SECTIONS = ("integrations", "connections", "settings", "logs", "usage")


@bp.get("")
@bp.get("/")
def home():
    envs = environments()
    if not envs:
        abort(404, "This account has no environment.")
    return redirect(f"/dashboard/{envs[0][0]}/integrations", code=303)


@bp.get("/switch")
def switch():
    section = request.args.get("section") if request.args.get("section") in SECTIONS else "integrations"
    environment(request.args.get("env", ""))
    return redirect(f"/dashboard/{g.environment.environment}/{section}", code=303)


@bp.get("/<env>/integrations")
def integrations(env: str):
    environment(env)
    answer = act("GET", "/integrations")
    return render("integrations.html", "integrations", integrations=answer.data or [],
                  error=None if answer.ok else answer.message)


def new_page(status: int = 200, error: str | None = None, form: dict | None = None):
    q = (request.values.get("q") or "").strip()
    provider = (request.values.get("provider") or "").strip()
    matches, entry = [], None
    if q:
        found = act("GET", path_of("providers", search=q))
        matches = found.data or [] if found.ok else []
    if provider:
        chosen = act("GET", path_of("providers", provider))
        entry = chosen.data if chosen.ok else None
        if entry is None:
            error, provider = error or chosen.message, ""
    return render("integration_new.html", "integrations", status, q=q, matches=matches[:SHOWN_MATCHES],
                  total=len(matches), provider=provider, provider_name=(entry or {}).get("display_name", provider),
                  oauth=(entry or {}).get("auth_mode") in OAUTH_MODES, form=form or {"unique_key": provider},
                  callback_url=ctx().settings.callback_url, error=error)


@bp.get("/<env>/integrations/new")
def new_integration(env: str):
    environment(env)
    return new_page()


def credential_type(provider: str) -> str:
    """The OAuth app type the store expects for this provider (OAUTH2 unless it is OAuth 1 or TBA)."""
    found = act("GET", path_of("providers", provider)) if provider else None
    mode = ((found.data or {}) if found is not None and found.ok else {}).get("auth_mode")
    return mode if mode in ("OAUTH1", "TBA") else "OAUTH2"


def app_credentials(form, provider: str) -> dict | None:
    """The OAuth app credentials of a form, or None when it leaves them out (a secret left empty)."""
    if not (form.get("client_id", "").strip() or form.get("client_secret", "")):
        return None
    credentials = {"type": credential_type(provider), "client_id": form.get("client_id", "").strip(),
                   "client_secret": form.get("client_secret", "")}
    if form.get("scopes", "").strip():
        credentials["scopes"] = form["scopes"].strip()
    if form.get("webhook_secret", ""):
        credentials["webhook_secret"] = form["webhook_secret"]
    return credentials


def creation_body(form) -> dict:
    body = {"provider": form.get("provider", ""), "unique_key": form.get("unique_key", "").strip()}
    if form.get("display_name", "").strip():
        body["display_name"] = form["display_name"].strip()
    credentials = app_credentials(form, body["provider"])
    if credentials:
        body["credentials"] = credentials
    return body


@bp.post("/<env>/integrations/new")
def create_integration(env: str):
    environment(env)
    answer = act("POST", "/integrations", creation_body(request.form))
    if not answer.ok:
        kept = {k: request.form.get(k, "") for k in ("unique_key", "display_name", "client_id", "scopes")}
        return new_page(400 if answer.status < 500 else answer.status, answer.message, kept)
    return done(env, "integrations", "integration_created")


def affected(key: str) -> list[dict]:
    found = act("GET", path_of("connections", integrationId=key, limit=101))
    return (found.body or {}).get("connections", []) if found.ok else []


@bp.get("/<env>/integrations/<path:key>/delete")
def confirm_delete(env: str, key: str):
    environment(env)
    shown = act("GET", path_of("integrations", key))
    if not shown.ok:
        abort(404, shown.message)
    connections = affected(key)
    return render("integration_delete.html", "integrations", key=key, connections=connections[:100],
                  more=len(connections) > 100)


@bp.post("/<env>/integrations/<path:key>/delete")
def delete_integration(env: str, key: str):
    environment(env)
    answer = act("DELETE", path_of("integrations", key))
    if not answer.ok:
        return render("integration_delete.html", "integrations", answer.status, key=key,
                      connections=affected(key), more=False, error=answer.message)
    return done(env, "integrations", "integration_deleted")


def edit_page(key: str, status: int = 200, error: str | None = None, form: dict | None = None):
    shown = act("GET", path_of("integrations", key, include="credentials"))
    if not shown.ok:
        abort(404, shown.message)
    record = shown.data
    credentials = record.get("credentials") or {}
    form = form or {"display_name": record.get("display_name", ""), "client_id": credentials.get("client_id") or "",
                    "scopes": credentials.get("scopes") or ""}
    return render("integration_edit.html", "integrations", status, key=key, integration=record, form=form,
                  callback_url=ctx().settings.callback_url, webhook_url=inbound_webhook_url(key), error=error,
                  has_webhook_secret=bool(credentials.get("webhook_secret")))


def inbound_webhook_url(key: str) -> str | None:
    """Where the provider sends its webhooks for this integration (POST /webhook/:env uuid/:key)."""
    found = act("GET", "/internal/dashboard/environment")
    if not found.ok:
        return None
    return f"{ctx().settings.server_url}/webhook/{found.data['uuid']}/{quote(key, safe='')}"


@bp.get("/<env>/integrations/<path:key>/edit")
def edit_integration(env: str, key: str):
    environment(env)
    return edit_page(key)


@bp.post("/<env>/integrations/<path:key>/edit")
def update_integration(env: str, key: str):
    environment(env)
    body = {"display_name": request.form.get("display_name", "").strip() or None}
    provider = request.form.get("provider", "")
    credentials = app_credentials(request.form, provider) if request.form.get("client_secret") else None
    if credentials:
        body["credentials"] = credentials
    answer = act("PATCH", path_of("integrations", key), {k: v for k, v in body.items() if v is not None})
    if not answer.ok:
        kept = {k: request.form.get(k, "") for k in ("display_name", "client_id", "scopes")}
        return edit_page(key, answer.status if answer.status < 500 else 502, answer.message, kept)
    return done(env, "integrations", "integration_updated")
