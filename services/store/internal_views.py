"""Routes only sibling services call (the gateway resolving a key)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from services.store import keys
from services.store.context import ctx

bp = Blueprint("internal", __name__, url_prefix="/internal")


@bp.post("/keys/resolve")
def resolve_key():
    body = request.get_json(silent=True) or {}
    secret, kind = body.get("key"), body.get("kind", "secret")
    if not isinstance(secret, str) or kind not in ("secret", "public"):
        raise ApiError("key (string) and kind (secret|public) are required", code="invalid_body")
    identity = keys.resolve(ctx().cipher, secret, kind)
    if identity is None:
        return jsonify({"error": {"code": "unknown_key"}}), 404
    return jsonify({"identity": identity.to_dict()})
