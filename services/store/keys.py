"""API keys: creation, pinning from settings, and resolution of a presented key."""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import timedelta

from common.crypto import Cipher, DecryptionError
from common.identity import Identity
from common.settings import UUID4, SettingsError
from services.store.models import Account, ApiKey, Environment, utcnow

log = logging.getLogger("authport.store")

PLAN_LIMITS = {"free": 200, "starter": 1000, "growth": 2000}
LAST_USED_GRANULARITY = timedelta(seconds=60)


def plan_limit(account: Account) -> int:
    if account.plan == "enterprise":
        return account.rate_limit or PLAN_LIMITS["growth"]
    return PLAN_LIMITS.get(account.plan, PLAN_LIMITS["free"])


def create_key(cipher: Cipher, env: Environment, kind: str, name: str, secret: str | None = None) -> str:
    """Store a new key (generated unless given) and return it in the clear, once."""
    secret = secret or str(uuid.uuid4())
    uid = str(uuid.uuid4())
    ApiKey.create(
        uid=uid, environment=env, kind=kind, name=name, lookup_hash=cipher.lookup_hash(secret),
        secret_enc=cipher.encrypt(secret, "api_keys", "secret_enc", uid),
    )
    return secret


def reveal(cipher: Cipher, key: ApiKey) -> str:
    return cipher.decrypt(key.secret_enc, "api_keys", "secret_enc", key.uid)


def live_key(env: Environment, kind: str, name: str = "default") -> ApiKey | None:
    return (ApiKey.select().where((ApiKey.environment == env) & (ApiKey.kind == kind) & (ApiKey.name == name)
                                  & ApiKey.revoked_at.is_null()).first())


def _holds(cipher: Cipher, key: ApiKey, secret: str) -> bool:
    try:
        return hmac.compare_digest(reveal(cipher, key).encode(), secret.encode())
    except DecryptionError:
        log.warning("the stored copy of API key %s cannot be decrypted; replacing it", key.uid)
        return False


def pin_secret_key(cipher: Cipher, env: Environment, variable: str, pinned: str) -> None:
    """Make `pinned` the environment's default secret key, replacing a different one."""
    if not UUID4.match(pinned):
        raise SettingsError(variable, "must be a UUID v4 (e.g. the output of `uuidgen -r`)")
    pinned = pinned.lower()
    owner = ApiKey.get_or_none(ApiKey.lookup_hash.in_(cipher.lookup_hashes(pinned)))
    if owner is not None and owner.environment_id != env.id:
        raise SettingsError(variable, "this key already belongs to another environment")
    current = live_key(env, "secret")
    if current is not None and _holds(cipher, current, pinned):
        return
    if current is not None:
        current.revoked_at = utcnow()
        current.save()
    if owner is not None:
        owner.revoked_at = None
        owner.name = "default"
        owner.save()
        return
    create_key(cipher, env, "secret", "default", pinned)


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
