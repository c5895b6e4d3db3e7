"""What the auth service persists while it runs a flow: connect sessions, OAuth sessions, and the
connection a flow captured. No Flask here; `flow_views` exposes it to auth and the gateway."""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import timedelta

from common.errors import ApiError, NotFound, field_error
from common.identity import Identity
from common.validation import validate
from services.store import actors, connections, hmac_keys, keys, operations, webhooks
from services.store import integrations as integrations_domain
from services.store.context import StoreContext
from services.store.formatters import iso
from services.store.models import Account, ConnectSession, Environment, OAuthSession, utcnow
from services.store.schemas import ConnectionImport

# A connect session stays readable this long after it expires, so that a flow started just
# before the end can still carry its end user onto the connection at the callback.
SESSION_GRACE = timedelta(hours=1)


class UnknownSession(ApiError):
    status = 401
    code = "unknown_connect_session_token"
    message = "The provided connect session token does not match any valid session."


def _invalid(issues: list[dict]) -> ApiError:
    return ApiError(code="invalid_body", status=400, message=None, errors=issues)


def _check_integrations(env_id: int, body: dict) -> None:
    live = {r.unique_key for r in integrations_domain.list_all(env_id)}
    issues = [field_error(["allowed_integrations", i], "Integration does not exist", "custom")
              for i, key in enumerate(body.get("allowed_integrations") or []) if key not in live]
    for name in ("integrations_config_defaults", "overrides"):
        issues += [field_error([name, key], "Integration does not exist", "custom")
                   for key in (body.get(name) or {}) if key not in live]
    if issues:
        raise _invalid(issues)


def create_connect_session(ctx: StoreContext, env_id: int, body: dict) -> ConnectSession:
    """Store a session under the hash of its token (the token itself is never kept)."""
    reconnect = body.get("reconnect")
    if reconnect:
        if connections.find(env_id, reconnect["integration_id"], reconnect["connection_id"]) is None:
            raise ApiError("ConnectionID or IntegrationId does not exists", code="invalid_body", status=400)
        body = {**body, "allowed_integrations": [reconnect["integration_id"]]}
    _check_integrations(env_id, body)
    now = utcnow()
    ConnectSession.delete().where(ConnectSession.expires_at < now - SESSION_GRACE).execute()
    return ConnectSession.create(
        uid=str(uuid.uuid4()), environment=env_id, token_hash=ctx.cipher.lookup_hash(body["token"]),
        end_user=body.get("end_user"), organization=body.get("organization"),
        allowed_integrations=body.get("allowed_integrations"),
        integrations_config_defaults=body.get("integrations_config_defaults"), overrides=body.get("overrides"),
        webhook_url_override=body.get("webhook_url_override"), tags=body.get("tags"),
        reconnect_connection_id=(reconnect or {}).get("connection_id"),
        reconnect_integration=(reconnect or {}).get("integration_id"),
        created_at=now, expires_at=now + timedelta(seconds=int(body.get("ttl_seconds", 1800))),
    )


def resolve_token(ctx: StoreContext, token: str) -> Identity | None:
    """The identity a live connect session token stands for (key_id is the session's id)."""
    digests = ctx.cipher.lookup_hashes(token)
    row = (ConnectSession.select(ConnectSession, Environment, Account).join(Environment).join(Account)
           .where(ConnectSession.token_hash.in_(digests) & (ConnectSession.expires_at > utcnow())).first())
    if row is None or not any(hmac.compare_digest(row.token_hash, d) for d in digests):
        return None
    env = row.environment
    return Identity(account_id=env.account.id, environment_id=env.id, environment=env.name, plan=env.account.plan,
                    rate_limit=keys.plan_limit(env.account), key_kind="connect_session", key_id=row.id)


def session_view(row: ConnectSession) -> dict:
    return {
        "id": row.id, "environment_id": row.environment_id, "end_user": row.end_user,
        "organization": row.organization, "allowed_integrations": row.allowed_integrations,
        "integrations_config_defaults": row.integrations_config_defaults, "overrides": row.overrides,
        "webhook_url_override": row.webhook_url_override, "tags": row.tags,
        "reconnect_connection_id": row.reconnect_connection_id, "reconnect_integration": row.reconnect_integration,
        "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
    }


def get_session(session_id: int, *, live: bool = True) -> ConnectSession:
    limit = utcnow() if live else utcnow() - SESSION_GRACE
    row = ConnectSession.get_or_none((ConnectSession.id == session_id) & (ConnectSession.expires_at > limit))
    if row is None:
        raise UnknownSession()
    return row


def delete_session(session_id: int) -> None:
    ConnectSession.delete().where(ConnectSession.id == session_id).execute()


def integration_view(ctx: StoreContext, record) -> dict:
    secret = record.unseal(ctx.cipher, "client_secret_enc")
    return {"unique_key": record.unique_key, "provider": record.provider, "client_id": record.client_id,
            "client_secret": secret, "scopes": record.scopes, "integration_config": record.integration_config}


def start(ctx: StoreContext, env_id: int, provider_config_key: str, session_id: int | None,
          public: dict | None = None) -> dict:
    """The integration a flow runs for (with its client secret), the caller's session, if any, and
    whether the flow may replace an existing connection.

    `public` ({connection_id, hmac}) marks a flow started with the public key: it may replace a
    connection only with a valid hmac (`hmac_keys`). A connect session may replace only the
    connection its reconnect names; any other session flow writes a new connection id."""
    row = get_session(session_id) if session_id else None
    record = integrations_domain.find(env_id, provider_config_key)
    if record is None:
        raise NotFound(f"Integration {provider_config_key} does not exist", code="unknown_provider_config")
    may_overwrite = bool(row and row.reconnect_connection_id)
    if public is not None:
        connection_id = public.get("connection_id")
        exists = bool(connection_id) and connections.find(env_id, provider_config_key, connection_id) is not None
        may_overwrite = hmac_keys.check_public_flow(ctx.cipher, Environment.get_by_id(env_id), provider_config_key,
                                                    connection_id, public.get("hmac"), exists)
    return {"integration": integration_view(ctx, record), "session": session_view(row) if row else None,
            "may_overwrite": may_overwrite}


