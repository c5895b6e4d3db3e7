"""Nango's environment routes (reached through the gateway), for a secret key of the account's prod
environment (services/store/environments.py):

    POST   /environments {name, is_production?}          200 {data: {id, name}}
    DELETE /environments/<id>                            204
    POST   /environment/api-keys {environment_id, display_name}
                                                         200 {data: {id, display_name, scopes, secret, created_at}}
    DELETE /environment/api-keys {environment_id, key_id}  204

Each committed change that removes keys bumps the keys epoch, so every gateway forgets the keys it
cached at once, as a revocation through /environment/keys does.
"""

from __future__ import annotations

from flask import Blueprint, request

from common.errors import ApiError, field_error
from common.httpapp import current_identity
from common.validation import json_body
from services.store import environments
from services.store.context import ctx
from services.store.formatters import iso
from services.store.key_views import _who, announce

bp = Blueprint("environments", __name__)
FULL_ACCESS = ["environment:*"]  # every Authport secret key has full access to its environment


@bp.before_request
def _account_caller_only():
    request.get_data(cache=True)  # read the body even when refusing, so the connection stays usable
    ident = current_identity()
    if not environments.caller_may_manage(ident.key_kind, ident.environment):
        raise ApiError("Managing environments and their API keys needs a secret key of the account's prod "
                       "environment.", code="forbidden", status=403)


def body_of(allowed: dict[str, type]) -> dict:
    """The JSON object body with exactly the `allowed` fields (each required unless typed `None`)."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object.", code="invalid_body",
                       errors=[field_error([], "Expected object", "invalid_type")])
    unknown = sorted(set(body) - set(allowed))
    errors = [field_error([], f"Unrecognized key(s): {', '.join(unknown)}", "unrecognized_keys")] if unknown else []
    for name, kind in allowed.items():
        value = body.get(name)
        optional = name.startswith("is_")
        if value is None and optional:
            continue
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            errors.append(field_error([name], f"{name} must be a {kind.__name__}", "invalid_type"))
    if errors:
        raise ApiError("; ".join(e["message"] for e in errors), code="invalid_body", errors=errors)
    return body


@bp.post("/environments")
def create_environment():
    body = body_of({"name": str, "is_production": bool})
    ident = current_identity()
    env = environments.create(ctx().cipher, ident.account_id, body["name"], **_who())
    return {"data": {"id": env.id, "name": env.name}}, 200


@bp.delete("/environments/<env_id>")
def delete_environment(env_id: str):
    ident = current_identity()
    number = int(env_id) if env_id.isdigit() else None
    environments.delete(ident.account_id, number, caller_environment_id=ident.environment_id, **_who())
    announce()
    return "", 204


@bp.post("/environment/api-keys")
def create_api_key():
    body = body_of({"environment_id": int, "display_name": str})
    row, secret = environments.add_api_key(ctx().cipher, current_identity().account_id, body["environment_id"],
                                           body["display_name"], **_who())
    announce()
    return {"data": {"id": row.id, "display_name": row.name, "scopes": FULL_ACCESS, "secret": secret,
                     "created_at": iso(row.created_at)}}, 200


@bp.delete("/environment/api-keys")
def delete_api_key():
    body = body_of({"environment_id": int, "key_id": int})
    environments.delete_api_key(current_identity().account_id, body["environment_id"], body["key_id"], **_who())
    announce()
    return "", 204
