"""Which internal service owns a public path."""

from __future__ import annotations

# (path prefix, owning service). The first match wins; a prefix matches whole segments only.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/integrations", "store"),
    ("/connections", "store"),
    ("/connection", "store"),
    ("/providers", "store"),
    ("/environment-variables", "store"),
    ("/environment", "store"),  # /environment/keys…, /environment/public-key/rotate (key lifecycle)
    ("/logs", "store"),  # log records (an Authport extension): GET /logs, /logs/:id, /logs/export
    ("/connect", "auth"),  # connect sessions, the connect_link page
    ("/oauth", "auth"),  # the popup flow: /oauth/connect/:key, /oauth/callback
    ("/oauth2", "auth"),  # client credentials
    ("/api-auth", "auth"),  # API key and basic capture
    ("/auth", "auth"),
    ("/proxy", "proxy"),  # proxied calls to provider APIs, streamed both ways
    ("/egress-ips", "proxy"),  # the public egress addresses customers allowlist
    ("/dashboard", "dashboard"),  # the operator's pages: no API key; the dashboard admits its own users
)


def owner(path: str) -> str | None:
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None
