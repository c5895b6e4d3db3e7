"""The environment's auth webhook settings and what each auth webhook reports (no Flask here).

The webhook URL is stored on the environment (`environments.webhook_url`); a connection's
`webhook_url_override` replaces it. The signing key is the environment's default secret key, as
in Nango's older environments (rotating that key rotates the signing key with it), until the
environment rotates a signing key of its own (`rotate_signing_key`): from then on every attempt,
also of a webhook queued before, is signed with that key. Webhooks wait in the outbox
(`webhook_outbox`) until auth delivers them.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

from common.errors import ApiError, field_error
from services.store import keys, operations
from services.store.context import StoreContext
from services.store.models import Connection, Environment

log = logging.getLogger("authport.store.webhooks")
MAX_URL = 2048


def check_url(url: object) -> str | None:
    """The URL to store (None clears it); ApiError `invalid_body` when it is not an http(s) URL."""
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL
            or any(c.isspace() for c in url)):
        message = f"url must be an http(s) URL of at most {MAX_URL} characters, or null"
        raise ApiError(message, code="invalid_body", errors=[field_error(["url"], message)])
    return url


def set_url(env: Environment, url: str | None) -> None:
    Environment.update(webhook_url=check_url(url)).where(Environment.id == env.id).execute()
    env.webhook_url = url


def signing_key(ctx: StoreContext, env: Environment | int) -> str | None:
    row = env if isinstance(env, Environment) else Environment.get_or_none(Environment.id == env)
    if row is not None and row.webhook_signing_key_enc:
        return row.unseal(ctx.cipher, "webhook_signing_key_enc")
    key = keys.live_key(env, "secret")
    return keys.reveal(ctx.cipher, key) if key is not None else None


def rotate_signing_key(ctx: StoreContext, env: Environment, *, actor: str, request_id: str | None) -> str:
    """A new signing key for `env` (shown once, to the caller), recorded as `key.rotated`."""
    key = str(uuid.uuid4())
    with Environment._meta.database.atomic():
        sealed = Environment.sealed(ctx.cipher, "webhook_signing_key_enc", env.uid, key)
        Environment.update(webhook_signing_key_enc=sealed).where(Environment.id == env.id).execute()
        operations.record(env.id, "key.rotated", actor=actor, request_id=request_id,
                          detail={"kind": "webhook_signing", "name": "default"})
    return key


def end_user_of(conn: Connection) -> dict | None:
    """Nango's `endUser` of a webhook: the connect session's end user and organization."""
    end_user = conn.end_user or {}
    if not end_user.get("id"):
        return None
    shown = {"endUserId": end_user["id"], "endUserEmail": end_user.get("email"),
             "organizationId": (end_user.get("organization") or {}).get("id"), "tags": end_user.get("tags")}
    return {k: v for k, v in shown.items() if v is not None}


def report(ctx: StoreContext, conn: Connection, integration, env: Environment) -> dict:
    """What an auth webhook about `conn` says, and the URL it goes to now (None: no webhook)."""
    return {"connection_id": conn.connection_id, "provider_config_key": integration.unique_key,
            "provider": integration.provider, "auth_mode": conn.credentials_type, "environment": env.name,
            "tags": conn.tags or {}, "end_user": end_user_of(conn),
            "webhook_url": conn.webhook_url_override or env.webhook_url}


def refresh_failed(ctx: StoreContext, conn: Connection, integration, error: ApiError) -> None:
    """Queue the `refresh` failure webhook; never raises (the caller's answer comes first)."""
    from services.store import webhook_outbox  # it builds on this module

    try:
        webhook_outbox.refresh_failed(ctx, conn, integration, error.code, error.message)
    except Exception as exc:  # noqa: BLE001 - a webhook must never fail the credential read
        log.warning("refresh webhook of connection=%s not queued: %s", conn.uid, type(exc).__name__)


def with_auth_webhook(capture):
    """`flows.capture`, with the webhook of the connection it saves written in the same transaction
    (`webhook_outbox.with_auth_webhook`; reached from here, the module flows already imports)."""
    from services.store import webhook_outbox  # it builds on this module

    return webhook_outbox.with_auth_webhook(capture)
