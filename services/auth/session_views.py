"""Connect sessions: created with the secret key, then used by a frontend (or the connect_link
page) to run flows for one end user. The token is shown once; the store keeps only its hash."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from common.httpapp import current_identity
from common.identity import require_secret
from common.validation import json_body, validate
from services.auth.context import ctx
from services.auth.schemas import ConnectSessionCreate, ReconnectSessionCreate, dump

bp = Blueprint("connect_sessions", __name__)
TOKEN_PREFIX = "nango_connect_session_"
SESSION_TTL = timedelta(minutes=30)


def require_kind(kind: str) -> None:
    if current_identity().key_kind != kind:
        if kind == "secret":
            require_secret(current_identity())
        raise ApiError("Authentication failed. This route needs a connect session token.",
                       code="invalid_connect_session_token_format", status=401, payload={})


def _body(schema):
    data = json_body(request)
    if schema is ConnectSessionCreate and isinstance(data, dict) and "end_user" not in data and "tags" not in data:
        raise ApiError(code="invalid_body", status=400, message=None, errors=[{
            "code": "invalid_type", "message": "Invalid input: expected object, received undefined",
            "path": ["end_user"]}])
    return dump(validate(schema, data))


def issue(data: dict, reconnect: dict | None):
    """Create the session and answer 201 with its token, shown this once."""
    token = TOKEN_PREFIX + secrets.token_hex(32)
    expires_at = datetime.now(UTC) + SESSION_TTL
    ctx().store.create_connect_session(current_identity().environment_id, {
        **data, "token": token, "ttl_seconds": int(SESSION_TTL.total_seconds()), "reconnect": reconnect})
    link = f"{ctx().settings.connect_url}/?session_token={quote(token, safe='')}"
    stamp = expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return jsonify({"data": {"token": token, "connect_link": link, "expires_at": stamp}}), 201


@bp.post("/connect/sessions")
def create_session():
    require_kind("secret")
    return issue(_body(ConnectSessionCreate), None)


@bp.post("/connect/sessions/reconnect")
def create_reconnect_session():
    require_kind("secret")
    data = _body(ReconnectSessionCreate)
    reconnect = {"connection_id": data.pop("connection_id"), "integration_id": data.pop("integration_id")}
    return issue(data, reconnect)


def present(session: dict) -> dict:
    end_user = session.get("end_user")
    if end_user:
        org = session.get("organization")
        end_user = {"id": end_user["id"], "email": end_user.get("email"), "display_name": end_user.get("display_name"),
                    "tags": end_user.get("tags"),
                    "organization": {"id": org["id"], "display_name": org.get("display_name")} if org else None}
    data = {"endUser": end_user, "connectUISettings": {"showWatermark": False, "theme": {}},
            "isReconnecting": bool(session.get("reconnect_connection_id")),
            "websocketsPath": ctx().settings.NANGO_SERVER_WEBSOCKETS_PATH}
    for name in ("allowed_integrations", "integrations_config_defaults", "overrides"):
        if session.get(name) is not None:
            data[name] = session[name]
    return {"data": data}


@bp.get("/connect/session")
def get_session():
    require_kind("connect_session")
    return jsonify(present(ctx().store.connect_session(current_identity().key_id)))


@bp.delete("/connect/session")
def delete_session():
    require_kind("connect_session")
    ctx().store.delete_connect_session(current_identity().key_id)
    return "", 204
