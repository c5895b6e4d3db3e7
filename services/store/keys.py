"""API keys: creation, named secret keys and their lifecycle, pinning from settings, and
resolution of a presented key.

Every change runs in a write transaction that first locks the environment's row (Postgres:
SELECT … FOR UPDATE; SQLite: BEGIN IMMEDIATE), so concurrent rotations, creations and
revocations of one environment apply one after the other and "one live key per name" holds.
Callers announce committed changes to the gateways (services/store/notify.py). Each change writes
its log record (`key.created`, `key.rotated`, `key.revoked`: the key's kind and name, never the key)
in its transaction; `actor` defaults to the operator CLI, the one caller that does not name one.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import uuid
from datetime import timedelta

from common.crypto import Cipher, DecryptionError
from common.errors import ApiError, NotFound
from common.identity import Identity
from common.settings import UUID4, SettingsError
from services.store import operations
from services.store.db import database, is_postgres
from services.store.migrations import write_transaction
from services.store.models import Account, ApiKey, Environment, utcnow

log = logging.getLogger("authport.store")

PLAN_LIMITS = {"free": 200, "starter": 1000, "growth": 2000}
LAST_USED_GRANULARITY = timedelta(seconds=60)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NAME_RULE = "1 to 64 characters among letters, digits, '_', '.' and '-'"


class KeyConflict(ApiError):
    status = 409
    code = "conflict"


def plan_limit(account: Account) -> int:
    if account.plan == "enterprise":
        return account.rate_limit or PLAN_LIMITS["growth"]
    return PLAN_LIMITS.get(account.plan, PLAN_LIMITS["free"])


def _insert(cipher: Cipher, env: Environment | int, kind: str, name: str, secret: str | None = None):
    secret = secret or str(uuid.uuid4())
    uid = str(uuid.uuid4())
    row = ApiKey.create(
        uid=uid, environment=env, kind=kind, name=name, lookup_hash=cipher.lookup_hash(secret),
        secret_enc=ApiKey.sealed(cipher, "secret_enc", uid, secret),
    )
    return row, secret


def create_key(cipher: Cipher, env: Environment, kind: str, name: str, secret: str | None = None) -> str:
    """Store a new key (generated unless given) and return it in the clear, once."""
    return _insert(cipher, env, kind, name, secret)[1]


def reveal(cipher: Cipher, key: ApiKey) -> str:
    return key.unseal(cipher, "secret_enc")


def live_key(env: Environment | int, kind: str, name: str = "default") -> ApiKey | None:
    return (ApiKey.select().where((ApiKey.environment == env) & (ApiKey.kind == kind) & (ApiKey.name == name)
                                  & ApiKey.revoked_at.is_null()).first())


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ApiError(f"A key name must be {NAME_RULE}.", code="invalid_key_name", status=400)
    return name


@contextlib.contextmanager
def changing(env_id: int):
    """A write transaction holding the environment's lock (see the module docstring)."""
    with write_transaction(database):
        query = Environment.select(Environment.id).where(Environment.id == env_id)
        if is_postgres(database):
            query = query.for_update()
        if query.first() is None:
            raise NotFound("Unknown environment")
        yield


def list_keys(env_id: int) -> list[ApiKey]:
    """Every key of the environment, live and revoked, oldest first."""
    return list(ApiKey.select().where(ApiKey.environment == env_id).order_by(ApiKey.created_at, ApiKey.id))


def _record(env_id: int, kind: str, event: str, name: str, actor: str, request_id: str | None) -> None:
    operations.record(env_id, f"key.{event}", actor=actor, request_id=request_id, detail={"kind": kind, "name": name})


def add_secret_key(cipher: Cipher, env_id: int, name: str, *, actor: str = "admin",
                   request_id: str | None = None) -> tuple[ApiKey, str]:
    """A new named secret key; refused when a live secret key already has that name."""
    check_name(name)
    with changing(env_id):
        if live_key(env_id, "secret", name) is not None:
            raise KeyConflict(f"A live secret key named {name!r} already exists in this environment; "
                              "rotate it or choose another name.", code="duplicate_key_name")
        _record(env_id, "secret", "created", name, actor, request_id)
        return _insert(cipher, env_id, "secret", name)


