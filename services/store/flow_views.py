"""Internal routes of the auth flows: auth persists sessions and captured connections here, and
the gateway resolves connect session tokens. Only sibling services reach them (internal secret)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from services.store import flows
from services.store.context import ctx

bp = Blueprint("flows", __name__, url_prefix="/internal")


def body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError("A JSON object is required", code="invalid_body")
    return data


@bp.post("/connect-sessions")
def create_connect_session():
    data = body()
    row = flows.create_connect_session(ctx(), int(data["environment_id"]), data)
    return jsonify(flows.session_view(row)), 201


@bp.post("/connect-sessions/resolve")
def resolve_connect_session():
    token = body().get("token")
    identity = flows.resolve_token(ctx(), token) if isinstance(token, str) else None
    if identity is None:
        return jsonify({"error": {"code": "unknown_connect_session_token"}}), 404
    return jsonify({"identity": identity.to_dict()})


@bp.get("/connect-sessions/<int:session_id>")
def get_connect_session(session_id: int):
    return jsonify(flows.session_view(flows.get_session(session_id)))


@bp.delete("/connect-sessions/<int:session_id>")
def delete_connect_session(session_id: int):
    flows.delete_session(session_id)
    return jsonify({"success": True})


@bp.post("/flows/start")
def start_flow():
    data = body()
    public = data.get("public")
    return jsonify(flows.start(ctx(), int(data["environment_id"]), str(data["provider_config_key"]),
                               data.get("connect_session_id"), public if isinstance(public, dict) else None))


@bp.post("/oauth-sessions")
def create_oauth_session():
    flows.create_oauth_session(ctx(), body())
    return jsonify({"success": True}), 201


@bp.post("/oauth-sessions/consume")
def consume_oauth_session():
    state = body().get("state")
    if not isinstance(state, str) or not state:
        raise ApiError("state is required", code="unknown_state", status=404)
    return jsonify(flows.consume_oauth_session(ctx(), state))


@bp.post("/flows/connections")
def capture_connection():
    return jsonify(flows.capture(ctx(), body())), 201
