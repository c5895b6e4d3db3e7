"""Environments and their API keys as Nango's public API manages them (POST/DELETE /environments,
POST/DELETE /environment/api-keys), on top of Authport's one key model (services/store/keys.py).

Nango reserves these calls to an account-level key. Authport has no account key: the caller is a
live secret key of the account's `prod` environment (the default key or any named one), and it
acts on the environments of its own account only; another account's environment is unknown (404).

Deleting an environment is all or nothing, in one transaction under the environment's lock. It is
refused while the environment holds live integrations or connections (delete them first), so no
credential disappears by surprise; what remains (its keys, variables, logs, sessions, soft-deleted
records) goes with it. `prod` (reserved, as in Nango) and `dev` (re-created at every start of the
default account) cannot be deleted.
"""

from __future__ import annotations

import re

from common.crypto import Cipher
from common.errors import ApiError, NotFound
from services.store import accounts, keys, operations
from services.store.db import database
from services.store.migrations import write_transaction
from services.store.models import (
    ApiKey,
    Connection,
    ConnectSession,
    Environment,
    EnvironmentVariable,
    Integration,
    OAuthSession,
    Operation,
    UsageMinute,
    WebhookOutbox,
)

ENV_NAME = re.compile(r"[a-z0-9_-]{1,255}")
ENV_NAME_RULE = "1 to 255 characters among lowercase letters, digits, '_' and '-'"
RESERVED = ("prod", "dev")
ACCOUNT_ENVIRONMENT = "prod"


def caller_may_manage(key_kind: str, environment: str) -> bool:
    """Only a secret key of the account's prod environment manages environments and their keys."""
    return key_kind == "secret" and environment == ACCOUNT_ENVIRONMENT


def of_account(account_id: int, env_id: object) -> Environment:
    """The account's environment `env_id`; 404 for an unknown one or one of another account."""
    env = None
    if isinstance(env_id, int) and not isinstance(env_id, bool) and env_id > 0:
        env = Environment.get_or_none((Environment.id == env_id) & (Environment.account == account_id))
    if env is None:
        raise NotFound("Unknown environment", code="unknown_environment")
    return env


def create(cipher: Cipher, account_id: int, name: str, *, actor: str, request_id: str | None) -> Environment:
    """A new environment of the account, with its keys made as `accounts create` makes them."""
    if not ENV_NAME.fullmatch(name):
        raise ApiError(f"name must be {ENV_NAME_RULE}", code="invalid_body")
    with write_transaction(database):
        taken = Environment.get_or_none((Environment.account == account_id) & (Environment.name == name))
        if taken is not None or name in RESERVED:
            raise keys.KeyConflict(f"An environment named {name!r} already exists in this account.",
                                   code="environment_already_exists")
        env, _keys = accounts.add_environment(cipher, account_id, name)
        operations.record(env.id, "environment.created", actor=actor, request_id=request_id, detail={"name": name})
    return env


def delete(account_id: int, env_id: object, *, caller_environment_id: int, actor: str,
           request_id: str | None) -> Environment:
    """Delete the account's environment and everything left in it, or nothing (see module docstring)."""
    env = of_account(account_id, env_id)
    if env.name in RESERVED:
        raise ApiError(f"The {env.name!r} environment cannot be deleted.", code="reserved_environment", status=400)
    with keys.changing(env.id):
        live = (Integration.select().where((Integration.environment == env.id) & Integration.deleted_at.is_null())
                .exists()
                or Connection.select().where((Connection.environment == env.id) & Connection.deleted_at.is_null())
                .exists())
        if live:
            raise keys.KeyConflict("The environment still has integrations or connections: delete them first.",
                                   code="environment_not_empty")
        for model in (Connection, ConnectSession, OAuthSession, WebhookOutbox, Integration, EnvironmentVariable,
                      Operation, ApiKey):
            model.delete().where(model.environment == env.id).execute()
        UsageMinute.delete().where(UsageMinute.environment_id == env.id).execute()
        Environment.delete().where(Environment.id == env.id).execute()
        operations.record(caller_environment_id, "environment.deleted", actor=actor, request_id=request_id,
                          detail={"name": env.name, "id": env.id})
    return env


def add_api_key(cipher: Cipher, account_id: int, env_id: object, display_name: str, *, actor: str,
                request_id: str | None) -> tuple[ApiKey, str]:
    """A new named secret key of the account's environment (display_name unique among its live keys)."""
    env = of_account(account_id, env_id)
    return keys.add_secret_key(cipher, env.id, display_name, actor=actor, request_id=request_id)


def delete_api_key(account_id: int, env_id: object, key_id: object, *, actor: str, request_id: str | None) -> ApiKey:
    """Revoke the environment's live secret key `key_id` (never its last one: keys.revoke)."""
    env = of_account(account_id, env_id)
    row = None
    if isinstance(key_id, int) and not isinstance(key_id, bool):
        row = ApiKey.get_or_none((ApiKey.id == key_id) & (ApiKey.environment == env.id) & (ApiKey.kind == "secret")
                                 & ApiKey.revoked_at.is_null())
    if row is None:
        raise NotFound("Unknown API key", code="unknown_api_key")
    return keys.revoke(env.id, row.name, actor=actor, request_id=request_id)
