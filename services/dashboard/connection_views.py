"""Connections: list (search, integration filter, pages), detail without credentials, and the
lifecycle: delete, restore within 31 days, purge now — each confirmed by typing the connection id."""

from __future__ import annotations

from flask import Blueprint, abort, request

from common.dashboard_client import path_of
from services.dashboard.context import act, environment
from services.dashboard.pages import done, render

bp = Blueprint("connections", __name__, url_prefix="/dashboard")
PAGE_SIZE = 25
# The "Show" filter of live connections: GET /connections's withError (an Authport extension).
HEALTH = {"live": None, "healthy": "false", "failing": "true"}
LIFECYCLE = "connection.deleted,connection.restored,connection.purged,connection.created,connection.updated"


def recently_deleted(integration: str | None = None) -> list[dict]:
    """Connections whose latest lifecycle record is a deletion: restorable (from the logs, newest first)."""
    found = act("GET", path_of("logs", type=LIFECYCLE, integration=integration, limit=500))
    latest: dict[tuple, dict] = {}
    for record in (found.data or []) if found.ok else []:
        latest.setdefault((record["integration"], record["connection_id"]), record)
    return [r for r in latest.values() if r["type"] == "connection.deleted"]


@bp.get("/<env>/connections")
def connections(env: str):
    environment(env)
    return connections_page()


def connections_page(status: int = 200, *, error: str | None = None, connect_link: dict | None = None,
                     form: dict | None = None):
    search, integration = request.args.get("search", "").strip(), request.args.get("integration", "").strip()
    page = max(0, request.args.get("page", 0, type=int) or 0)
    if request.args.get("state") == "deleted":  # the restorable ones only, from the logs
        deleted = [d for d in recently_deleted(integration or None) if search.lower() in d["connection_id"].lower()]
        return render("connections.html", "connections", status, rows=[], search=search, integration=integration,
                      page=0, has_next=False, deleted=deleted, state="deleted", integrations=[],
                      connect_link=None, form={}, error=error)
    state = request.args.get("state") if request.args.get("state") in HEALTH else "live"
    answer = act("GET", path_of("connections", search=search, integrationId=integration, limit=PAGE_SIZE,
                                page=page, withError=HEALTH[state]))
    rows = (answer.body or {}).get("connections", []) if answer.ok else []
    integrations = act("GET", "/integrations")
    return render("connections.html", "connections", status if answer.ok else answer.status, rows=rows,
                  search=search, integration=integration, page=page, has_next=len(rows) == PAGE_SIZE,
                  deleted=recently_deleted(integration or None) if page == 0 else [],
                  integrations=(integrations.data or []) if integrations.ok else [], connect_link=connect_link,
                  state=state,
                  form=form or {}, error=error or (None if answer.ok else answer.message))


@bp.post("/<env>/connections/connect")
def connect(env: str):
    """A connect session for an end user, answered with its connect page link (shown this once: it
    carries the session token, so it is never in a dashboard URL or a later page)."""
    environment(env)
    form = {k: request.form.get(k, "").strip() for k in ("end_user_id", "end_user_email", "integration")}
    end_user = {"id": form["end_user_id"]}
    if form["end_user_email"]:
        end_user["email"] = form["end_user_email"]
    body = {"end_user": end_user}
    if form["integration"]:
        body["allowed_integrations"] = [form["integration"]]
    answer = act("POST", "/connect/sessions", body, service="auth")
    if not answer.ok:
        return connections_page(answer.status if answer.status < 500 else 502, error=answer.message, form=form)
    return connections_page(connect_link=answer.data)


def find(integration: str, connection_id: str) -> dict | None:
    answer = act("GET", path_of("connections", connectionId=connection_id, integrationId=integration, limit=1))
    rows = (answer.body or {}).get("connections", []) if answer.ok else []
    return rows[0] if rows else None


def detail_page(env: str, integration: str, connection_id: str, status: int = 200, error: str | None = None):
    connection = find(integration, connection_id)
    deleted = connection is None and any(r["connection_id"] == connection_id for r in recently_deleted(integration))
    if connection is None and not deleted:
        abort(404, f"No connection {connection_id} of {integration} in {env}.")
    history = act("GET", path_of("logs", integration=integration, connection_id=connection_id, limit=20))
    state = None
    if connection is not None:
        found = act("GET", path_of("internal", "dashboard", "connection", provider_config_key=integration,
                                   connection_id=connection_id))
        state = found.data if found.ok else None
    failures = act("GET", path_of("logs", type="refresh", outcome="failure", integration=integration,
                                  connection_id=connection_id, limit=5)) if connection is not None else None
    return render("connection.html", "connections", status, connection=connection, deleted=deleted, state=state,
                  refresh_errors=(failures.data or []) if failures is not None and failures.ok else [],
                  integration=integration, connection_id=connection_id,
                  history=(history.data or []) if history.ok else [], error=error)


@bp.get("/<env>/connections/<integration>/<path:connection_id>")
def connection(env: str, integration: str, connection_id: str):
    environment(env)
    return detail_page(env, integration, connection_id)


def lifecycle(env: str, integration: str, connection_id: str, method: str, action: str, notice: str):
    environment(env)
    if request.form.get("confirm", "") != connection_id:
        return detail_page(env, integration, connection_id, 400,
                           f"Type the connection id ({connection_id}) to confirm.")
    segments = ("connections", connection_id) + ((action,) if action else ())
    answer = act(method, path_of(*segments, provider_config_key=integration))
    if not answer.ok:
        return detail_page(env, integration, connection_id, answer.status, answer.message)
    return done(env, "connections", notice)


@bp.post("/<env>/connections/<integration>/<path:connection_id>/delete")
def delete(env: str, integration: str, connection_id: str):
    return lifecycle(env, integration, connection_id, "DELETE", "", "connection_deleted")


@bp.post("/<env>/connections/<integration>/<path:connection_id>/restore")
def restore(env: str, integration: str, connection_id: str):
    return lifecycle(env, integration, connection_id, "POST", "restore", "connection_restored")


@bp.post("/<env>/connections/<integration>/<path:connection_id>/purge")
def purge(env: str, integration: str, connection_id: str):
    return lifecycle(env, integration, connection_id, "POST", "purge", "connection_purged")
