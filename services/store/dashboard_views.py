"""What the dashboard needs from the store beyond the public routes it calls like any caller:

    GET /internal/dashboard/environments   the default account's environments, each with the
                                           identity the dashboard sends to act in it
    GET /internal/dashboard/environment    the identity's environment: {"data": {"uuid"}} (the
                                           path segment of its provider webhook URLs)
    GET /internal/dashboard/usage          the account's requests and 429s per minute over the
                                           last hour (and this environment's share), its limit
    GET /internal/dashboard/connection?provider_config_key=&connection_id=
                                           what the detail page shows beyond the list's item: the
                                           connection config, token expiry and refresh state (no
                                           credential is decrypted)
    PUT    /internal/dashboard/environment-variables/<name> {"value": str}   set one (the API
    DELETE /internal/dashboard/environment-variables/<name>                  only lists them)

The two variable routes act in the environment of the identity headers, through the same
`envvars` functions as the admin CLI, recorded by name (never the value) under the actor.

The dashboard then calls the public routes (/integrations, /connections, /logs, …) with those
identity headers and `X-Authport-Actor: dashboard:<user>` (honoured by `actors`, internal callers
only), so its changes go through the same code, validation and records as the API's.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError, NotFound, field_error
from common.httpapp import current_identity
from common.identity import Identity
from common.validation import json_body
from services.store import actors, envvars, formatters, keys, usage
from services.store.bootstrap import DEFAULT_ACCOUNT
from services.store.context import ctx
from services.store.models import Account, Connection, Environment, Integration

bp = Blueprint("dashboard_internal", __name__, url_prefix="/internal/dashboard")


@bp.get("/environments")
def environments():
    account = Account.get_or_none(Account.name == DEFAULT_ACCOUNT)
    if account is None:
        return jsonify({"data": []})
    rows = Environment.select().where(Environment.account == account).order_by(Environment.id)
    # key_id 0: the dashboard acts with no API key; its actor header names who it is.
    return jsonify({"data": [
        {"name": env.name, "identity": Identity(
            account_id=account.id, environment_id=env.id, environment=env.name, plan=account.plan,
            rate_limit=keys.plan_limit(account), key_kind="secret", key_id=0).to_dict()}
        for env in rows
    ]})


@bp.get("/environment")
def current_environment():
    return jsonify({"data": {"uuid": Environment.get_by_id(current_identity().environment_id).uid}})


MAX_VALUE = 16 * 1024


def _variable_name(name: str) -> str:
    if not envvars.NAME.match(name):
        message = "A variable name is letters, digits and underscores, not starting with a digit (at most 256)."
        raise ApiError(message, code="invalid_uri_params", errors=[field_error(["name"], message)])
    return name


@bp.put("/environment-variables/<name>")
def set_variable(name: str):
    identity = current_identity()
    body = json_body(request)
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str) or len(value) > MAX_VALUE or set(body) != {"value"}:
        message = f"The body must be a JSON object with a value: a string of at most {MAX_VALUE} characters."
        raise ApiError(message, code="invalid_body", errors=[field_error(["value"], message)])
    envvars.set_value(ctx(), identity.environment_id, _variable_name(name), value, actor=actors.current_actor())
    return jsonify({"success": True})


@bp.delete("/environment-variables/<name>")
def delete_variable(name: str):
    identity = current_identity()
    if not envvars.delete(identity.environment_id, _variable_name(name), actor=actors.current_actor()):
        raise NotFound(f"No environment variable {name}", code="unknown_environment_variable")
    return jsonify({"success": True})


@bp.get("/usage")
def usage_last_hour():
    identity = current_identity()
    return jsonify({"plan": identity.plan, "limit": identity.rate_limit,
                    "minutes": usage.last_hour(identity.account_id, identity.environment_id)})


@bp.get("/connection")
def connection_state():
    identity = current_identity()
    key, connection_id = request.args.get("provider_config_key", ""), request.args.get("connection_id", "")
    conn = (Connection.select(Connection).join(Integration)
            .where((Connection.environment == identity.environment_id) & (Integration.unique_key == key)
                   & (Connection.connection_id == connection_id) & Connection.deleted_at.is_null()
                   & Integration.deleted_at.is_null())
            .first())
    if conn is None:
        raise NotFound("Failed to find connection", code="unknown_connection")
    return jsonify({"data": {
        "connection_config": conn.connection_config or {},
        "credentials_type": conn.credentials_type,
        "expires_at": formatters.iso(conn.expires_at),
        "last_fetched_at": formatters.iso(conn.last_fetched_at),
        "last_refresh_success": formatters.iso(conn.last_refresh_success),
        "last_refresh_failure": formatters.iso(conn.last_refresh_failure),
        "refresh_attempts": conn.refresh_attempts,
        "refresh_exhausted": bool(conn.refresh_exhausted),
        "updated_at": formatters.iso(conn.updated_at),
    }})
