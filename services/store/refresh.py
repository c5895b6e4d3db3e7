"""Refresh-if-needed on every credential read (`GET /connections/:id`, the proxy's credentials).

The store decides and saves; auth performs the exchange with the provider. Under the
connection's lock (`locks.connection_lock`), the row is read again and used as it is when another
caller refreshed it meanwhile, so concurrent readers on any number of processes cause one call
to the token endpoint. A failure is recorded and answered with 424 `invalid_credentials`
(payload `reason`: `refresh_backoff`) for the next 30 seconds; repeated failures (one counted per
day, as Nango does) mark the connection exhausted, and only a forced refresh or a new import tries again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from common import metrics
from common.errors import ApiError
from common.refresh_client import RefreshClient
from services.store import credentials as credentials_domain
from services.store import formatters, locks, notify, webhooks
from services.store.context import StoreContext
from services.store.models import Connection, Integration, Operation, utcnow

log = logging.getLogger("authport.store.refresh")
DEFAULT_BUFFER = timedelta(minutes=15)
BACKOFF = timedelta(seconds=30)
EXHAUSTED_AFTER = 4
LOCK_WAIT = 20.0
# A forced refresh is satisfied by one that succeeded this recently: callers that force together
# (queued behind each other in the workers) share one call to the token endpoint.
FORCE_SHARED = timedelta(seconds=5)
# Token modes: auth makes a token from the stored credentials (signs a JWT or a WSSE header, or
# exchanges them at the provider), again before it expires.
TOKEN_MODES = ("JWT", "TWO_STEP", "SIGNATURE", "BILL")
# AWS_SIGV4: temporary keys from STS (a captured role ARN) are assumed again before they expire;
# keys imported without an expiry are used as they are.
REFRESHABLE = ("OAUTH2", "OAUTH2_CC", *TOKEN_MODES, "AWS_SIGV4")
_clients: dict[str, RefreshClient] = {}


def _auth(ctx: StoreContext) -> RefreshClient:
    url = ctx.settings.service_url("auth")
    if url not in _clients:
        _clients[url] = RefreshClient(url, ctx.settings.INTERNAL_API_KEY, timeout=60)
    return _clients[url]


def refresh_buffer(provider: dict | None) -> timedelta:
    """How long before expiry a token is renewed: the provider's `token_expiration_buffer`, else 15
    minutes, but at most a quarter of the lifetime of a token the catalogue makes short-lived
    (`token.expires_in_ms`: a 5-minute JWT is not re-signed on every read)."""
    buffer = (provider or {}).get("token_expiration_buffer")
    if buffer:
        return timedelta(seconds=int(buffer))
    lifetime = ((provider or {}).get("token") or {}).get("expires_in_ms") if isinstance(
        (provider or {}).get("token"), dict) else None
    if isinstance(lifetime, (int, float)) and lifetime > 0:
        return min(DEFAULT_BUFFER, timedelta(milliseconds=lifetime) / 4)
    return DEFAULT_BUFFER


def missing_token(conn: Connection, credentials: dict) -> bool:
    """A token mode's connection imported without its token (or Bill session) yet."""
    return conn.credentials_type in TOKEN_MODES and not (credentials.get("token") or credentials.get("session_id"))


def expiring(conn: Connection, provider: dict | None) -> bool:
    if conn.expires_at is None:
        return False
    return conn.expires_at - utcnow() < refresh_buffer(provider)


def seconds_fresh(conn: Connection, provider: dict | None) -> float | None:
    """How long these credentials may be used without asking the store again (None: no limit):
    until the token enters the provider's refresh buffer, when a read would refresh it."""
    if conn.credentials_type not in REFRESHABLE or conn.expires_at is None:
        return None
    until = conn.expires_at - refresh_buffer(provider)
    return max(0.0, (until - utcnow()).total_seconds())


def _refused(conn: Connection, integration, code: str, message: str, status: int,
             reason: str | None = None) -> ApiError:
    shown = formatters.connection_full(conn, integration.unique_key, integration.provider, {}, "Z")
    payload = {"connection": shown, **({"reason": reason} if reason else {})}
    return ApiError(message, code=code, status=status, payload=payload)


