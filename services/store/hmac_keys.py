"""Environment HMAC keys: the proof that a public-key auth flow was asked for by the backend.

A frontend holds only the environment's public key, which anyone can read from the page. Such a
flow may create a connection, but may replace an existing one only when its `hmac` query
parameter is HMAC-SHA256(environment HMAC key, "<integration>:<connection id>") in hex, which
only the backend (holding the key) can compute — Nango's documented scheme. With HMAC enabled
on the environment, every public-key flow must carry a valid `hmac` (for a flow without a
connection id, the HMAC of "<integration>" alone).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from common.crypto import Cipher
from common.errors import ApiError
from services.store.models import Environment


class MissingHmac(ApiError):
    status = 400
    code = "missing_hmac"
    message = "This environment requires the hmac parameter on public-key auth flows."


class InvalidHmac(ApiError):
    status = 400
    code = "invalid_hmac"
    message = "The hmac parameter does not match the integration and connection id."


class ConnectionExists(ApiError):
    status = 409
    code = "connection_already_exists"
    message = ("A connection with this id already exists. A public-key flow may replace it only with the hmac "
               "parameter your backend computes, or through a reconnect connect session.")


def _seal(cipher: Cipher, env: Environment, key: str) -> str:
    return Environment.sealed(cipher, "hmac_key_enc", env.uid, key)


def ensure_key(cipher: Cipher, env: Environment) -> None:
    """Give the environment an HMAC key if it has none (it stays off until enabled)."""
    if env.hmac_key_enc is None:
        Environment.update(hmac_key_enc=_seal(cipher, env, secrets.token_hex(32))).where(
            (Environment.id == env.id) & Environment.hmac_key_enc.is_null()).execute()


def reveal(cipher: Cipher, env: Environment) -> str:
    ensure_key(cipher, env)
    env = Environment.get_by_id(env.id)
    return env.unseal(cipher, "hmac_key_enc")


def rotate(cipher: Cipher, env: Environment) -> str:
    key = secrets.token_hex(32)
    Environment.update(hmac_key_enc=_seal(cipher, env, key)).where(Environment.id == env.id).execute()
    return key


def set_enabled(env: Environment, enabled: bool) -> None:
    Environment.update(hmac_enabled=enabled).where(Environment.id == env.id).execute()


def digest(key: str, provider_config_key: str, connection_id: str | None) -> str:
    message = f"{provider_config_key}:{connection_id}" if connection_id else provider_config_key
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def check_public_flow(cipher: Cipher, env: Environment, provider_config_key: str, connection_id: str | None,
                      given: str | None, exists: bool) -> bool:
    """Apply the public-key rules; True when the flow has proved it may replace the connection."""
    if not given:
        if env.hmac_enabled:
            raise MissingHmac()
        if exists:
            raise ConnectionExists()
        return False
    expected = digest(reveal(cipher, env), provider_config_key, connection_id)
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise InvalidHmac()
    return True
