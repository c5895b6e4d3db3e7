"""Who may open the dashboard.

With NANGO_DASHBOARD_USERNAME and NANGO_DASHBOARD_PASSWORD set, every page needs HTTP Basic with
them (compared in constant time). Wrong credentials count against the client's address, and past
FAILURE_LIMIT a minute they answer 429 instead of 401; the right credentials are checked first
and always pass, so a guesser sharing an address (behind a reverse proxy) locks nobody out.

Unset, the dashboard serves loopback clients only (Nango would serve anyone who can reach it), and
only under a local Host name, so that a web page rebinding its own name to 127.0.0.1 cannot read it.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

FAILURE_LIMIT = 10
WINDOW = 60.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
SECURE_HINT = ("Set NANGO_DASHBOARD_USERNAME and NANGO_DASHBOARD_PASSWORD to open the dashboard to other "
               "addresses behind HTTP Basic authentication.")


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: `user` when admitted, else the status and the reason to show."""

    user: str | None
    status: int = 200
    reason: str = ""
    first_failure: bool = False  # a failed sign-in worth a record (under the limit)


class FailureCounter:
    """Failed sign-ins per client address in a fixed one-minute window (this process's memory)."""

    def __init__(self, limit: int = FAILURE_LIMIT, window: float = WINDOW):
        self.limit, self.window = limit, window
        self._counts: dict[str, tuple[float, int]] = {}
        self._guard = threading.Lock()

    def fail(self, address: str) -> int:
        """Count one failure of `address`; return its failures in the current window."""
        now = time.monotonic()
        with self._guard:
            if len(self._counts) > 10_000:  # bounded: forget windows that are over
                self._counts = {a: v for a, v in self._counts.items() if v[0] > now}
            ends, count = self._counts.get(address, (0.0, 0))
            if ends <= now:
                ends, count = now + self.window, 0
            self._counts[address] = (ends, count + 1)
            return count + 1


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()


class Gate:
    def __init__(self, username: str | None, password: str | None, server_url: str):
        self.credentials = (username.encode(), password.encode()) if username and password else None
        self.local_names = LOCAL_HOSTS | {host_name(urlsplit(server_url).netloc)}
        self.failures = FailureCounter()

    @property
    def open_locally(self) -> bool:
        return self.credentials is None

    def check(self, authorization, address: str, host: str) -> Verdict:
        """Admit or refuse one request, given werkzeug's parsed Authorization (or None)."""
        if self.credentials is None:
            if not is_loopback(address):
                return Verdict(None, 401, "This dashboard is served to this machine (loopback) only. " + SECURE_HINT)
            if host_name(host) not in self.local_names:
                return Verdict(None, 403, "This dashboard answers only under a local host name or NANGO_SERVER_URL.")
            return Verdict("local")
        if authorization is not None and authorization.type == "basic" and self._right(authorization):
            return Verdict(authorization.username)
        failures = self.failures.fail(address) if authorization is not None else 0
        if failures > self.failures.limit:
            return Verdict(None, 429, "Too many failed sign-ins from this address; try again in a minute.")
        reason = "Sign in with the dashboard's user name and password." if authorization is None else \
            "The user name or password is wrong."
        return Verdict(None, 401, reason, first_failure=authorization is not None)

    def _right(self, authorization) -> bool:
        user, password = (authorization.username or "").encode(), (authorization.password or "").encode()
        # Both compared every time (no short cut telling which one was wrong).
        return hmac.compare_digest(user, self.credentials[0]) & hmac.compare_digest(password, self.credentials[1])
