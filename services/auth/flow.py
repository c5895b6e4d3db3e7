"""The start every flow shares: the caller's query, the integration and its provider, the
session's limits and defaults, and the connection id the flow will write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from common.errors import ApiError
from common.fields import connection_id_problem
from common.identity import Identity
from common.validation import parse_query
from services.auth.context import AuthContext

FLOW_QUERY = {"connection_id", "ws_client_id", "params", "authorization_params", "credentials", "user_scope",
              "hmac", "connect_session_token", "public_key"}


@dataclass
class Flow:
    identity: Identity
    provider_config_key: str
    integration: dict
    provider: dict
    session: dict | None
    connection_id: str | None
    ws_client_id: str | None = None
    connection_config: dict = field(default_factory=dict)
    authorization_params: dict = field(default_factory=dict)
    credentials: dict = field(default_factory=dict)
    user_scope: str | None = None
    scopes: Any = None
    may_overwrite: bool = False  # proved by hmac (public key) or a reconnect session; the store checks again

    @property
    def auth_mode(self) -> str:
        return self.provider.get("auth_mode", "")

    @property
    def session_id(self) -> int | None:
        return self.session["id"] if self.session else None


def _texts(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_query(args: MultiDict) -> dict:
    """The flow's query string (bracket notation parsed); unknown keys are ignored."""
    raw = parse_query(args)
    return {
        "connection_id": _text(raw.get("connection_id")), "ws_client_id": _text(raw.get("ws_client_id")),
        "params": _texts(raw.get("params")), "authorization_params": _texts(raw.get("authorization_params")),
        "credentials": _texts(raw.get("credentials")), "user_scope": _text(raw.get("user_scope")),
        "hmac": _text(raw.get("hmac")), "with_session": "connect_session_token" in raw,
    }


def query_error(message: str, path: str) -> ApiError:
    return ApiError(code="invalid_query_params", status=400, message=message, errors=[
        {"code": "custom", "message": message, "path": [path]}])


def begin(app: AuthContext, identity: Identity, key: str, query: dict) -> Flow:
    """Load what the flow needs and apply the session's rules; raises the JSON-shaped errors."""
    if identity.key_kind == "connect_session" and query["connection_id"]:
        raise query_error("connection_id cannot be used with a connect session token", "connection_id")
    if query["connection_id"] and (problem := connection_id_problem(query["connection_id"])):
        raise query_error(problem, "connection_id")
    session_id = identity.key_id if identity.key_kind == "connect_session" else None
    public = ({"connection_id": query["connection_id"], "hmac": query.get("hmac")}
              if identity.key_kind == "public" else None)
    started = app.store.start_flow(identity.environment_id, key, session_id, public)
    integration, session = started["integration"], started["session"]
    provider = app.catalogue.get(integration["provider"])
    if provider is None:
        raise ApiError(f"Provider {integration['provider']} is not in the catalogue",
                       code="unknown_provider_template", status=404)
    allowed = (session or {}).get("allowed_integrations")
    if allowed is not None and key not in allowed:
        raise ApiError("This integration is not allowed for this connect session", code="integration_not_allowed",
                       status=400)
    flow = Flow(identity=identity, provider_config_key=key, integration=integration, provider=provider,
                session=session, connection_id=query["connection_id"], ws_client_id=query["ws_client_id"],
                authorization_params=dict(query["authorization_params"]), credentials=dict(query["credentials"]),
                user_scope=query["user_scope"], scopes=integration.get("scopes"),
                may_overwrite=started.get("may_overwrite") is True)
    flow.connection_config = {k: v for k, v in query["params"].items() if k != "webhook_url"}
    _apply_defaults(flow, ((session or {}).get("integrations_config_defaults") or {}).get(key) or {})
    if session and session.get("reconnect_connection_id"):
        flow.connection_id = session["reconnect_connection_id"]
    return flow


def _apply_defaults(flow: Flow, defaults: dict) -> None:
    """The session's per-integration defaults win over what the browser sent."""
    if defaults.get("user_scopes"):
        flow.user_scope = defaults["user_scopes"]
    if defaults.get("authorization_params") is not None:
        flow.authorization_params = dict(defaults["authorization_params"])
    config = dict(defaults.get("connection_config") or {})
    override = config.pop("oauth_scopes_override", None)
    if override:
        flow.scopes = override
    flow.connection_config.update(config)
