"""Who may pass the gateway: the caller's key resolved (from memory when possible), failed
authentications limited per address, and the account's request charged to its plan."""

from __future__ import annotations

from flask import request

from common.errors import ApiError
from common.identity import Identity
from common.internal import StoreClient
from gateway import authn
from gateway.keycache import KeyCache
from gateway.ratelimit import Decision, RateLimiter


def too_many(decision: Decision, message: str) -> ApiError:
    seconds = decision.headers()["Retry-After"]
    error = ApiError(f"{message}, retry after {seconds} seconds", code="too_many_request", status=429,
                     extra={"method": request.method, "path": request.path})
    error.headers = decision.headers()
    return error


class Admission:
    def __init__(self, store: StoreClient, limiter: RateLimiter, cache: KeyCache):
        self.store = store
        self.limiter = limiter
        self.cache = cache

    def _resolve(self, key: str, client_ip: str) -> Identity:
        blocked = self.limiter.auth_blocked(client_ip)
        if blocked is not None:
            raise too_many(blocked, "Too many failed authentications from this address")
        epoch = self.cache.epoch
        identity = self.store.resolve_key(key, "secret")
        if identity is None:
            self.limiter.auth_failed(client_ip)
            raise authn.auth_error("unknown_account", "The provided authorization header does not match any account.")
        self.cache.put(key, identity, epoch)
        return identity

    def admit(self, authorization: str | None, client_ip: str) -> tuple[Identity, Decision | None]:
        """The caller's identity and its rate-limit decision; raises the 401/429/503 to answer."""
        try:
            key = authn.key_from_header(authorization)
        except ApiError:
            self.limiter.auth_failed(client_ip)
            raise
        identity = self.cache.get(key)
        from_cache = identity is not None
        if identity is None:
            identity = self._resolve(key, client_ip)
        decision, epoch = self.limiter.charge_with_epoch(identity.account_id, identity.rate_limit)
        if self.cache.observe(epoch) and from_cache:
            # Keys or plans changed somewhere since this identity was cached: check it again.
            try:
                fresh = self._resolve(key, client_ip)
            except ApiError:
                self.limiter.refund(identity.account_id)
                raise
            if fresh != identity:
                self.limiter.refund(identity.account_id)
                decision, _ = self.limiter.charge_with_epoch(fresh.account_id, fresh.rate_limit)
                identity = fresh
        if decision is None and not self.limiter.fail_open:
            error = ApiError("Rate limiting is unavailable, try again shortly", code="rate_limit_unavailable",
                             status=503)
            error.headers = {"Retry-After": "1"}
            raise error
        if decision is not None and not decision.allowed:
            raise too_many(decision, "Too many requests for this account's plan")
        return identity, decision
