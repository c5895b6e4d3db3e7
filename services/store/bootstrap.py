"""First-start records: the default account, its dev and prod environments and their keys."""

from __future__ import annotations

import uuid

from common.crypto import Cipher
from common.settings import Settings
from services.store import keys
from services.store.migrations import write_transaction
from services.store.models import Account, Environment

DEFAULT_ACCOUNT = "default"
DEFAULT_ENVIRONMENTS = ("dev", "prod")


def ensure_environment(account: Account, name: str) -> Environment:
    env = Environment.get_or_none((Environment.account == account) & (Environment.name == name))
    return env or Environment.create(account=account, name=name, uid=str(uuid.uuid4()))


def bootstrap(db, cipher: Cipher, settings: Settings) -> list[tuple[str, str]]:
    """Create what a first start needs; return (environment, key) pairs generated just now."""
    generated: list[tuple[str, str]] = []
    with write_transaction(db):
        account = Account.get_or_none(Account.name == DEFAULT_ACCOUNT)
        if account is None:
            account = Account.create(name=DEFAULT_ACCOUNT, plan=settings.DEFAULT_PLAN)
        names = {env.name for env in account.environments} | set(DEFAULT_ENVIRONMENTS)
        for name in sorted(names):
            env = ensure_environment(account, name)
            pinned = settings.pinned_secret_key(name)
            variable = f"NANGO_SECRET_KEY_{name.upper()}"
            if name == "dev" and "dev" not in settings.environment_keys:
                variable = "NANGO_SECRET_KEY"
            if pinned:
                keys.pin_secret_key(cipher, env, variable, pinned)
            elif keys.live_key(env, "secret") is None:
                generated.append((name, keys.create_key(cipher, env, "secret", "default")))
            if keys.live_key(env, "public") is None:
                keys.create_key(cipher, env, "public", "default")
    return generated
