"""The environment's log records (an Authport extension; secret key only; through the gateway):

    GET /logs?type=&integration=&connection_id=&end_user_id=&outcome=&from=&to=&limit=&cursor=
    GET /logs/<id>
    GET /logs/export?from=…&to=…[&filters]   NDJSON, oldest first, streamed

and the internal route the dashboard records its sign-ins and secret reveals with:

    POST /internal/logs/dashboard {environment_id, event, user, success?, revealed?}
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import Field, StringConstraints

from common.errors import NotFound
from common.httpapp import current_identity
from common.validation import Strict, json_body, query, validate
from services.store import actors, logs, operations
from services.store.models import Environment
from services.store.views import require_secret_key

bp = Blueprint("logs", __name__)
internal = Blueprint("logs_internal", __name__, url_prefix="/internal/logs")
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9@._:+-]+$")]


@bp.before_request
def _secret_key_only():
    require_secret_key()


@bp.get("/logs")
def list_logs():
    q = query(logs.LogQuery, request.args)
    identity = current_identity()
    records, cursor = logs.page(identity.environment_id, q)
    return jsonify({"data": [logs.present(r, identity.environment) for r in records], "next_cursor": cursor})


@bp.get("/logs/<int:record_id>")
def get_log(record_id: int):
    identity = current_identity()
    return jsonify({"data": logs.present(logs.one(identity.environment_id, record_id), identity.environment)})


@bp.get("/logs/export")
def export_logs():
    q = query(logs.ExportQuery, request.args)
    identity = current_identity()
    records = logs.export(identity.environment_id, q)

    def lines():
        for record in records:
            yield json.dumps(logs.present(record, identity.environment), separators=(",", ":")) + "\n"

    # stream_with_context: the request (and its database connection) lasts until the last line.
    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")


class DashboardEvent(Strict):
    environment_id: int = Field(ge=1)
    event: Literal["sign_in", "secret_revealed"]
    user: Name
    success: bool = True
    revealed: Name | None = None  # what was shown, by name: "secret_key:default", "env_var:NAME", …


@internal.post("/dashboard")
def dashboard_event():
    """The dashboard's own records: who signed in (or failed to), who revealed which secret."""
    body = validate(DashboardEvent, json_body(request))
    if Environment.get_or_none(Environment.id == body.environment_id) is None:
        raise NotFound("Unknown environment", code="unknown_environment")
    record = operations.record(body.environment_id, f"dashboard.{body.event}", actor=f"dashboard:{body.user}",
                               request_id=actors.request_id(), success=body.success,
                               error_code=None if body.success else "sign_in_failed",
                               detail={"revealed": body.revealed} if body.revealed else {})
    return jsonify({"id": record.id}), 201
