"""Who may pass the gateway: the caller's key resolved (from memory when possible), failed
authentications limited per address, and the account's request charged to its plan.

The failure limit is applied on the failure path only: a key is resolved first, and a right
key is admitted whatever its address did before (behind a reverse proxy every client shares
one address, and one client's typos must not lock out the others); only its account's plan
limit applies. A wrong key counts against its address, and past AUTH_FAILURE_LIMIT answers
429 instead of 401. That a right key still passes is the point, and tells a guesser nothing
a 401 would not; what the limit keeps is the cost of guessing: each wrong attempt is
counted, and a key the store did not know a moment ago (`KeyCache.known_unknown`) is refused
without asking it again, so a client hammering with a revoked key costs no lookups.
"""

from __future__ import annotations

from common import metrics
from common.errors import ApiError, RateLimited, Unavailable
from common.identity import Identity
from common.internal import StoreClient
from gateway import authn
from gateway.keycache import KeyCache
from gateway.ratelimit import Decision, RateLimiter
from gateway.usage import UsageMeter


def too_many(decision: Decision, message: str) -> ApiError:
    """The 429 to answer; `admit_request` adds the request's method and path to its body."""
    seconds = decision.headers()["Retry-After"]
    return RateLimited(f"{message}, retry after {seconds} seconds", headers=decision.headers())


UNKNOWN = {
    "secret": ("unknown_account", "The provided authorization header does not match any account."),
    "public": ("invalid_public_key", "The provided public key does not match any environment."),
    "connect_session": ("unknown_connect_session_token", "The connect session token is unknown or expired."),
}


def _slot(key: str, kind: str) -> str:
    """The cache entry of a credential: a public key must never pass for a secret key."""
    return key if kind == "secret" else f"{kind}:{key}"


class Admission:
    def __init__(self, store: StoreClient, limiter: RateLimiter, cache: KeyCache, meter: UsageMeter | None = None):
        self.store = store
        self.limiter = limiter
        self.cache = cache
        self.meter = meter  # requests and 429s per minute, for the dashboard's Usage page

    def failed(self, client_ip: str, error: ApiError) -> ApiError:
        """Count a failed authentication: `error` to answer, or the 429 once the address is past the limit."""
        refusal = self.limiter.auth_failed(client_ip)
        if refusal is None:
            return error
        return too_many(refusal, "Too many failed authentications from this address")

    def _resolve(self, key: str, client_ip: str, kind: str = "secret") -> Identity:
        slot, epoch = _slot(key, kind), self.cache.epoch
        identity = None
        if not self.cache.known_unknown(slot):
            if kind == "connect_session":
                identity = self.store.resolve_connect_session(key)
            else:
                identity = self.store.resolve_key(key, kind)
        if identity is None:
            self.cache.put_unknown(slot, epoch)
            raise self.failed(client_ip, authn.auth_error(*UNKNOWN[kind]))
        if kind != "connect_session":  # never cached: a deleted session must stop working at once
            self.cache.put(slot, identity, epoch)
        return identity

    def admit_request(self, method: str, path: str, headers, args, client_ip: str, peek=None):
        """(identity or None, decision or None) for a public request, by what its route accepts.

        `peek(identity)` names Redis keys to read in the rate-limit charge's round trip; their
        values come back in `decision.peeked`."""
        accepted = authn.policy(method, path)
        if accepted == authn.OPEN:
            return None, None
        try:
            try:
                if accepted == authn.QUERY:
                    credential, kind = authn.credential_from_query(args)
                else:
                    credential, kind = authn.credential_from_header(headers.get("Authorization"), accepted)
            except ApiError as error:
                raise self.failed(client_ip, error) from None
            return self.admit(credential, client_ip, kind=kind, peek=peek)
        except ApiError as error:
            if error.status == 429:
                error.extra.update(method=method, path=path)
            raise

    def admit(self, authorization: str | None, client_ip: str, *, kind: str | None = None, peek=None
              ) -> tuple[Identity, Decision | None]:
        """The caller's identity and its rate-limit decision; raises the 401/429/503 to answer.

        `authorization` is the Authorization header, or (with `kind`) an already parsed credential."""
        if kind is None:
            try:
                key, kind = authn.key_from_header(authorization), "secret"
            except ApiError as error:
                raise self.failed(client_ip, error) from None
        else:
            key = authorization or ""
        identity = None if kind == "connect_session" else self.cache.get(_slot(key, kind))
        from_cache = identity is not None
        if identity is None:
            identity = self._resolve(key, client_ip, kind)
        decision, epoch = self.limiter.charge_with_epoch(identity.account_id, identity.rate_limit,
                                                         peek=peek(identity) if peek else ())
        if self.cache.observe(epoch) and from_cache:
            # Keys or plans changed somewhere since this identity was cached: check it again.
            try:
                fresh = self._resolve(key, client_ip, kind)
            except ApiError:
                self.limiter.refund(identity.account_id)
                raise
            if fresh != identity:
                self.limiter.refund(identity.account_id)
                decision, _ = self.limiter.charge_with_epoch(fresh.account_id, fresh.rate_limit,
                                                             peek=peek(fresh) if peek else ())
                identity = fresh
        metrics.rate_limit_decision(identity.plan, decision, self.limiter.fail_open)
        if self.meter is not None and (decision is not None or self.limiter.fail_open):
            self.meter.count(identity, limited=decision is not None and not decision.allowed)
        if decision is None and not self.limiter.fail_open:
            raise Unavailable("Rate limiting is unavailable, try again shortly", code="rate_limit_unavailable",
                              headers={"Retry-After": "1"})
        if decision is not None and not decision.allowed:
            raise too_many(decision, "Too many requests for this account's plan")
        return identity, decision