def rotate(cipher: Cipher, env_id: int, kind: str, name: str = "default", *, actor: str = "admin",
           request_id: str | None = None) -> tuple[ApiKey, str]:
    """Replace the live key `name` with a new one; the old one is revoked in the same transaction."""
    check_name(name)
    with changing(env_id):
        current = live_key(env_id, kind, name)
        if current is None and kind == "secret":
            raise NotFound(f"This environment has no live secret key named {name!r}.")
        if current is not None:
            ApiKey.update(revoked_at=utcnow()).where(ApiKey.id == current.id).execute()
        _record(env_id, kind, "rotated" if current is not None else "created", name, actor, request_id)
        return _insert(cipher, env_id, kind, name)


def revoke(env_id: int, name: str, *, actor: str = "admin", request_id: str | None = None) -> ApiKey:
    """Revoke the live secret key `name`, unless it is the environment's last live secret key.

    Revoking the last one would leave nobody able to call the API for this environment (only
    the admin CLI could make a new key); rotating it is the way to replace a leaked one.
    """
    check_name(name)
    with changing(env_id):
        current = live_key(env_id, "secret", name)
        if current is None:
            raise NotFound(f"This environment has no live secret key named {name!r}.")
        live = ApiKey.select().where((ApiKey.environment == env_id) & (ApiKey.kind == "secret")
                                     & ApiKey.revoked_at.is_null()).count()
        if live <= 1:
            raise KeyConflict(f"{name!r} is the environment's last live secret key: rotate it instead, or create "
                              "another key first.", code="last_secret_key")
        current.revoked_at = utcnow()
        current.save()
        _record(env_id, "secret", "revoked", name, actor, request_id)
        return current


def _holds(cipher: Cipher, key: ApiKey, secret: str) -> bool:
    try:
        return hmac.compare_digest(reveal(cipher, key).encode(), secret.encode())
    except DecryptionError:
        log.warning("the stored copy of API key %s cannot be decrypted; replacing it", key.uid)
        return False


def pin_secret_key(cipher: Cipher, env: Environment, variable: str, pinned: str) -> bool:
    """Make `pinned` the environment's default secret key, replacing a different one; True if changed.

    A pinned key that was revoked (rotated away, through the API or the CLI) is never brought
    back: it may have leaked. The environment keeps its current key and a warning says so.
    """
    if not UUID4.match(pinned):
        raise SettingsError(variable, "must be a UUID v4 (e.g. the output of `uuidgen -r`)")
    pinned = pinned.lower()
    owner = ApiKey.get_or_none(ApiKey.lookup_hash.in_(cipher.lookup_hashes(pinned)))
    if owner is not None and owner.environment_id != env.id:
        raise SettingsError(variable, "this key already belongs to another environment")
    if owner is not None and owner.revoked_at is not None:
        log.warning("%s holds a key of environment %s that was revoked or rotated on %s; it stays revoked and "
                    "the environment keeps its current key (update or remove the variable)",
                    variable, env.name, owner.revoked_at.isoformat(timespec="seconds"))
        return False
    current = live_key(env, "secret")
    if current is not None and _holds(cipher, current, pinned):
        return False
    if current is not None:
        current.revoked_at = utcnow()
        current.save()
    if owner is not None:  # a live named key of this environment becomes its default key
        owner.name = "default"
        owner.save()
        return True
    create_key(cipher, env, "secret", "default", pinned)
    return True


def resolve(cipher: Cipher, secret: str, kind: str) -> Identity | None:
    """The identity a presented key stands for, or None."""
    digests = cipher.lookup_hashes(secret.lower())
    row = (ApiKey.select(ApiKey, Environment, Account).join(Environment).join(Account)
           .where(ApiKey.lookup_hash.in_(digests) & (ApiKey.kind == kind) & ApiKey.revoked_at.is_null())
           .first())
    if row is None or not any(hmac.compare_digest(row.lookup_hash, digest) for digest in digests):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        ApiKey.update(last_used_at=now).where(ApiKey.id == row.id).execute()
    env = row.environment
    return Identity(
        account_id=env.account.id, environment_id=env.id, environment=env.name, plan=env.account.plan,
        rate_limit=plan_limit(env.account), key_kind=kind, key_id=row.id,
    )
