"""The session cookie and the CSRF token every state-changing form carries.

The cookie holds a random token (HttpOnly, SameSite=Strict, path /dashboard); a form's token is
an HMAC of it under a key derived from INTERNAL_API_KEY, so a page of another origin can neither
read nor forge it, and a stolen form token is useless without the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "authport_dashboard"
FIELD = "csrf_token"


class Csrf:
    def __init__(self, internal_key: str):
        self.key = hmac.new(internal_key.encode(), b"authport dashboard csrf", hashlib.sha256).digest()

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(32)

    def token(self, session: str) -> str:
        return hmac.new(self.key, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str | None, given: str | None) -> bool:
        if not session or not given:
            return False
        return hmac.compare_digest(self.token(session).encode(), given.encode())