def ensure_fresh(ctx: StoreContext, conn: Connection, integration, credentials: dict, *, force: bool):
    """(connection, credentials), refreshed first when they expire soon or `force` asks for it."""
    if conn.credentials_type not in REFRESHABLE:
        return conn, credentials
    provider = ctx.catalogue.get(integration.provider)
    if not force:
        if conn.refresh_exhausted:
            raise _refused(conn, integration, "invalid_credentials",
                           "Refreshing this connection failed repeatedly; re-authorize it.", 424,
                           reason="refresh_exhausted")
        if conn.last_refresh_failure and utcnow() - conn.last_refresh_failure < BACKOFF:
            raise _refused(conn, integration, "invalid_credentials",
                           "A recent refresh attempt failed. Backing off before retrying.", 424,
                           reason="refresh_backoff")
        if not expiring(conn, provider) and not missing_token(conn, credentials):
            return conn, credentials
    if conn.credentials_type == "AWS_SIGV4" and not credentials.get("role_arn"):
        return conn, credentials  # imported keys: no role to assume again
    if conn.credentials_type == "OAUTH2" and not credentials.get("refresh_token"):
        return conn, credentials  # nothing to refresh with: the token is used as it is
    asked_at = utcnow()
    with locks.connection_lock(conn.id, wait=LOCK_WAIT) as acquired:
        current = Connection.get_or_none((Connection.id == conn.id) & Connection.deleted_at.is_null()) or conn
        current.last_fetched_at = conn.last_fetched_at
        fresh = credentials_domain.of(ctx, current)
        since = asked_at - FORCE_SHARED if force else asked_at
        done_meanwhile = current.last_refresh_success is not None and current.last_refresh_success >= since
        if not acquired or done_meanwhile or not (force or expiring(current, provider)
                                                  or missing_token(current, fresh)):
            return current, fresh
        return _refresh(ctx, current, integration, fresh)


def _refresh(ctx: StoreContext, conn: Connection, integration, credentials: dict):
    record = Integration.get_by_id(conn.integration_id)
    secret = record.unseal(ctx.cipher, "client_secret_enc")
    now = utcnow()
    try:
        new = _auth(ctx).refresh(provider=record.provider, credentials=credentials,
                                 connection_config=conn.connection_config or {}, client_id=record.client_id,
                                 client_secret=secret, scopes=record.scopes,
                                 integration_config=record.integration_config or {})
    except ApiError as exc:
        counted = conn.last_refresh_failure is None or conn.last_refresh_failure.date() != now.date()
        conn.refresh_attempts += 1 if counted else 0
        conn.refresh_exhausted = conn.refresh_attempts >= EXHAUSTED_AFTER
        conn.last_refresh_failure = now
        Connection.update(last_refresh_failure=now, refresh_attempts=conn.refresh_attempts,
                          refresh_exhausted=conn.refresh_exhausted).where(Connection.id == conn.id).execute()
        _changed(ctx, conn, integration)  # reads now answer 424 until the backoff ends
        log.warning("refresh failed connection=%s code=%s attempts=%d", conn.uid, exc.code, conn.refresh_attempts)
        _record(conn, integration, now, error_code=exc.code)
        metrics.REFRESHES.labels("failure").inc()
        webhooks.refresh_failed(ctx, conn, record, exc)
        raise _refused(conn, integration, "invalid_credentials", "The external API returned an error when trying "
                       "to refresh the access token. Please try again later.", 400) from None
    conn.expires_at = credentials_domain.parse_expiry(new.get("expires_at"))
    credentials_domain.seal(ctx, conn, new)
    conn.last_refresh_success, conn.last_refresh_failure = now, None
    conn.refresh_attempts, conn.refresh_exhausted, conn.updated_at = 0, False, now
    Connection.update(credentials_enc=conn.credentials_enc, expires_at=conn.expires_at, last_refresh_success=now,
                      last_refresh_failure=None, refresh_attempts=0, refresh_exhausted=False,
                      updated_at=now).where(Connection.id == conn.id).execute()
    _changed(ctx, conn, integration)
    _record(conn, integration, now)
    metrics.REFRESHES.labels("success").inc()
    log.info("refreshed connection=%s", conn.uid)
    return conn, new


def _record(conn: Connection, integration, started, error_code: str | None = None) -> None:
    """Keep a record of this refresh: when, for which connection, and how it ended."""
    Operation.create(environment=conn.environment_id, kind="refresh", provider_config_key=integration.unique_key,
                     connection_id=conn.connection_id, success=error_code is None, error_code=error_code,
                     detail={"duration_ms": round((utcnow() - started).total_seconds() * 1000),
                             "attempts": conn.refresh_attempts, "exhausted": bool(conn.refresh_exhausted)})


def _changed(ctx: StoreContext, conn: Connection, integration) -> None:
    notify.connection_changed(ctx.settings, conn.environment_id, integration.unique_key, conn.connection_id)
