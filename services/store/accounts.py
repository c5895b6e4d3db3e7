"""Accounts and their plans: create one with its environments and keys, change its plan, list them.

A plan sets the account's requests per minute (free 200, starter 1,000, growth 2,000;
enterprise: the account's own `rate_limit`). The gateways carry the limit in the identity they
cache, so a plan change must be announced to them (services/store/notify.py) to apply within
the current window.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from common.crypto import Cipher
from common.errors import ApiError, NotFound
from services.store import keys
from services.store.db import database
from services.store.migrations import write_transaction
from services.store.models import Account, Environment

PLANS = ("free", "starter", "growth", "enterprise")
ENVIRONMENTS = ("dev", "prod")
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class NewKey:
    environment: str
    kind: str
    key: str


@dataclass(frozen=True)
class Summary:
    name: str
    plan: str
    rate_limit: int
    environments: tuple[str, ...]


def check_plan(plan: str, rate_limit: int | None) -> int | None:
    """The `rate_limit` column for this plan: a positive number for enterprise, nothing otherwise."""
    if plan not in PLANS:
        raise ApiError(f"unknown plan {plan!r} (choose from {', '.join(PLANS)})", code="invalid_plan")
    if plan == "enterprise":
        if rate_limit is None or rate_limit < 1:
            raise ApiError("the enterprise plan needs --rate-limit, a whole number of requests per minute of at "
                           "least 1", code="invalid_plan")
        return rate_limit
    if rate_limit is not None:
        raise ApiError(f"plan {plan} has a fixed limit of {keys.PLAN_LIMITS[plan]} requests per minute; "
                       "--rate-limit applies to enterprise only", code="invalid_plan")
    return None


def find(name: str) -> Account:
    account = Account.get_or_none(Account.name == name)
    if account is None:
        known = ", ".join(a.name for a in Account.select(Account.name).order_by(Account.id))
        raise NotFound(f"unknown account {name!r} (known: {known or 'none'})")
    return account


def create(cipher: Cipher, name: str, plan: str = "free", rate_limit: int | None = None) -> list[NewKey]:
    """A new account with dev and prod environments, each with a secret and a public key.

    Returns the keys in the clear: this is the only time they are shown.
    """
    if not ACCOUNT_NAME.fullmatch(name):
        raise ApiError(f"an account name must be {keys.NAME_RULE}", code="invalid_account_name")
    stored_limit = check_plan(plan, rate_limit)
    created: list[NewKey] = []
    with write_transaction(database):
        if Account.get_or_none(Account.name == name) is not None:
            raise keys.KeyConflict(f"account {name!r} already exists", code="duplicate_account")
        account = Account.create(name=name, plan=plan, rate_limit=stored_limit)
        for env_name in ENVIRONMENTS:
            created += add_environment(cipher, account, env_name)[1]
    return created


def add_environment(cipher: Cipher, account: Account | int, name: str) -> tuple[Environment, list[NewKey]]:
    """One new environment with its default secret and public keys (inside the caller's transaction).

    The one way an environment is made, by `accounts create` and by `POST /environments` alike; its
    HMAC and webhook signing keys start unset, as for every environment, until enabled or rotated.
    """
    env = Environment.create(account=account, name=name, uid=str(uuid.uuid4()))
    return env, [NewKey(name, kind, keys.create_key(cipher, env, kind, "default")) for kind in ("secret", "public")]


def set_plan(name: str, plan: str, rate_limit: int | None = None) -> Summary:
    """Change the account's plan (and custom limit); the caller announces it to the gateways."""
    stored_limit = check_plan(plan, rate_limit)
    with write_transaction(database):
        account = find(name)
        Account.update(plan=plan, rate_limit=stored_limit).where(Account.id == account.id).execute()
    return summary(find(name))


def summary(account: Account) -> Summary:
    names = tuple(e.name for e in Environment.select(Environment.name).where(Environment.account == account)
                  .order_by(Environment.id))
    return Summary(account.name, account.plan, keys.plan_limit(account), names)


def list_all() -> list[Summary]:
    return [summary(account) for account in Account.select().order_by(Account.id)]
