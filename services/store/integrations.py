"""Integrations: an environment's configured use of one provider (OAuth app, scopes…)."""

from __future__ import annotations

import uuid

from peewee import IntegrityError

from common.errors import ApiError, NotFound, field_error
from services.store import formatters
from services.store.context import StoreContext
from services.store.db import database
from services.store.models import Connection, Integration, utcnow
from services.store.schemas import IntegrationCreate, IntegrationUpdate

# Modes whose integration holds a client id and secret (type OAUTH2 in the body). AWS_SIGV4: the
# integration's own AWS access key id and secret access key, which assume the end users' roles.
OAUTH_APP_MODES = {"OAUTH1", "OAUTH2", "TBA", "MCP_OAUTH2", "AWS_SIGV4"}


def invalid(path: str, message: str) -> ApiError:
    return ApiError(code="invalid_body", status=400, message=None, errors=[field_error([path], message)])


def save_unique(record: Integration, **save_args) -> None:
    """Save, turning a lost race for the same unique key into the duplicate-key error."""
    try:
        with database.atomic():
            record.save(**save_args)
    except IntegrityError:
        raise invalid("uniqueKey", "Unique key already exists") from None


def find(env_id: int, unique_key: str) -> Integration | None:
    return Integration.get_or_none((Integration.environment == env_id) & (Integration.unique_key == unique_key)
                                   & Integration.deleted_at.is_null())


def get(env_id: int, unique_key: str) -> Integration:
    record = find(env_id, unique_key)
    if record is None:
        raise NotFound("Integration does not exist")
    return record


def list_all(env_id: int) -> list[Integration]:
    return list(Integration.select().where((Integration.environment == env_id) & Integration.deleted_at.is_null())
                .order_by(Integration.id))


def _check_credentials(ctx: StoreContext, provider: str, credentials) -> None:
    if credentials is None:
        return
    mode = (ctx.catalogue.get(provider) or {}).get("auth_mode")
    compatible = (
        (credentials.type in ("OAUTH1", "OAUTH2", "TBA") and mode == credentials.type)
        or (credentials.type == "OAUTH2" and mode in OAUTH_APP_MODES)
        or (credentials.type in ("APP", "CUSTOM") and mode == credentials.type)
    )
    if not compatible:
        raise invalid("credentials", f"incompatible credentials auth type and provider auth ({mode})")


def _apply_credentials(ctx: StoreContext, record: Integration, credentials) -> None:
    if credentials is None:
        return
    record.client_id = getattr(credentials, "client_id", None) or getattr(credentials, "app_id", None)
    secret = getattr(credentials, "client_secret", None)
    record.seal(ctx.cipher, "client_secret_enc", secret or None)
    record.seal(ctx.cipher, "webhook_secret_enc", getattr(credentials, "webhook_secret", None) or None)
    record.scopes = getattr(credentials, "scopes", None)
    record.app_link = getattr(credentials, "app_link", None)
    if credentials.type in ("APP", "CUSTOM"):
        record.custom = {**(record.custom or {}), "app_id": credentials.app_id}
        record.seal(ctx.cipher, "app_private_key_enc", credentials.private_key)


def create(ctx: StoreContext, env_id: int, body: IntegrationCreate) -> Integration:
    if ctx.catalogue.get(body.provider) is None:
        raise invalid("provider", "Invalid provider")
    if find(env_id, body.unique_key) is not None:
        raise invalid("uniqueKey", "Unique key already exists")
    _check_credentials(ctx, body.provider, body.credentials)
    record = Integration(
        uid=str(uuid.uuid4()), environment=env_id, unique_key=body.unique_key, provider=body.provider,
        display_name=body.display_name, integration_config=body.integration_config, custom=body.custom,
        forward_webhooks=True if body.forward_webhooks is None else body.forward_webhooks,
    )
    _apply_credentials(ctx, record, body.credentials)
    save_unique(record, force_insert=True)
    return record


def update(ctx: StoreContext, env_id: int, unique_key: str, body: IntegrationUpdate) -> Integration:
    record = get(env_id, unique_key)
    if body.unique_key and body.unique_key != record.unique_key:
        if find(env_id, body.unique_key) is not None:
            raise invalid("uniqueKey", "Unique key already exists")
        if has_connections(record):
            raise invalid("uniqueKey", "Integration has connections, its unique key can't be changed")
        record.unique_key = body.unique_key
    _check_credentials(ctx, record.provider, body.credentials)
    _apply_credentials(ctx, record, body.credentials)
    for name in ("display_name", "forward_webhooks", "integration_config", "custom"):
        value = getattr(body, name)
        if value is not None:
            setattr(record, name, value)
    record.updated_at = utcnow()
    save_unique(record)
    return record


def has_connections(record: Integration) -> bool:
    return (Connection.select(Connection.id).where((Connection.integration == record)
                                                   & Connection.deleted_at.is_null()).exists())


def delete(env_id: int, unique_key: str) -> None:
    """Soft-delete the integration and, with it, every one of its connections."""
    record = get(env_id, unique_key)
    now = utcnow()
    with database.atomic():
        Connection.update(deleted_at=now, updated_at=now).where(
            (Connection.integration == record) & Connection.deleted_at.is_null()).execute()
        record.deleted_at = now
        record.save()


def credentials_view(ctx: StoreContext, record: Integration) -> dict | None:
    """The integration's app credentials in the clear (secret-key callers only)."""
    if record.client_id is None and not record.app_private_key_enc:
        return None
    mode = (ctx.catalogue.get(record.provider) or {}).get("auth_mode", "OAUTH2")
    secret = record.unseal(ctx.cipher, "client_secret_enc")
    webhook_secret = record.unseal(ctx.cipher, "webhook_secret_enc")
    if mode in ("APP", "CUSTOM"):
        custom = record.custom or {}
        private_key = record.unseal(ctx.cipher, "app_private_key_enc")
        out = {"type": mode, "app_id": custom.get("app_id"), "private_key": private_key,
               "app_link": record.app_link}
        if mode == "CUSTOM":
            out.update(client_id=record.client_id, client_secret=secret)
        return out
    return {"type": mode if mode in ("OAUTH1", "TBA") else "OAUTH2", "client_id": record.client_id,
            "client_secret": secret, "scopes": record.scopes, "webhook_secret": webhook_secret}


def present(ctx: StoreContext, record: Integration, include: set[str] = frozenset()) -> dict:
    entry = ctx.catalogue.get(record.provider)
    credentials = credentials_view(ctx, record) if "credentials" in include else False
    return formatters.integration(record, entry, ctx.server_url, webhook="webhook" in include,
                                  credentials=credentials)
