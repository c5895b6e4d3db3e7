"""First-start records: the default account, its dev and prod environments and their keys.

`DEFAULT_PLAN` is the plan the default account is created with. It is applied once, at
creation: afterwards the database is the source of truth and the admin CLI changes the plan
(`accounts set-plan default growth`), so a restart or a replica started with another value never
undoes an operator's change, and replicas cannot flip the plan back and forth.
"""

from __future__ import annotations

import logging
import uuid

from common.crypto import Cipher
from common.settings import Settings
from services.store import keys
from services.store.migrations import write_transaction
from services.store.models import Account, ApiKey, Environment
from services.store.notify import KeysEpoch

log = logging.getLogger("authport.store")
DEFAULT_ACCOUNT = "default"
DEFAULT_ENVIRONMENTS = ("dev", "prod")


def ensure_environment(account: Account, name: str) -> Environment:
    env = Environment.get_or_none((Environment.account == account) & (Environment.name == name))
    return env or Environment.create(account=account, name=name, uid=str(uuid.uuid4()))


def has_live_secret_key(env: Environment) -> bool:
    return ApiKey.select().where((ApiKey.environment == env) & (ApiKey.kind == "secret")
                                 & ApiKey.revoked_at.is_null()).exists()


def bootstrap(db, cipher: Cipher, settings: Settings) -> list[tuple[str, str]]:
    """Create what a first start needs; return (environment, key) pairs generated just now."""
    generated: list[tuple[str, str]] = []
    changed = False
    with write_transaction(db):
        account = Account.get_or_none(Account.name == DEFAULT_ACCOUNT)
        if account is None:
            account = Account.create(name=DEFAULT_ACCOUNT, plan=settings.DEFAULT_PLAN)
            if settings.DEFAULT_PLAN == "enterprise":
                log.warning("DEFAULT_PLAN=enterprise has no custom limit yet: the default account gets %d requests "
                            "per minute until `accounts set-plan default enterprise --rate-limit N`",
                            keys.plan_limit(account))
        names = {env.name for env in account.environments} | set(DEFAULT_ENVIRONMENTS)
        for name in sorted(names):
            env = ensure_environment(account, name)
            pinned = settings.pinned_secret_key(name)
            variable = f"NANGO_SECRET_KEY_{name.upper()}"
            if name == "dev" and "dev" not in settings.environment_keys:
                variable = "NANGO_SECRET_KEY"
            if pinned:
                changed |= keys.pin_secret_key(cipher, env, variable, pinned)
            elif not has_live_secret_key(env):
                generated.append((name, keys.create_key(cipher, env, "secret", "default")))
            if keys.live_key(env, "public") is None:
                keys.create_key(cipher, env, "public", "default")
    if changed:
        # A pinned key replaced another: gateways that already run must forget the old one.
        epoch = KeysEpoch.from_settings(settings)
        epoch.bump()
        epoch.close()
    return generated
