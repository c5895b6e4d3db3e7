"""Which internal service owns a public path."""

from __future__ import annotations

# (path prefix, owning service). The first match wins; a prefix matches whole segments only.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/integrations", "store"),
    ("/connections", "store"),
    ("/connection", "store"),
    ("/providers", "store"),
    ("/config", "store"),  # the legacy integration routes of older SDKs (0.42)
    ("/environment-variables", "store"),
    ("/environment", "store"),  # /environment/keys…, /environment/api-keys, /environment/public-key/rotate
    ("/environments", "store"),  # POST /environments, DELETE /environments/:id (a prod secret key only)
    ("/logs", "store"),  # log records (an Authport extension): GET /logs, /logs/:id, /logs/export
    ("/webhook", "store"),  # provider webhooks (no key): checked, recorded and queued where the secrets are
    ("/connect", "auth"),  # connect sessions, the connect_link page
    ("/oauth", "auth"),  # the popup flow: /oauth/connect/:key, /oauth/callback
    ("/oauth2", "auth"),  # client credentials
    ("/api-auth", "auth"),  # API key and basic capture
    ("/auth", "auth"),
    ("/images/template-logos", "auth"),  # provider logos (open: an <img> carries no key)
    ("/proxy", "proxy"),  # proxied calls to provider APIs, streamed both ways
    ("/egress-ips", "proxy"),  # the public egress addresses customers allowlist
    ("/dashboard", "dashboard"),  # the operator's pages: no API key; the dashboard admits its own users
)


# Nango areas Authport does not implement (syncs, records, actions, functions, scripts, flows, the
# Nango-owned quickstart app): one explicit 501 instead of a 404, 405 or 400 that reads like a bug.
UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("/sync", "Syncs"),
    ("/records", "Records"),
    ("/action", "Actions"),
    ("/scripts", "Scripts"),
    ("/flow", "Flows"),
)


def unsupported(path: str, method: str) -> str | None:
    """The name of the Nango area a request belongs to when Authport does not serve it, else None."""
    if method == "POST" and path == "/integrations/quickstart":  # GET of it reads an integration so named
        return "Quickstart integrations"
    for prefix, area in UNSUPPORTED:
        if path == prefix or path.startswith(prefix + "/"):
            return area
    segments = path.split("/")  # /integrations/<key>/functions[/…], /providers/<name>/templates
    if len(segments) >= 4 and segments[1] == "integrations" and segments[3] == "functions":
        return "Functions"
    if len(segments) == 4 and segments[1] == "providers" and segments[3] == "templates":
        return "Templates"
    return None


def owner(path: str) -> str | None:
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def template(path: str) -> str:
    """The route label of a metric: the owning prefix (`/connections/*`), never the raw path."""
    for prefix, _service in ROUTES:
        if path == prefix:
            return prefix
        if path.startswith(prefix + "/"):
            return prefix + "/*"
    return "other"