def create_oauth_session(ctx: StoreContext, body: dict) -> None:
    now = utcnow()
    OAuthSession.delete().where(OAuthSession.expires_at < now).execute()
    uid = str(uuid.uuid4())
    OAuthSession.create(
        uid=uid, environment=body["environment_id"], state_hash=ctx.cipher.lookup_hash(body["state"]),
        provider_config_key=body["provider_config_key"], provider=body["provider"],
        connection_id=body["connection_id"], connect_session_id=body.get("connect_session_id"),
        connection_config=body.get("connection_config") or {}, ws_client_id=body.get("ws_client_id"),
        may_overwrite=body.get("may_overwrite") is True,
        secrets_enc=OAuthSession.sealed(ctx.cipher, "secrets_enc", uid, json.dumps(body.get("secrets") or {})),
        redirect_uri=body["redirect_uri"], created_at=now,
        expires_at=now + timedelta(seconds=int(body.get("ttl_seconds", 900))),
    )


def consume_oauth_session(ctx: StoreContext, state: str) -> dict:
    """Take the OAuth session of `state` (once: a second callback with it finds nothing)."""
    row = OAuthSession.get_or_none(OAuthSession.state_hash.in_(ctx.cipher.lookup_hashes(state)))
    if row is None or OAuthSession.delete().where(OAuthSession.id == row.id).execute() != 1:
        raise NotFound("Unknown or already used OAuth state", code="unknown_state")
    view = {"environment_id": row.environment_id, "provider_config_key": row.provider_config_key,
            "provider": row.provider, "connection_id": row.connection_id, "ws_client_id": row.ws_client_id,
            "connect_session_id": row.connect_session_id, "connection_config": row.connection_config or {},
            "redirect_uri": row.redirect_uri, "may_overwrite": bool(row.may_overwrite)}
    if row.expires_at < utcnow():
        raise ApiError("The OAuth flow took too long; start it again", code="expired_state", status=410,
                       payload=view)
    view["secrets"] = row.unseal_json(ctx.cipher, "secrets_enc")
    record = integrations_domain.find(row.environment_id, row.provider_config_key)
    if record is None:
        raise NotFound("The integration was deleted during the flow", code="unknown_provider_config", payload=view)
    view["integration"] = integration_view(ctx, record)
    return view


def _end_user(session: ConnectSession | None) -> dict | None:
    if session is None or not session.end_user:
        return None
    end_user = dict(session.end_user)
    if session.organization:
        end_user["organization"] = session.organization
    return end_user


def _record_capture(env_id: int, body: dict, session, connection_id: str, existed: bool) -> None:
    """`connection.created` (or `.updated` when a flow replaced it), in the save's transaction: by
    the key that started the flow (`started_by`: the public key or the connect session; an OAuth
    callback names its connect session, or just `public_key`), via the captured credential type."""
    started = body.get("started_by") if isinstance(body.get("started_by"), dict) else {}
    actor = actors.actor_of(started.get("key_kind"), started.get("key_id"))
    if actor == actors.SYSTEM:  # an OAuth callback: its session names no key
        actor = actors.actor_of("connect_session", session.id) if session is not None else "public_key"
    detail = {"connect_session": "reconnect" if session.reconnect_connection_id else "connect"} if session else {}
    operations.record_connection_event(
        env_id, "updated" if existed else "created", body["provider_config_key"], connection_id, actor=actor,
        via=operations.capture_via((body.get("credentials") or {}).get("type")), request_id=actors.request_id(),
        fields=("connection_config", "credentials") if existed else (), detail=detail)


@webhooks.with_auth_webhook  # the connection and its webhook commit together (services/store/webhook_outbox.py)
def capture(ctx: StoreContext, body: dict) -> dict:
    """Save what a flow captured as a connection (created, or overridden when it exists)."""
    env_id = body["environment_id"]
    session = get_session(body["connect_session_id"], live=False) if body.get("connect_session_id") else None
    connection_id = (session.reconnect_connection_id if session and session.reconnect_connection_id
                     else body.get("connection_id")) or str(uuid.uuid4())
    existed = connections.find(env_id, body["provider_config_key"], connection_id) is not None
    if existed and not (body.get("may_overwrite") is True or (session and session.reconnect_connection_id)):
        # Checked again here, not only when the flow started: the connection may have been
        # created while the end user was at the provider.
        raise hmac_keys.ConnectionExists()
    payload = {"provider_config_key": body["provider_config_key"], "connection_id": connection_id,
               "credentials": body["credentials"], "connection_config": body.get("connection_config") or {}}
    if session is not None:
        if session.end_user:
            payload["end_user"] = _end_user(session)
        if session.tags:
            payload["tags"] = session.tags
        if session.webhook_url_override:
            payload["webhook_url_override"] = session.webhook_url_override
    conn, integration = connections.import_connection(ctx, env_id, validate(ConnectionImport, payload))
    _record_capture(env_id, body, session, connection_id, existed)
    return {**webhooks.report(ctx, conn, integration, Environment.get_by_id(env_id)),
            "operation": "override" if existed else "creation"}

