"""Logs: the environment's records, newest first, filtered as GET /logs filters them, page by page."""

from __future__ import annotations

from flask import Blueprint, abort, request

from common.dashboard_client import path_of
from services.dashboard.context import act, environment
from services.dashboard.pages import render

bp = Blueprint("logs", __name__, url_prefix="/dashboard")
PAGE_SIZE = 50
FILTERS = ("type", "integration", "connection_id", "outcome", "from", "to")


@bp.get("/<env>/logs")
def logs(env: str):
    environment(env)
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    cursor = request.args.get("cursor", "").strip() or None
    answer = act("GET", path_of("logs", limit=PAGE_SIZE, cursor=cursor, **filters))
    records = (answer.data or []) if answer.ok else []
    next_query = None
    if answer.ok and answer.body.get("next_cursor"):
        next_query = path_of("x", cursor=answer.body["next_cursor"], **filters).removeprefix("/x")
    return render("logs.html", "logs", 200 if answer.ok else 400, history=records, filters=filters,
                  next_query=next_query, error=None if answer.ok else answer.message)


@bp.get("/<env>/logs/<int:record_id>")
def record(env: str, record_id: int):
    environment(env)
    answer = act("GET", path_of("logs", str(record_id)))
    if not answer.ok:
        abort(404, answer.message)
    return render("log_record.html", "logs", record=answer.data)
